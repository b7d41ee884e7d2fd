"""Atomic file writes: write beside the target, fsync, then rename over it.

Why: a crash or Ctrl-C mid-write must never leave a half-written manifest, split or audio
file behind; readers see either the old file or the new one. Temporary names carry the writer's
pid (`.<name>.<pid>.<random>.tmp`, `.<name>.building-<pid>-…`, `.<name>.old-<pid>-…`), so
`clean_debris` can tell a killed writer's leftovers from a live writer's work. A data file and
its JSON sidecar that must change together go through `write_pair`, a two-step journal that
`recover_pair` completes or undoes on the next read.
"""

from __future__ import annotations

import json
import os
import re
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
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=suffix or ".tmp", dir=target.parent)
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-{os.getpid()}-", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{os.getpid()}-", dir=target.parent))
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


_DEBRIS = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.[^.]+(?:\.[A-Za-z0-9]+)?|(?:building|old)-(?P<dpid>\d+)-.+)$")


def pid_alive(pid: int) -> bool:
    """True while process `pid` runs; a zombie (finished, not yet reaped) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True


def read_json_object(path: str | os.PathLike[str], what: str, error: type[Exception]) -> dict[str, Any]:
    """A JSON file holding an object, or `error` naming the file and what it should have been."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise error(f"{path}: {what} is not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise error(f"{path}: {what} should be a JSON object")
    return data


def clean_debris(folder: str | os.PathLike[str]) -> list[str]:
    """Remove what killed writers left in `folder` (temp files, half-built folders); return their names.

    A folder swap killed between its two renames leaves the target missing and the old copy aside:
    the old copy is put back (the state before the write). Leftovers of live writers are not touched.
    """
    import shutil

    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        m = _DEBRIS.match(entry.name)
        if not m or entry.name.endswith((".lock", ".pending")):
            continue
        pid = int(m.group("pid") or m.group("dpid"))
        if pid == os.getpid() or pid_alive(pid):
            continue
        target = folder / m.group("name")
        if ".old-" in entry.name and entry.is_dir() and (entry / target.name).exists() and not target.exists():
            (entry / target.name).rename(target)  # killed between the swap's two renames: undo it
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return removed


def sha256_of(path: str | os.PathLike[str]) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


PAIR_KEY = "data_sha256"  # in a pair's sidecar: the hash of the data file it belongs to


def write_pair(
    data: str | os.PathLike[str],
    write_data: Callable[[Path], Any],
    side: str | os.PathLike[str],
    make_side: Callable[[Path], dict[str, Any]],
    suffix: str = "",
) -> Path:
    """Replace a data file and its JSON sidecar as one unit.

    The new sidecar (with the new data's hash) is first written as `.<side>.pending`, then the data
    is renamed into place, then the pending sidecar. A writer killed at any point leaves either
    the old pair, or the new data with its pending sidecar, which `recover_pair` (called by readers)
    completes; never new data described by the old sidecar. Writers of one pair take turns.
    """
    data, side = Path(data), Path(side)
    pending = side.with_name(f".{side.name}.pending")
    with locked(side.with_name(f".{side.name}.lock"), str(side)):
        with atomic_path(data, suffix=suffix) as tmp:
            write_data(tmp)
            write_json(pending, {**make_side(tmp), PAIR_KEY: sha256_of(tmp)})
        os.replace(pending, side)
    return data


def recover_pair(data: str | os.PathLike[str], side: str | os.PathLike[str]) -> None:
    """Finish or undo a `write_pair` whose writer was killed: afterwards data and sidecar agree."""
    data, side = Path(data), Path(side)
    pending = side.with_name(f".{side.name}.pending")
    if not pending.exists():
        return
    with locked(side.with_name(f".{side.name}.lock"), str(side)):
        if not pending.exists():  # a live writer finished meanwhile
            return
        try:
            want = json.loads(pending.read_text(encoding="utf-8")).get(PAIR_KEY)
        except (ValueError, OSError):
            want = None
        if want and data.exists() and sha256_of(data) == want:
            os.replace(pending, side)  # the data was in place: complete the write
        else:
            pending.unlink(missing_ok=True)  # killed before the data moved: the old pair stands
