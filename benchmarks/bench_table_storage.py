"""Predictions-table storage: CSV against Parquet at 10^6 rows (size, write and read time, the lab's load).

A table shaped like the lab's (identity and condition columns, logits, detector, prompt) is written
both ways; each read is timed three times (best kept) on this machine.
    .venv/bin/python -m benchmarks.bench_table_storage [--rows 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    groups = np.array([f"spk-{i:04d}" for i in range(2000)])
    g = groups[rng.integers(0, len(groups), n)]
    a, b = rng.normal(0, 2, n), rng.normal(0, 2, n)
    logit = a - b
    return pd.DataFrame({
        "clip_id": [f"cond-{i:08d}" for i in range(n)], "label": np.where(rng.random(n) < 0.5, "speech", "nonspeech"),
        "group_id": g, "base_clip_id": [f"base-{i // 40:06d}" for i in range(n)], "split": "test",
        "duration_ms": rng.choice([100, 200, 400, 800, 1600], n).astype(float),
        "snr_db": rng.choice([np.nan, -10, -5, 0, 5, 10, 20], n), "noise_type": rng.choice(["white", "pink", "babble"], n),
        "source": "conditions", "logit_A": a, "logit_B": b, "logit": logit, "p_speech": 1 / (1 + np.exp(-logit)),
        "detector": "audio-llm", "adapter": "", "seed": 0, "prompt": "Does this audio contain human speech?",
    })  # fmt: skip


def best(fn, k: int = 3) -> float:
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    from core.scoring import predictions

    df = table(args.rows)
    with tempfile.TemporaryDirectory() as d:
        csv, pq = Path(d) / "t.csv", Path(d) / "t.parquet"
        w_csv = best(lambda: df.to_csv(csv, index=False), 1)
        w_pq = best(lambda: df.to_parquet(pq, index=False), 1)
        r_csv = best(lambda: pd.read_csv(csv))
        r_pq = best(lambda: pd.read_parquet(pq))
        l_csv = best(lambda: predictions.load(csv), 1)
        l_pq = best(lambda: predictions.load(pq), 1)
        mb = 1024 * 1024
        print(f"{args.rows:,} rows, {df.shape[1]} columns")
        print(f"  CSV:     {csv.stat().st_size / mb:6.1f} MB, write {w_csv:5.2f} s, pandas read {r_csv:5.2f} s, "
              f"predictions.load {l_csv:5.2f} s")  # fmt: skip
        print(f"  Parquet: {pq.stat().st_size / mb:6.1f} MB, write {w_pq:5.2f} s, pandas read {r_pq:5.2f} s, "
              f"predictions.load {l_pq:5.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
