"""Per-clip tags ("label wrong", "ambiguous", …) kept in the dataset's annotations.csv.

Why a file beside the manifest, not a manifest column: tags are the researcher's judgement,
added while looking at errors; the manifest stays what the importer or recipe produced.
Evaluation and training can exclude tagged clips, and record which ones they left out.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from core import atomic
from core.data.datasets import Dataset
from core.errors import LabError
from core.names import check_tag

COLUMNS = ["clip_id", "tag", "note", "created"]
SUGGESTED = ("label wrong", "ambiguous", "bad audio", "duplicate")


def path(ds: Dataset):
    return ds.root / "annotations.csv"


def load(ds: Dataset) -> pd.DataFrame:
    """All tags of a dataset (empty table when none were set)."""
    from core.csvfiles import read_side_table

    return read_side_table(path(ds), "annotations file", COLUMNS)


def set_tag(ds: Dataset, clip_id: str, tag: str, note: str = "") -> pd.DataFrame:
    """Tag a clip (idempotent per clip and tag); the file is replaced atomically."""
    tag = check_tag(tag)
    if clip_id not in set(ds.manifest["clip_id"]):
        raise LabError(f"dataset {ds.name!r} has no clip {clip_id!r}")
    t = load(ds)
    t = t[~((t["clip_id"] == clip_id) & (t["tag"] == tag))]
    row = {"clip_id": clip_id, "tag": tag, "note": note, "created": datetime.now(UTC).isoformat(timespec="seconds")}
    t = pd.concat([t, pd.DataFrame([row])], ignore_index=True)
    atomic.write_csv(path(ds), t)
    return t


def remove_tag(ds: Dataset, clip_id: str, tag: str) -> pd.DataFrame:
    t = load(ds)
    t = t[~((t["clip_id"] == clip_id) & (t["tag"] == tag))]
    atomic.write_csv(path(ds), t)
    return t


def tagged(ds: Dataset, tags: list[str] | tuple[str, ...]) -> set[str]:
    """Clip ids carrying any of `tags`."""
    t = load(ds)
    return set(t.loc[t["tag"].isin(list(tags)), "clip_id"])


def exclude(clips: pd.DataFrame, ds: Dataset, tags: list[str] | tuple[str, ...]) -> tuple[pd.DataFrame, list[str]]:
    """Drop clips tagged with any of `tags`; returns (kept clips, sorted excluded ids)."""
    if not tags:
        return clips, []
    ids = tagged(ds, tags)
    drop = clips["clip_id"].isin(ids)
    return clips[~drop].reset_index(drop=True), sorted(clips.loc[drop, "clip_id"])
