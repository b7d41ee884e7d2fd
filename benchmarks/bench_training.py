"""Prints the time of a default fine-tuning run of the lab base model on the embedded train split
(CPU) and its effect on short (≤ 400 ms) noisy dev clips. Target: ≤ 3 minutes on 2 cores.

Usage: .venv/bin/python -m benchmarks.bench_training [--question-first]   (uses a temporary LAB_DATA_DIR)
`--question-first`: base model and run both use the prompt with the question before the clip.
"""

from __future__ import annotations

import time


def main() -> None:
    import argparse

    from benchmarks._common import bench_dataset
    from core.data.splits import select_clips
    from core.detectors import make_detector
    from core.detectors.llm.prompt import DEFAULT_PROMPT, QUESTION_FIRST_PROMPT
    from core.runs import registry
    from core.runs.train_eval import dev_metrics, short_noisy_mask
    from core.runs.training import TrainConfig, train_run

    ap = argparse.ArgumentParser()
    ap.add_argument("--question-first", action="store_true")
    question_first = ap.parse_args().question_first
    prompt = QUESTION_FIRST_PROMPT if question_first else DEFAULT_PROMPT
    ds = bench_dataset(audit=True)
    dev = select_clips(ds, "bench", "dev")
    short_noisy = short_noisy_mask(dev)
    base = make_detector("lab-base", batch_size=32, prompt=prompt).score(
        [ds.load_clip(c).samples for c in dev["clip_id"]], 16000
    )
    base_m = dev_metrics(dev["label"].to_numpy(), base, short_noisy)
    t0 = time.perf_counter()
    res = train_run(registry.runs_dir() / registry.create_run(TrainConfig(split="bench", prompt=prompt)))
    seconds = time.perf_counter() - t0
    layout = ", question before the clip" if question_first else ""
    print(f"default fine-tuning run{layout} (train + dev/test evaluation): {seconds:.0f} s (target ≤ 180 s)")
    for key in ("balanced_accuracy", "short_noisy_balanced_accuracy", "ece"):
        print(f"dev {key}: base {base_m[key]:.3f} -> fine-tuned {res['dev'][key]:.3f}")


if __name__ == "__main__":
    main()
