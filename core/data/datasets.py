"""Datasets: a folder holding `manifest.csv` (one row per clip), `dataset.json` and audio.

The manifest is the contract every other module reads. Required columns identify a clip and
what must stay together in a split; optional columns describe its condition.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import atomic
from core.errors import LabError, ManifestError
from core.paths import data_root

LABELS = ("speech", "nonspeech")
REQUIRED_COLUMNS = ("clip_id", "path", "label", "group_id", "base_clip_id")
OPTIONAL_COLUMNS: dict[str, Any] = {
    "duration_ms": np.nan,
    "snr_db": np.nan,  # NaN = clean (no noise added)
    "noise_type": "none",
    "content_hash": "",
    "start_s": np.nan,  # segment of a longer file (VoxConverse-style imports)
    "end_s": np.nan,
    "source": "",
    "text": "",
}
NUMERIC_COLUMNS = ("duration_ms", "snr_db", "start_s", "end_s")
# Columns that describe a clip's condition and are offered as filters; any extra column too.
CORE_COLUMNS = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS) | {"split", "sample_rate"}


def datasets_dir() -> Path:
    return data_root() / "datasets"


@dataclass
class Dataset:
    """A loaded dataset: its folder, validated manifest and build/import information."""

    name: str
    root: Path
    manifest: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    def audio_path(self, clip_id: str) -> Path:
        row = self.row(clip_id)
        return resolve_path(self.root, row["path"])

    @cached_property
    def _positions(self) -> dict[str, int]:
        """clip_id -> manifest row, built once: a scan per lookup made loading N clips O(N²)."""
        return {cid: i for i, cid in enumerate(self.manifest["clip_id"])}

    def row(self, clip_id: str) -> pd.Series:
        i = self._positions.get(clip_id)
        if i is None:
            raise LabError(f"dataset {self.name!r} has no clip {clip_id!r}")
        return self.manifest.iloc[i]

    def load_clip(self, clip_id: str):
        """The clip's audio (a `core.audio.LoadedAudio`), cut to its segment if it has one."""
        from core.data.audio import load_audio

        row = self.row(clip_id)
        start = None if pd.isna(row.get("start_s", np.nan)) else float(row["start_s"])
        end = None if pd.isna(row.get("end_s", np.nan)) else float(row["end_s"])
        return load_audio(resolve_path(self.root, row["path"]), start_s=start, end_s=end)


