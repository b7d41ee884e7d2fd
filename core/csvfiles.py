"""Reading the lab's CSV files: a malformed file is refused with a message naming the file and line.

Manifests, predictions tables, splits and annotations all come through `read_csv`, so each
refuses the same things the same way: a missing or empty file, text that is not UTF-8 (a
byte-order mark is accepted), an unterminated quote, a row with more or fewer fields than the
header (pandas would silently fill a short row with empty values), missing columns. Never a
pandas traceback, never a silently padded row.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from core.errors import LabError

FULL_CHECK_BYTES = 64 * 1024 * 1024  # rows of larger files are counted in the last 1 MiB only


class CSVError(LabError):
    """A CSV file cannot be read as the table it should be."""


def _check_rows(path: Path, what: str, error: type[LabError]) -> None:
    """Check every row has the header's number of fields (quote-aware).

    Files over FULL_CHECK_BYTES are checked at their end only, where an interrupted write
    leaves its mark.
    """
    size = path.stat().st_size
    with open(path, encoding="utf-8-sig", newline="") as fh:
        if size <= FULL_CHECK_BYTES:
            text = fh.read()
            start_line = 1
        else:
            header = fh.readline()
            fh.seek(max(0, size - (1 << 20)))
            tail = fh.read()
            text = header + tail[tail.find("\n") + 1 :]
            start_line = None
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise error(f"{path}: empty {what} (no header line)") from None
    except csv.Error as exc:
        raise error(f"{path}: {what} header line is malformed ({exc})") from exc
    n = len(header)
    try:
        for row in reader:
            if row and len(row) != n:
                where = f"line {reader.line_num}" if start_line else "near the end"
                raise error(
                    f"{path}: {where} has {len(row)} field(s), the header has {n} "
                    f"({'truncated' if len(row) < n else 'extra separators in a'} row; "
                    "an interrupted write or an edit?)"
                )
    except csv.Error as exc:
        raise error(f"{path}: {what} is malformed near line {reader.line_num} ({exc}; an unterminated quote?)") from exc


def read_csv(
    path: str | os.PathLike[str],
    what: str,
    required: Iterable[str] = (),
    dtype: dict | type | None = None,
    allow_empty: bool = False,
    error: type[LabError] = CSVError,
    **kw,
) -> pd.DataFrame:
    """`path` read as a table of `what` (for messages), with its `required` columns.

    Extra keyword arguments go to `pandas.read_csv`. Errors are `error` (a LabError: the
    caller's kind, e.g. ManifestError) and name the file and, where there is one, the line.
    """
    path = Path(path)
    if not path.exists():
        raise error(f"{path}: {what} not found")
    if not path.is_file():
        raise error(f"{path}: {what} should be a file, found a {'folder' if path.is_dir() else 'special file'}")
    try:
        _check_rows(path, what, error)
        df = pd.read_csv(path, dtype=dtype, encoding="utf-8-sig", **kw)
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {what} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from exc
    except pd.errors.EmptyDataError as exc:
        raise error(f"{path}: empty {what}") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        raise error(f"{path}: {what} cannot be parsed ({exc})") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise error(f"{path}: missing column(s) {missing} for a {what}; found {[str(c) for c in df.columns]}")
    if df.empty and not allow_empty:
        raise error(f"{path}: {what} has a header but no rows")
    return df


def read_side_table(path: str | os.PathLike[str], what: str, columns: list[str]) -> pd.DataFrame:
    """A dataset's side table (tags, relabels: text columns `columns`), empty when it was never
    written; read like any CSV (errors name the file), extra columns dropped."""
    if not Path(path).exists():
        return pd.DataFrame(columns=columns)
    return read_csv(path, what, columns, dtype=str, keep_default_na=False, allow_empty=True)[columns]
