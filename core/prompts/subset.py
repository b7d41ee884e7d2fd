"""The fixed dev subset a prompt search scores every candidate on, and how precise a score on it is.

Why fixed: candidates are compared with each other, so they must see the same clips; why
stratified: a subset that happened to hold few short noisy clips would reward prompts that
fail there. Clips are drawn from every label × condition cell in proportion to its size, and
within a cell from as many groups as possible.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import LabError

CONDITION_COLUMNS = ("duration_ms", "snr_db", "noise_type", "band", "reverb")


def conditions(clips: pd.DataFrame) -> list[str]:
    """The condition columns present in `clips` that take more than one value."""
    return [c for c in CONDITION_COLUMNS if c in clips and clips[c].astype(object).nunique(dropna=False) > 1]


def cells(clips: pd.DataFrame) -> pd.Series:
    """Label × condition cell of each clip (clean clips have no SNR: their own cell)."""
    parts = [clips["label"].astype(str)]
    for col in conditions(clips):
        parts.append(clips[col].astype(object).where(clips[col].notna(), "clean").astype(str))
    return pd.Series(["|".join(v) for v in zip(*parts)], index=clips.index)


def stratified_subset(clips: pd.DataFrame, size: int, seed: int = 0) -> list[str]:
    """`size` clip ids drawn in proportion from each label × condition cell, spread over groups.

    Deterministic for a seed. Largest-remainder rounding makes the cells' shares add up to
    `size` exactly; `size` at or above the number of clips returns every clip.
    """
    if size <= 0:
        raise LabError(f"the subset needs at least one clip, got {size}")
    if size >= len(clips):
        return clips["clip_id"].tolist()
    cell = cells(clips)
    counts = cell.value_counts().sort_index()
    quota = counts / counts.sum() * size
    take = np.floor(quota).astype(int)
    short = size - int(take.sum())
    take[(quota - take).sort_values(ascending=False, kind="stable").index[:short]] += 1
    rng = np.random.default_rng(seed)
    chosen = []
    for name, n in take.items():
        if n == 0:
            continue
        members = clips[cell == name].assign(_r=rng.random(int((cell == name).sum())))
        # one clip per group before a second from any: rank within group, then a seeded shuffle
        members = members.assign(_k=members.sort_values("_r").groupby("group_id").cumcount())
        chosen += members.sort_values(["_k", "_r"])["clip_id"].head(int(n)).tolist()
    return chosen


def ci_halfwidth(size: int, accuracy: float = 0.85, z: float = 1.96) -> float:
    """Half-width of a 95% CI of balanced accuracy on `size` clips (half of each class), if clips were independent.

    Clips of one speaker or source are correlated, so the clustered CI the lab reports is wider.
    """
    per_class = max(size / 2, 1)
    return float(z * np.sqrt(accuracy * (1 - accuracy) / per_class / 2))
