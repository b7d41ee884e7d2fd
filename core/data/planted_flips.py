"""A copy of a dataset with a known share of its labels flipped: a known truth for label-issue search.

Why: "cleanlab flagged 40 clips" says nothing about whether it would find *your* corpus's wrong
labels. Flip a known 5–10 % of the labels (the same share in every group, so no speaker or source
is spared or singled out), cross-validate by group on the copy, and see how many flipped clips the
ranking puts near the top (`core.analysis.label_issues.planted_recall`). The copy reads the
original audio in place (nothing is copied) and keeps the truth in planted_flips.csv; the original
dataset is not touched.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core import atomic
from core.data.datasets import Dataset, dataset_root, load_dataset, manifest_in_place, save_dataset
from core.errors import LabError

TRUTH = "planted_flips.csv"


def choose_flips(manifest: pd.DataFrame, share: float, seed: int = 0, eligible: pd.Series | None = None) -> pd.Series:
    """Boolean mask of clips to flip: round(share × eligible clips) in all, spread over groups in
    proportion to their eligible clips (largest remainders), random within each group."""
    if not 0 < share < 0.5:
        raise LabError(f"the share of flipped labels must be in (0, 0.5), got {share}")
    ok = pd.Series(True, index=manifest.index) if eligible is None else eligible.astype(bool)
    counts = manifest[ok].groupby("group_id").size()
    if counts.empty:
        raise LabError("no clip is eligible for a flip")
    want = share * counts
    n = np.floor(want).astype(int)
    extra = int(round(share * counts.sum())) - int(n.sum())
    order = (want - n).sort_values(ascending=False, kind="stable").index[:extra]
    n[order] += 1
    rng = np.random.default_rng(seed)
    flip = pd.Series(False, index=manifest.index)
    for g, k in n.items():
        idx = manifest.index[ok & (manifest["group_id"] == g)]
        flip[rng.choice(idx, int(k), replace=False)] = True
    return flip


def plant_flips(
    source: str, name: str, share: float = 0.08, seed: int = 0, exclude_ids: set[str] | None = None
) -> Dataset:
    """Dataset `name`: `source`'s clips (audio read in place) with `share` of labels flipped by group.

    `exclude_ids`: clips never flipped (e.g. those a pretrained model already learnt, whose true
    label it remembers). Refuses to overwrite an existing dataset."""
    src = load_dataset(source)
    root = dataset_root(name)
    if root.exists():
        raise LabError(f"dataset {name!r} already exists; pick another name")
    m = manifest_in_place(src)
    eligible = ~m["clip_id"].isin(exclude_ids or set())
    flip = choose_flips(m, share, seed, eligible)
    truth = m.loc[flip, ["clip_id", "group_id", "label"]].rename(columns={"label": "true_label"})
    m.loc[flip, "label"] = np.where(m.loc[flip, "label"] == "speech", "nonspeech", "speech")
    notes = m["notes"].fillna("").astype(str) if "notes" in m else pd.Series("", index=m.index)
    m["notes"] = notes.where(~flip, "label flipped on purpose (planted_flips.csv holds the truth)")
    info = {**src.info, "kind": "planted-flips", "source_dataset": source, "share": share, "seed": seed,
            "flipped": int(flip.sum()), "eligible": int(eligible.sum())}  # fmt: skip
    with atomic.building_dir(root) as tmp:
        save_dataset(tmp, m, info)
        atomic.write_csv(tmp / TRUTH, truth)
    return load_dataset(name)


def planted_truth(ds: Dataset) -> pd.DataFrame | None:
    """The flipped clips of a planted dataset (clip_id, group_id, true_label), or None."""
    p = ds.root / TRUTH
    return pd.read_csv(p, dtype=str) if p.exists() else None
