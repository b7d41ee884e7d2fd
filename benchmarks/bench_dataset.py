"""Prints dataset build time and leakage-audit time: the default dataset and 10,000 clips.

Usage: .venv/bin/python -m benchmarks.bench_dataset   (uses a temporary LAB_DATA_DIR)
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np


def main() -> None:
    os.environ["LAB_DATA_DIR"] = tempfile.mkdtemp(prefix="lab-bench-")
    from core.data import audio
    from core.data.audit import audit
    from core.data.datasets import load_dataset
    from core.data.default_dataset import build_default
    from core.data.splits import make_split

    t = time.perf_counter()
    build_default(force=True)
    build_s = time.perf_counter() - t
    ds = load_dataset("default")
    m = ds.manifest.assign(split=make_split(ds.manifest, seed=0).to_numpy())
    print(f"default dataset: {len(m)} clips built in {build_s:.1f} s (target < 60 s on 2 cores)")

    cache = {cid: ds.load_clip(cid).samples for cid in m["clip_id"]}
    report = audit(m, lambda row: cache[row["clip_id"]])
    print(
        f"audit, default dataset ({len(m)} clips, audio preloaded): {report.seconds:.1f} s, "
        f"findings: {report.counts() or 'none'}"
    )

    # 10,000 clips: each default clip re-mixed with fresh noise at 30 dB (distinct audio, same groups)
    reps = int(np.ceil(10_000 / len(m)))
    big = m.loc[np.tile(m.index, reps)[:10_000]].reset_index(drop=True)
    big["source_clip"] = big["clip_id"]
    big["clip_id"] = [f"{c}-r{i}" for i, c in enumerate(big["clip_id"])]
    big["base_clip_id"] = big["group_id"]

    def load(row):
        x = cache[row["source_clip"]]
        rng = np.random.default_rng(int(row["clip_id"].rsplit("-r", 1)[1]))
        return audio.mix_at_snr(x, audio.coloured_noise(len(x), "white", rng), 30.0)[0]

    report = audit(big, load)
    print(
        f"audit, 10,000 clips: {report.seconds:.1f} s ({report.n_clips / report.seconds:.0f} clips/s), "
        f"findings: {report.counts() or 'none'}"
    )


if __name__ == "__main__":
    main()