def resolve_path(root: Path, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else root / p


def _lines(rows) -> str:
    """CSV line numbers of 0-based `rows` (header = line 1), the first ten and how many in all."""
    lines = [str(int(r) + 2) for r in rows]
    if len(lines) == 1:
        return f"line {lines[0]}"
    shown = ", ".join(lines[:10]) + (", …" if len(lines) > 10 else "")
    return f"lines {shown} ({len(lines)} lines)"


def validate_manifest(df: pd.DataFrame, source: str = "manifest") -> pd.DataFrame:
    """Check a manifest and fill optional columns; raise ManifestError naming every bad row/column.

    Row numbers in messages are CSV line numbers (header = line 1).
    """
    problems: list[str] = []
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    for col in missing:
        close = difflib.get_close_matches(col, [str(c) for c in df.columns], n=1, cutoff=0.6)
        hint = f" (found {close[0]!r}: misspelt?)" if close else ""
        problems.append(f"missing required column {col!r}{hint}")
    if problems:
        raise ManifestError(f"{source}: " + "; ".join(problems) + f". Required: {', '.join(REQUIRED_COLUMNS)}")
    df = df.copy()
    for col in REQUIRED_COLUMNS:
        empty = df[col].isna() | (df[col].astype(str).str.strip() == "")
        for i in np.flatnonzero(empty.to_numpy())[:20]:
            problems.append(f"line {i + 2}: empty {col!r}")
        df[col] = df[col].astype(str).str.strip()
    df["label"] = df["label"].str.lower()
    bad = ~df["label"].isin(LABELS)
    for value, rows in list(df[bad].groupby("label", sort=False).groups.items())[:20]:
        close = difflib.get_close_matches(str(value), LABELS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"{_lines(rows)}: label {value!r} is not one of {LABELS}{hint}")
    dup = df["clip_id"].duplicated(keep=False)
    if dup.any():
        for cid, rows in df[dup].groupby("clip_id").groups.items():
            lines = ", ".join(str(int(r) + 2) for r in rows)
            problems.append(f"duplicate clip_id {cid!r} on lines {lines}")
    if problems:
        more = "" if len(problems) <= 30 else f" (and {len(problems) - 30} more)"
        raise ManifestError(f"{source}: " + "; ".join(problems[:30]) + more)
    for col in NUMERIC_COLUMNS:  # a value that is not a number is an error, not a silent NaN (or "clean")
        if col in df.columns:
            raw = df[col]
            num = pd.to_numeric(raw, errors="coerce")
            given = raw.notna() & (raw.astype(str).str.strip() != "")
            for i in np.flatnonzero((given & num.isna()).to_numpy())[:20]:
                problems.append(f"line {i + 2}: {col} {raw.iloc[i]!r} is not a number")
            for i in np.flatnonzero((given & num.notna() & ~np.isfinite(num.astype(float))).to_numpy())[:20]:
                problems.append(f"line {i + 2}: {col} {raw.iloc[i]!r} is not a finite number")
            df[col] = num
    if "start_s" in df.columns or "end_s" in df.columns:
        start = df.get("start_s", pd.Series(np.nan, index=df.index)).astype(float)
        end = df.get("end_s", pd.Series(np.nan, index=df.index)).astype(float)
        for i in np.flatnonzero((start < 0).to_numpy())[:20]:
            problems.append(f"line {i + 2}: start_s {start.iloc[i]:g} is negative")
        for i in np.flatnonzero((end <= start.fillna(0)).to_numpy())[:20]:
            problems.append(f"line {i + 2}: end_s {end.iloc[i]:g} is not after start_s")
    if "duration_ms" in df.columns:
        for i in np.flatnonzero((df["duration_ms"].astype(float) <= 0).to_numpy())[:20]:
            problems.append(f"line {i + 2}: duration_ms {df['duration_ms'].iloc[i]:g} is not positive")
    if problems:
        more = "" if len(problems) <= 30 else f" (and {len(problems) - 30} more)"
        raise ManifestError(f"{source}: " + "; ".join(problems[:30]) + more)
    for col, default in OPTIONAL_COLUMNS.items():
        if col not in df.columns:
            df[col] = default
    for col in NUMERIC_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    for col in ("noise_type", "content_hash", "source", "text"):
        df[col] = df[col].astype("object").fillna(OPTIONAL_COLUMNS[col]).astype(str)
    return df.reset_index(drop=True)


def read_manifest(path: str | os.PathLike[str]) -> pd.DataFrame:
    from core.csvfiles import read_csv

    dtype = {"clip_id": str, "group_id": str, "base_clip_id": str}
    df = read_csv(path, "manifest", dtype=dtype, keep_default_na=True, error=ManifestError)
    return validate_manifest(df, source=str(path))


def condition_columns(df: pd.DataFrame) -> list[str]:
    """Columns that describe conditions (noise type, band, reverb, …) rather than identity."""
    extra = [c for c in df.columns if c not in CORE_COLUMNS]
    return ["noise_type", *extra]


def manifest_in_place(ds: Dataset) -> pd.DataFrame:
    """A copy of `ds`'s manifest with every audio path absolute: a dataset made from it (a merge, a
    copy with planted flips) reads the same files where they are, copying nothing."""
    return ds.manifest.assign(path=[str(resolve_path(ds.root, p)) for p in ds.manifest["path"]])


def save_dataset(root: Path, manifest: pd.DataFrame, info: dict[str, Any]) -> None:
    """Write manifest.csv and dataset.json atomically (each file replaced whole)."""
    from core.paths import command_line

    manifest = validate_manifest(manifest, source=str(root / "manifest.csv"))
    atomic.write_csv(root / "manifest.csv", manifest)
    atomic.write_json(root / "dataset.json", {"command": command_line(), **info})  # how to make it again


def dataset_root(name: str) -> Path:
    from core.names import check_name

    return datasets_dir() / check_name(name, "dataset")


def list_datasets() -> list[str]:
    d = datasets_dir()
    if not d.exists():
        return []
    atomic.clean_debris(d)  # a killed import's half-built folder, or a swap to undo
    return sorted(p.name for p in d.iterdir() if (p / "manifest.csv").exists() and not p.name.startswith("."))


def dataset_info(name: str) -> dict[str, Any]:
    """A dataset's dataset.json (kind, recipe or source, …) without reading its manifest."""
    info_path = dataset_root(name) / "dataset.json"
    return json.loads(info_path.read_text()) if info_path.exists() else {}


def first_choice(names: list[str]) -> str:
    """The dataset a first study opens: the real-voice set where it is built, else the synthetic default."""
    return next((n for n in ("voices", "default") if n in names), names[0] if names else "default")


def load_dataset(name: str) -> Dataset:
    root = dataset_root(name)
    if not root.exists():
        atomic.clean_debris(root.parent)  # a swap killed between its renames puts the old folder back
    if not (root / "manifest.csv").exists():
        known = ", ".join(list_datasets()) or "none"
        hint = " Build it with: python -m core data build-default" if name == "default" else ""
        raise LabError(f"no dataset {name!r} under {datasets_dir()} (known: {known}).{hint}")
    return Dataset(name, root, read_manifest(root / "manifest.csv"), dataset_info(name))
