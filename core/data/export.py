"""Tables and datasets out of the lab, for pandas, polars, a notebook or the Hugging Face stack.

Parquet keeps the lab's metadata (a table's sidecar, a dataset's dataset.json) in the file's
schema metadata under `speech_lab`, so one file carries both; `read_parquet` gives them back.
A dataset exported for Hugging Face carries its audio as an `Audio` column of WAV bytes (each
clip cut to its segment, 16-bit), and `data import hf` reads it back with every column kept.
Every export is written whole (a temporary file or folder, then renamed).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from core import atomic
from core.errors import LabError

# datasets and pyarrow are imported inside functions: importing this module stays cheap

META_KEY = b"speech_lab"
FORMATS = ("parquet", "csv", "hf")


def with_metadata(df: pd.DataFrame, meta: dict[str, Any], key: bytes = META_KEY, default=str):
    """`df` as an Arrow table carrying `meta` as JSON under `key` in its schema (a Parquet file's footer)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(df, preserve_index=False)
    existing = table.schema.metadata or {}
    return table.replace_schema_metadata({**existing, key: json.dumps(meta, default=default).encode()})


def write_parquet(df: pd.DataFrame, meta: dict[str, Any], out: Path) -> Path:
    import pyarrow.parquet as pq

    return atomic.write_with(out, lambda tmp: pq.write_table(with_metadata(df, meta), tmp), suffix=".parquet")


def read_parquet(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A Parquet export and the lab metadata it carries ({} for a Parquet file from elsewhere)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several kinds for a file that is not Parquet
        raise LabError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from exc
    raw = (table.schema.metadata or {}).get(META_KEY)
    return table.to_pandas(), (json.loads(raw) if raw else {})


def write_hf(
    df: pd.DataFrame, meta: dict[str, Any], out: Path, audio: list[bytes] | None = None, names: list[str] | None = None
) -> Path:
    """A Hugging Face dataset on disk (`datasets.load_from_disk`); `audio`: WAV bytes per row, as an Audio column."""
    import datasets
    import pyarrow as pa

    features = datasets.Features.from_arrow_schema(pa.Table.from_pandas(df, preserve_index=False).schema)
    table = pa.Table.from_pandas(df, preserve_index=False)
    if audio is not None:
        features["audio"] = datasets.Audio(sampling_rate=16000)
        names = names or [f"{cid}.wav" for cid in df["clip_id"]]
        column = [{"bytes": b, "path": n} for b, n in zip(audio, names)]
        table = table.append_column("audio", pa.array(column, type=features["audio"].pa_type))
    info = datasets.DatasetInfo(description=json.dumps(meta, default=str), features=features)
    ds = datasets.Dataset(table, info=info)
    with atomic.building_dir(out) as tmp:
        ds.save_to_disk(str(tmp))
    return out


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise LabError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def write_table_as(df: pd.DataFrame, meta: dict[str, Any], out: Path, fmt: str) -> Path | None:
    """`df` with `meta` as Parquet (metadata inside) or CSV + JSON sidecar; None for 'hf' (the caller adds audio)."""
    if fmt == "parquet":
        return write_parquet(df, meta, out)
    if fmt == "csv":
        atomic.write_json(out.with_suffix(".json"), meta)
        return atomic.write_csv(out, df)
    return None


def wav_bytes(samples, sr: int = 16000) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def export_dataset(name: str, out: str | Path, fmt: str = "parquet", progress=None) -> Path:
    """A dataset's manifest (and, for `hf`, its audio) with its dataset.json as metadata."""
    from core.data.datasets import load_dataset

    check_format(fmt)
    ds = load_dataset(name)
    meta = {**ds.info, "lab_export": "dataset"}
    manifest = ds.manifest.drop(columns=["path"])
    out = Path(out).expanduser()
    if (written := write_table_as(manifest, meta, out, fmt)) is not None:
        return written
    audio, names = [], []
    for i, row in enumerate(ds.manifest.itertuples(index=False)):
        whole = pd.isna(getattr(row, "start_s", None)) and pd.isna(getattr(row, "end_s", None))
        source = ds.audio_path(row.clip_id) if whole else None
        if source is not None:  # a whole file: its own bytes, so a re-import decodes the very same samples
            audio.append(source.read_bytes())
            names.append(f"{row.clip_id}{source.suffix.lower()}")
        else:  # a segment: cut, as 16-bit WAV at the lab's rate
            audio.append(wav_bytes(ds.load_clip(row.clip_id).samples))
            names.append(f"{row.clip_id}.wav")
        if progress and (i % 200 == 0 or i == len(manifest) - 1):
            progress((i + 1) / len(manifest), f"encoded {i + 1}/{len(manifest)} clips")
    return write_hf(manifest, meta, out, audio, names)
