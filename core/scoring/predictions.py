"""Predictions tables: the contract between scoring and every later view.

One row per clip: identity and conditions copied from the manifest, the two answer-token
logits, `logit` = logit_A − logit_B (the log-odds of speech under a softmax restricted to
the two answers) and `p_speech` = sigmoid(logit). A JSON sidecar records how it was made.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import atomic
from core.data.export import with_metadata
from core.decision import sigmoid
from core.errors import LabError
from core.paths import results_root

# pyarrow is imported inside functions: importing this module stays cheap

REQUIRED = [
    "clip_id",
    "label",
    "group_id",
    "base_clip_id",
    "split",
    "duration_ms",
    "snr_db",
    "logit_A",
    "logit_B",
    "logit",
    "p_speech",
    "detector",
    "adapter",
    "seed",
    "prompt",
]


class PredictionsError(LabError):
    """A predictions table is malformed or holds NaN logits."""


SUFFIXES = (".parquet", ".csv")  # tables are written as Parquet (benchmarks/bench_table_storage.py); CSV still read
FORMAT = ".parquet"


def build_table(
    clips: pd.DataFrame,
    logits: np.ndarray,
    *,
    detector: str,
    adapter: str = "",
    seed: int | None = None,
    prompt: str = "",
) -> pd.DataFrame:
    """Predictions for `clips` (manifest rows with a split column) from (n, 2) answer logits."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape != (len(clips), 2):
        raise PredictionsError(f"expected logits of shape ({len(clips)}, 2), got {logits.shape}")
    out = clips.reset_index(drop=True).copy()
    out["logit_A"], out["logit_B"] = logits[:, 0], logits[:, 1]
    out["logit"] = logits[:, 0] - logits[:, 1]
    out["p_speech"] = sigmoid(out["logit"])
    out["detector"], out["adapter"] = detector, adapter
    out["seed"] = -1 if seed is None else int(seed)
    out["prompt"] = prompt
    for drop in ("path", "content_hash", "start_s", "end_s", "text", "sample_rate"):
        if drop in out.columns:
            out = out.drop(columns=drop)
    validate(out)
    return out


def validate(df: pd.DataFrame, source: str = "predictions") -> pd.DataFrame:
    """Check columns, unique ids and finite logits; errors name the clips at fault."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise PredictionsError(f"{source}: missing column(s) {missing}")
    dup = df["clip_id"][df["clip_id"].duplicated()]
    if len(dup):
        raise PredictionsError(f"{source}: clip_id {dup.iloc[0]!r} appears more than once")
    for col in ("logit_A", "logit_B", "logit"):
        num = pd.to_numeric(df[col], errors="coerce")
        text = num.isna() & df[col].notna()
        if text.any():
            i = int(np.flatnonzero(text.to_numpy())[0])
            raise PredictionsError(f"{source}: line {i + 2}: {col} {df[col].iloc[i]!r} is not a number")
    labels = set(df["label"].astype(str))
    if not labels <= {"speech", "nonspeech"}:
        raise PredictionsError(
            f"{source}: labels must be speech or nonspeech, found {sorted(labels - {'speech', 'nonspeech'})}"
        )
    bad = ~np.isfinite(df[["logit_A", "logit_B"]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)).all(
        axis=1
    )
    if bad.any():
        ids = df["clip_id"][bad].tolist()
        raise PredictionsError(
            f"{source}: {len(ids)} clip(s) have NaN or infinite logits, e.g. {ids[:5]}; "
            "they are not kept (check the model's dtype or the input audio)"
        )
    return df


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80] or "x"


META_KEY = b"lab_sidecar"  # the sidecar inside a Parquet table's footer: data and facts are one file


def save(table: pd.DataFrame, meta: dict[str, Any], name: str | None = None, folder: Path | None = None) -> Path:
    """Write results/predictions/<name>.parquet and its .json sidecar (or into `folder`); return the table's path.

    The sidecar travels inside the Parquet file's footer, so one rename publishes the data and
    its facts together: a reader never sees one without the other, or a mix of two writes (the
    .json beside it is a copy for people and older readers; `read_meta` trusts the footer). A
    table without a given name gets a fresh one that no other writer can take (a stamp, a random
    suffix and a no-replace link), so two jobs that finish together both keep their tables. A given
    name replaces the table of that name, in either format.
    """
    validate(table)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder = Path(folder) if folder is not None else results_root() / "predictions"
    from core.paths import command_line

    side = {"command": command_line(), **meta, "created": stamp, "n_clips": len(table), "write_id": uuid.uuid4().hex}
    arrow = with_metadata(table, side, META_KEY, atomic.json_default)
    folder.mkdir(parents=True, exist_ok=True)
    if name:
        path = folder / f"{_slug(name)}{FORMAT}"
        atomic.write_with(path, lambda tmp: _write_arrow(arrow, tmp), suffix=FORMAT)
    else:
        where = f"{meta.get('dataset', 'data')}-{meta.get('split_name', '')}-{meta.get('part', '')}-{meta.get('detector', '')}"
        path = _write_new(folder, _slug(f"{where}-{stamp}"), arrow)
    atomic.write_json(path.with_suffix(".json"), side)
    for other in SUFFIXES:
        if other != FORMAT:
            path.with_suffix(other).unlink(missing_ok=True)
    return path


def _write_arrow(arrow, path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(arrow, path)


def _write_new(folder: Path, base: str, arrow) -> Path:
    """Publish `arrow` under a name no table has yet: link (never replaces) a finished temp file."""
    import tempfile

    fd, tmp_name = tempfile.mkstemp(prefix=f".{base}.{os.getpid()}.", suffix=FORMAT, dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _write_arrow(arrow, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        for _ in range(100):
            path = folder / f"{base}-{uuid.uuid4().hex[:6]}{FORMAT}"
            try:
                os.link(tmp, path)
                return path
            except FileExistsError:
                continue
        raise LabError(f"could not find a free table name in {folder} after 100 tries")
    finally:
        tmp.unlink(missing_ok=True)


def write_table(path: Path, table: pd.DataFrame) -> Path:
    """A table written whole (temp file, then rename) as Parquet or CSV by `path`'s suffix."""
    if path.suffix == ".parquet":
        return atomic.write_with(path, lambda tmp: table.to_parquet(tmp, index=False), suffix=".parquet")
    return atomic.write_csv(path, table)


