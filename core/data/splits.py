"""Group-aware, label-stratified train/dev/test splits, saved beside the dataset.

The unit of assignment is a connected component of clips that share a `group_id`
(speaker or sound source) or a `base_clip_id` (variants of one recording): no unit is ever
cut across two splits, so a model is always tested on speakers and sources it never heard.
"""

from __future__ import annotations

from collections.abc import Callable

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import atomic
from core.data.datasets import Dataset
from core.errors import LabError, SplitError

DEFAULT_FRACTIONS = {"train": 0.7, "dev": 0.15, "test": 0.15}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def linked(pairs) -> Callable[[str], str]:
    """Union-find over string keys: after joining each (a, b) of `pairs`, the returned function maps
    a key to its component's id (the smallest key in it). Clips linked by group or base clip, and
    long recordings linked by speaker, are split by these components."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return find


def split_units(manifest: pd.DataFrame) -> pd.Series:
    """Component id per row: rows linked by a shared group_id or base_clip_id share a unit."""
    find = linked(zip("g:" + manifest["group_id"].astype(str), "b:" + manifest["base_clip_id"].astype(str)))
    return pd.Series([find("g:" + str(g)) for g in manifest["group_id"]], index=manifest.index, name="unit")


def make_split(manifest: pd.DataFrame, fractions: dict[str, float] | None = None, seed: int = 0) -> pd.Series:
    """Assign every clip to a split; returns a Series of split names aligned with `manifest`.

    Units are shuffled by `seed`, then, label by label, each unit goes to the split whose
    clip count is furthest below its target (relative deficit). Fractions are of clips
    within each label, so every split keeps roughly the dataset's label balance.
    """
    fractions = _check_fractions(fractions or DEFAULT_FRACTIONS)
    names = [k for k, v in fractions.items() if v > 0]
    units = split_units(manifest)
    table = pd.crosstab(units, manifest["label"])
    rng = np.random.default_rng(seed)
    order = table.index.to_numpy()[rng.permutation(len(table))]
    dominant = table.loc[order].idxmax(axis=1)
    assignment: dict[str, str] = {}
    counts = pd.DataFrame(0.0, index=names, columns=table.columns)
    for label in table.columns:
        target = pd.Series({s: fractions[s] * table[label].sum() for s in names})
        for unit in order[dominant.to_numpy() == label]:
            deficit = (target - counts[label]) / target
            split = deficit.idxmax()  # ties go to the first split listed
            assignment[unit] = split
            counts.loc[split] += table.loc[unit]
    return units.map(assignment).rename("split")


def one_class_parts(manifest: pd.DataFrame, split: pd.Series) -> dict[str, str]:
    """{part: its only label} for every part of a split that holds one class (or a one-class dataset).

    Why flag it at split time: on such a part accuracy is one class's recall and balanced
    accuracy, ROC-AUC and calibration do not exist; every later report would look perfect or empty.
    """
    labels = manifest.assign(split=np.asarray(split)).groupby("split")["label"].unique()
    return {str(part): str(ls[0]) for part, ls in labels.items() if len(ls) == 1}


def _check_fractions(fractions: dict[str, float]) -> dict[str, float]:
    if not fractions:
        raise SplitError("no split fractions given")
    for k, v in fractions.items():
        if not _NAME.match(k):
            raise SplitError(f"invalid split name {k!r}")
        if not np.isfinite(v) or v < 0:
            raise SplitError(f"fraction for {k!r} must be ≥ 0, got {v}")
    total = sum(fractions.values())
    if total <= 0:
        raise SplitError("split fractions sum to 0")
    return {k: v / total for k, v in fractions.items()}


def check_split(manifest: pd.DataFrame, split: pd.Series) -> list[str]:
    """Structural problems of a split: groups or base clips on two sides, unassigned clips."""
    problems = []
    if split.isna().any():
        problems.append(f"{int(split.isna().sum())} clip(s) have no split")
    for col in ("group_id", "base_clip_id"):
        sides = pd.DataFrame({"key": manifest[col], "split": split}).groupby("key")["split"].nunique()
        for key in sides.index[sides > 1]:
            problems.append(f"{col} {key!r} appears in several splits")
    return problems


# ---------------------------------------------------------------- persistence


def splits_dir(ds: Dataset) -> Path:
    return ds.root / "splits"


def validate_split_name(name: str) -> str:
    from core.names import check_name

    try:
        return check_name(name, "split")
    except LabError as exc:
        raise SplitError(str(exc)) from None


def save_split(ds: Dataset, name: str, split: pd.Series, meta: dict[str, Any]) -> Path:
    """Write splits/<name>.csv (clip_id, split) and its metadata as one unit (`atomic.write_pair`)."""
    validate_split_name(name)
    table = pd.DataFrame({"clip_id": ds.manifest["clip_id"].to_numpy(), "split": split.to_numpy()})

    from core.paths import command_line

    def info(tmp: Path) -> dict[str, Any]:
        return {
            "command": command_line(),
            **meta,
            "one_class_parts": one_class_parts(ds.manifest, split),
            "name": name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "counts": table["split"].value_counts().to_dict(),
            "split_hash": file_hash(tmp),
        }

    d = splits_dir(ds)
    atomic.clean_debris(d)
    return atomic.write_pair(d / f"{name}.csv", lambda tmp: table.to_csv(tmp, index=False), d / f"{name}.json", info)


def list_splits(ds: Dataset) -> list[str]:
    d = splits_dir(ds)
    atomic.clean_debris(d)
    return sorted(p.stem for p in d.glob("*.csv") if not p.name.startswith(".")) if d.exists() else []


def load_split(ds: Dataset, name: str) -> pd.Series:
    """The split as a Series aligned with `ds.manifest`; errors name unknown or missing clips."""
    path = splits_dir(ds) / f"{validate_split_name(name)}.csv"
    atomic.recover_pair(path, path.with_suffix(".json"))
    if not path.exists():
        raise SplitError(f"dataset {ds.name!r} has no split {name!r} (known: {', '.join(list_splits(ds)) or 'none'})")
    from core.csvfiles import read_csv

    table = read_csv(path, "split", ["clip_id", "split"], dtype=str, error=SplitError)
    dup = table["clip_id"][table["clip_id"].duplicated()]
    if len(dup):
        raise SplitError(f"{path}: clip_id {dup.iloc[0]!r} listed twice")
    mapping = table.set_index("clip_id")["split"]
    unknown = sorted(set(mapping.index) - set(ds.manifest["clip_id"]))
    if unknown:
        raise SplitError(f"{path}: {len(unknown)} clip(s) not in the dataset, e.g. {unknown[0]!r}")
    split = ds.manifest["clip_id"].map(mapping).rename("split")
    if split.isna().any():
        missing = ds.manifest["clip_id"][split.isna()]
        raise SplitError(f"{path}: {len(missing)} clip(s) of the dataset have no split, e.g. {missing.iloc[0]!r}")
    return split


def select_clips(
    ds: Dataset,
    split_name: str,
    part: str,
    exclude_tags: list[str] | tuple[str, ...] = (),
    labels: str = "original",
) -> pd.DataFrame:
    """Manifest rows of one side (`part`: train/dev/test/all) of a saved split, with the split column.

    Clips tagged with any of `exclude_tags` (see core.annotations) are dropped; their ids are
    left in `.attrs["excluded"]` so callers can record what they left out. `labels="corrected"`
    applies the dataset's standing relabels (core.data.relabels); `.attrs["label_provenance"]`
    says which labels the rows carry.
    """
    from core.data import annotations, relabels

    m = ds.manifest.assign(split=load_split(ds, split_name).to_numpy())
    if part != "all":
        m = m[m["split"] == part]
        if m.empty:
            raise LabError(f"split {split_name!r} of dataset {ds.name!r} has no {part!r} clips")
    kept, excluded = annotations.exclude(m.reset_index(drop=True), ds, list(exclude_tags))
    kept.attrs["excluded"] = excluded
    return relabels.apply(kept, ds, labels)


def split_info(ds: Dataset, name: str) -> dict[str, Any]:
    path = splits_dir(ds) / f"{name}.json"
    atomic.recover_pair(path.with_suffix(".csv"), path)
    return json.loads(path.read_text()) if path.exists() else {}


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
