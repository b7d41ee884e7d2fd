"""A predictions table out of the lab: Parquet (metadata inside), CSV with its sidecar, or a Hugging Face dataset."""

from __future__ import annotations

from pathlib import Path

from core.data.export import check_format, write_hf, write_table_as
from core.scoring import predictions


def export_table(name_or_path: str, out: str | Path, fmt: str = "parquet") -> Path:
    """Write table `name_or_path` to `out` as `fmt`; the sidecar's facts travel with it."""
    check_format(fmt)
    path = predictions.resolve(name_or_path)
    table, meta = predictions.load(path)
    meta = {**meta, "lab_export": "predictions", "table": path.stem}
    out = Path(out).expanduser()
    return write_table_as(table, meta, out, fmt) or write_hf(table, meta, out)
