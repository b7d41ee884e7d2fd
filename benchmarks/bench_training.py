"""Prints the time of a default fine-tuning run of the lab base model on the embedded train split
(CPU) and its effect on short (≤ 400 ms) noisy dev clips. Target: ≤ 3 minutes on 2 cores.

Usage: .venv/bin/python -m benchmarks.bench_training   (uses a temporary LAB_DATA_DIR)
"""

from __future__ import annotations

import os
import tempfile
import time


def main() -> None:
    os.environ.setdefault("LAB_DATA_DIR", tempfile.mkdtemp(prefix="lab-bench-"))
    from core import runs
    from core.audit import audit_split
    from core.datasets import load_dataset
    from core.default_dataset import build_default
    from core.detectors import make_detector
    from core.evaluate import select_clips
    from core.splits import make_split, save_split
    from core.training import TrainConfig, dev_metrics, train_run

    build_default()
    ds = load_dataset("default")
    save_split(ds, "bench", make_split(ds.manifest, seed=0), {"seed": 0})
    audit_split(ds, "bench")
    dev = select_clips(ds, "bench", "dev")
    short_noisy = (dev["duration_ms"] <= 400).to_numpy() & dev["snr_db"].notna().to_numpy()
    base = make_detector("lab-base", batch_size=32).score([ds.load_clip(c).samples for c in dev["clip_id"]], 16000)
    base_m = dev_metrics(dev["label"].to_numpy(), base, short_noisy)
    t0 = time.perf_counter()
    res = train_run(runs.runs_dir() / runs.create_run(TrainConfig(split="bench")))
    seconds = time.perf_counter() - t0
    print(f"default fine-tuning run (train + dev/test evaluation): {seconds:.0f} s (target ≤ 180 s)")
    for key in ("balanced_accuracy", "short_noisy_balanced_accuracy", "ece"):
        print(f"dev {key}: base {base_m[key]:.3f} -> fine-tuned {res['dev'][key]:.3f}")


if __name__ == "__main__":
    main()
