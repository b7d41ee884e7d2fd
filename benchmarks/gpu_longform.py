"""GPU benchmark: an audio LLM over long recordings in sliding windows (2 s, hop 1 s).

Qwen2-Audio-7B's architecture with random bf16 weights (as gpu_qwen2audio.py). One run compares
  windows:    `core.longform.curves.score_recording`: the recording read once, windows as views,
              scored in batches of equal-length windows (what `longform score` runs);
  clip path:  the same windows as an ordinary clip dataset (each window a segment of the same
              file), scored by `core.scoring.evaluate.score_clips` with the same batch size and
              preparing workers: scoring each window as an independent clip, as a careful user
              would without the long-form path.
Prints hours of audio per minute for each, how far their scores are apart, and the fraction of
encoder work the long-form path removed: none (docs/methods.md, "Why audio LLM windows share no
encoder work": Whisper encoders attend over the whole window, so overlapping windows cannot reuse
each other's encodings exactly).
    python3 benchmarks/gpu_longform.py [--minutes 10] [--batch 64] [--rounds 3] [--tiny]
`--tiny` runs the lab base model on this machine (a CPU check of the script).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("LAB_DATA_DIR", tempfile.mkdtemp(prefix="lab-gpu-long-"))
    import pandas as pd
    import torch

    from core.data.audio import load_audio, write_wav
    from core.data.datasets import load_dataset
    from core.data.importers import import_dataset
    from core.detectors.llm import AudioLLMDetector, AudioLLMSpec
    from core.longform.curves import score_recording
    from core.scoring.evaluate import score_clips

    if args.tiny:
        from core.detectors import lab_base
        from core.detectors.llm.qwen2_audio import load

        model, processor = load(AudioLLMSpec(model=str(lab_base.ensure_base_model())))
        dtype, device = "fp32", "cpu"
    else:
        from benchmarks.gpu_qwen2audio import build_7b

        model, processor = build_7b()
        dtype, device = "bf16", torch.cuda.get_device_name()
    det = AudioLLMDetector(AudioLLMSpec(model="bench", dtype=dtype, batch_size=args.batch), model, processor)
    rng = np.random.default_rng(0)
    n = int(args.minutes * 60 * 16000)  # speech-like noise bursts over a quiet bed
    x = (0.01 * rng.standard_normal(n)).astype(np.float32)
    for start in rng.integers(0, n - 32000, int(args.minutes * 20)):
        x[start : start + 24000] += (0.3 * rng.standard_normal(24000)).astype(np.float32)
    x /= np.abs(x).max() / 0.9
    folder = Path(tempfile.mkdtemp(prefix="lab-gpu-long-audio-"))
    path = write_wav(folder / "rec.wav", x)
    x = load_audio(path).samples  # read back as PCM16, as both paths read it
    det.score([x[:32000]] * 4, 16000)  # warm-up
    seconds = len(x) / 16000

    def sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    rows = score_recording(det, x, window=2.0, hop=1.0, batch=args.batch)  # also a warm-up at the batch size
    manifest = pd.DataFrame({"clip_id": [f"w{i:05d}" for i in range(len(rows))], "path": str(path), "label": "speech",
                             "group_id": "rec", "base_clip_id": "rec", "start_s": rows["start"], "end_s": rows["end"]})  # fmt: skip
    manifest.to_csv(folder / "windows.csv", index=False)
    import_dataset("csv", folder / "windows.csv", "windows", skip_bad=True, paths_outside_ok=True, force=True)
    ds = load_dataset("windows")
    t_windows, t_clips = [], []
    for _ in range(args.rounds):  # alternated, best of each: neither path pays for the other's warm-up
        sync()
        t0 = time.perf_counter()
        rows = score_recording(det, x, window=2.0, hop=1.0, batch=args.batch)
        sync()
        t_windows.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        logits = score_clips(ds, ds.manifest, det, batch_size=args.batch)
        sync()
        t_clips.append(time.perf_counter() - t0)
    t_windows, t_clips = min(t_windows), min(t_clips)
    order = ds.manifest.set_index("clip_id").index.get_indexer(manifest["clip_id"])
    ok = order >= 0
    delta = np.abs(rows[["logit_A", "logit_B"]].to_numpy()[ok] - logits[order[ok]]).max()
    per_min = lambda t: seconds / 3600 / (t / 60)  # noqa: E731
    print(
        f"on {device}, {dtype}; {seconds / 60:.1f} min of audio, {len(rows)} windows of 2 s, hop 1 s, batch {args.batch}"
    )
    print(f"long-form windows: {t_windows:.1f} s = {per_min(t_windows):.2f} h of audio per minute")
    print(f"clip path (each window a clip): {t_clips:.1f} s = {per_min(t_clips):.2f} h of audio per minute")
    print(f"ratio clip path / windows: {t_clips / t_windows:.2f}; max |Δ logit| {delta:.3g}")
    print("encoder work removed by the long-form path: 0% (each window is encoded whole; docs/methods.md says why)")


if __name__ == "__main__":
    main()
