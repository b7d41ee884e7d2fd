"""Shared benchmark set-up: the embedded dataset in a temporary data folder, with one split."""

from __future__ import annotations

import os
import tempfile


def bench_dataset(audit: bool = False):
    """Build (if needed) the embedded dataset, save split 'bench' (seed 0) and return the dataset.

    Uses a temporary LAB_DATA_DIR unless one is set, so benchmarks never touch data/.
    """
    os.environ.setdefault("LAB_DATA_DIR", tempfile.mkdtemp(prefix="lab-bench-"))
    from core.data.audit import audit_split
    from core.data.datasets import load_dataset
    from core.data.default_dataset import build_default
    from core.data.splits import make_split, save_split

    build_default()
    ds = load_dataset("default")
    save_split(ds, "bench", make_split(ds.manifest, seed=0), {"seed": 0})
    if audit:
        audit_split(ds, "bench")
    return ds
