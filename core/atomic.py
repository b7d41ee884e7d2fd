"""Atomic file writes: write beside the target, fsync, then rename over it.

Why: a crash or Ctrl-C mid-write must never leave a half-written manifest, split or audio
file behind; readers see either the old file or the new one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it over `target` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_with(target: str | os.PathLike[str], writer: Callable[[Path], Any], suffix: str = "") -> Path:
    """Call `writer(tmp_path)` and atomically move the result to `target`."""
    with atomic_path(target, suffix=suffix) as tmp:
        writer(tmp)
    return Path(target)


def write_text(target: str | os.PathLike[str], text: str) -> Path:
    return write_with(target, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(target: str | os.PathLike[str], obj: Any) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n")


def write_csv(target: str | os.PathLike[str], df: pd.DataFrame) -> Path:
    return write_with(target, lambda p: df.to_csv(p, index=False), suffix=".csv")


def json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


@contextmanager
def building_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary sibling folder to build `target` in; swap it into place on success.

    The old folder is renamed aside first and deleted only after the new one is in place, so an
    interruption leaves either the old or the new folder, never a half-built one; on an error
    (or Ctrl-C) the temporary folder is removed and any old folder stays as it was.
    """
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            target.rename(trash / target.name)
            tmp.rename(target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def locked(lock_file: str | os.PathLike[str], what: str, timeout_s: float = 600.0) -> Iterator[None]:
    """Hold an exclusive lock (flock) on `lock_file` while the block runs; wait for it up to `timeout_s`.

    For work two processes must not do at once on the same thing (importing one dataset name).
    The lock goes with the process: a killed holder leaves no stale lock behind.
    """
    import fcntl
    import time

    from core.errors import LabError

    path = Path(lock_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        t0 = time.monotonic()
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - t0 > timeout_s:
                    raise LabError(f"{what} is busy (another process holds {path}); try again later") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
