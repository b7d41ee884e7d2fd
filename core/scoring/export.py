"""A predictions table out of the lab: Parquet (metadata inside), CSV with its sidecar, or a Hugging Face dataset."""

from __future__ import annotations

from pathlib import Path

from core import atomic
from core.data.export import FORMATS, write_hf, write_parquet
from core.errors import LabError
from core.scoring import predictions


def export_table(name_or_path: str, out: str | Path, fmt: str = "parquet") -> Path:
    """Write table `name_or_path` to `out` as `fmt`; the sidecar's facts travel with it."""
    if fmt not in FORMATS:
        raise LabError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    path = predictions.resolve(name_or_path)
    table, meta = predictions.load(path)
    meta = {**meta, "lab_export": "predictions", "table": path.stem}
    out = Path(out).expanduser()
    if fmt == "parquet":
        return write_parquet(table, meta, out)
    if fmt == "csv":
        atomic.write_json(out.with_suffix(".json"), meta)
        return atomic.write_csv(out, table)
    return write_hf(table, meta, out)