def read_meta(path: str | Path) -> dict[str, Any]:
    """A table's sidecar: from a Parquet table's footer when it has one, else the .json beside it."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            with open(path, "rb") as fh:
                blob = (pq.read_schema(fh).metadata or {}).get(META_KEY)
        except Exception as exc:  # pyarrow raises several kinds for a file that is not Parquet
            raise PredictionsError(f"{path}: not a readable Parquet table ({type(exc).__name__}: {exc})") from exc
        if blob is not None:
            return json.loads(blob)
    side = path.with_suffix(".json")
    return atomic.read_json_object(side, "the table's sidecar", PredictionsError) if side.exists() else {}


def list_tables() -> list[Path]:
    folder = results_root() / "predictions"
    if not folder.exists():
        return []
    atomic.clean_debris(folder)
    found = [p for suffix in SUFFIXES for p in folder.glob(f"*{suffix}") if p.is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def load(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    from core.csvfiles import read_csv

    path = Path(path)
    dtype = {"clip_id": str, "group_id": str, "base_clip_id": str, "label": str}
    embedded = None
    if path.suffix == ".parquet":
        df, embedded = _read_parquet(path)  # rows and sidecar from one open file: never two versions
        for col, kind in dtype.items():
            if col in df:
                df[col] = df[col].astype(kind)
    else:
        df = read_csv(path, "predictions table", REQUIRED, dtype=dtype, keep_default_na=True, error=PredictionsError)
    for col in ("adapter", "prompt"):
        df[col] = df[col].astype("object").fillna("").astype(str)
    meta = embedded if embedded is not None else read_meta(path)
    if isinstance(meta.get("n_clips"), int) and meta["n_clips"] != len(df):
        raise PredictionsError(
            f"{path}: {len(df)} rows, but its sidecar says {meta['n_clips']} clips were scored "
            "(the table was truncated or edited after it was written)"
        )
    return validate(df, str(path)), meta


def _read_parquet(path: Path) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """A Parquet table and the sidecar in its footer (None for a table without one), with the CSV
    reader's promises: readable, the required columns present."""
    import pyarrow.parquet as pq

    try:
        with open(path, "rb") as fh:  # one open file: a table renamed over it meanwhile is not mixed in
            arrow = pq.read_table(fh)
        blob = (arrow.schema.metadata or {}).get(META_KEY)
        df = arrow.to_pandas()
    except FileNotFoundError:
        raise PredictionsError(f"{path}: no such predictions table") from None
    except Exception as exc:  # pyarrow raises several kinds for a file that is not Parquet
        raise PredictionsError(f"{path}: not a readable Parquet table ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise PredictionsError(f"{path}: predictions table is missing column(s) {missing}")
    return df, (json.loads(blob) if blob is not None else None)


def resolve(name_or_path: str | Path) -> Path:
    """A predictions table from a path or a table name under results/predictions (stem, no suffix)."""
    p = Path(name_or_path)
    if p.suffix in SUFFIXES and p.exists():
        return p
    stem = p.name
    for suffix in SUFFIXES:
        stem = stem.removesuffix(suffix)
    for suffix in SUFFIXES:
        candidate = results_root() / "predictions" / f"{stem}{suffix}"
        if candidate.exists():
            return candidate
    names = [t.stem for t in list_tables()][:10]
    raise PredictionsError(f"no predictions table {str(name_or_path)!r}; known tables include {names}")


def analysis_dir(table_path: str | Path) -> Path:
    """Where analyses of one table go: <table>.analysis/ beside it (never mistaken for a table)."""
    p = Path(table_path)
    return p.with_name(f"{p.stem}.analysis")


def describe_tables() -> pd.DataFrame:
    """One row per saved table (newest first) with its sidecar facts, for pickers and listings."""
    rows = []
    for path in list_tables():
        try:
            meta = read_meta(path)
        except (PredictionsError, ValueError):
            meta = {}
        rows.append(
            {
                "table": path.stem,
                "detector": meta.get("detector", ""),
                "dataset": meta.get("dataset", ""),
                "split_name": meta.get("split_name", ""),
                "part": meta.get("part", ""),
                "adapter": meta.get("adapter", ""),
                "clips": meta.get("n_clips"),
                "accuracy": meta.get("accuracy"),
                "clips_per_s": meta.get("clips_per_s"),
                "device": meta.get("device", ""),
                "created": meta.get("created", ""),
                "path": str(path),
            }
        )
    columns = ["table", "detector", "dataset", "split_name", "part", "adapter", "clips", "accuracy", "clips_per_s"]
    return pd.DataFrame(rows, columns=[*columns, "device", "created", "path"])


def display_name(row: dict[str, Any] | pd.Series) -> str:
    """A table as a person reads it: detector (+ run), dataset/split/part, date.

    `row`: a `describe_tables()` row. Pickers show this, not the file stem, which is an id.
    """
    adapter = str(row.get("adapter") or "")
    run = Path(adapter).parent.name if Path(adapter).name == "adapter" else Path(adapter).name
    det = str(row.get("detector") or row.get("table", "?"))
    det += f" + run {run}" if adapter and run not in det else ""
    where = "/".join(str(row.get(k) or "?") for k in ("dataset", "split_name", "part"))
    stamp = str(row.get("created") or "")
    when = f"{stamp[4:6]}-{stamp[6:8]} {stamp[9:11]}:{stamp[11:13]}" if len(stamp) >= 13 else ""
    return f"{det} · {where}" + (f" · {when}" if when else "")


def _alike(table: str, tables: pd.DataFrame | None, keys: list[str]) -> pd.DataFrame:
    """The other tables whose sidecars agree with `table`'s on `keys` (newest first)."""
    t = describe_tables() if tables is None else tables
    if t.empty or table not in set(t["table"]):
        return t.iloc[:0]
    me = t[t["table"] == table].iloc[0]
    return t[(t[keys] == me[keys]).all(axis=1) & (t["table"] != table)]


def peers(table: str, tables: pd.DataFrame | None = None) -> list[str]:
    """Other tables scored on the same clips (same dataset, split and part), newest first.

    What `table` can be compared with clip by clip; tables of other clips share no clip_id.
    """
    return _alike(table, tables, ["dataset", "split_name", "part"])["table"].tolist()


def counterpart(table: str, part: str = "dev", tables: pd.DataFrame | None = None) -> str | None:
    """The newest table scored by the same detector on the same split, but on another `part`.

    `tables`: a `describe_tables()` frame the caller already has (saves re-reading every sidecar).
    """
    same = _alike(table, tables, ["detector", "dataset", "split_name", "adapter"])
    same = same[same["part"] == part]
    return None if same.empty else str(same.iloc[0]["table"])
