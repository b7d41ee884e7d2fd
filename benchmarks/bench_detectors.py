"""Prints CPU clips/s of every offline detector on the embedded dataset's test split.

Usage: .venv/bin/python -m benchmarks.bench_detectors   (uses a temporary LAB_DATA_DIR)
"""

from __future__ import annotations

import time


def main() -> None:
    import torch

    from benchmarks._common import bench_dataset
    from core.data.splits import select_clips
    from core.detectors import make_detector
    from core.detectors.llm.prompt import QUESTION_FIRST_PROMPT
    from core.scoring.evaluate import score_clips

    ds = bench_dataset()
    clips = select_clips(ds, "bench", "test")
    print(f"{len(clips)} test clips (0.2–1 s), torch threads: {torch.get_num_threads()}")
    runs = [
        ("silero-vad", {}),
        ("webrtc-vad", {}),
        ("lab-base", {"batch_size": 32}),
        ("lab-base", {"batch_size": 32, "padding": "padded"}),
        ("lab-base", {"batch_size": 32, "prompt": QUESTION_FIRST_PROMPT}),
    ]
    for name, opts in runs:
        det = make_detector(name, **opts)
        score_clips(ds, clips.head(32), det, batch_size=32)  # warm-up
        t0 = time.perf_counter()
        logits = score_clips(ds, clips, det, batch_size=32)
        dt = time.perf_counter() - t0
        acc = ((logits[:, 0] > logits[:, 1]) == (clips["label"] == "speech").to_numpy()).mean()
        tag = name
        if name == "lab-base":
            tag += f" ({opts.get('padding', 'trimmed')}{', question first' if 'prompt' in opts else ''})"
        print(f"{tag:42s} {len(clips) / dt:8.1f} clips/s   accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
