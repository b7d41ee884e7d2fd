"""Background jobs: a `python -m core ...` subprocess per job, its state in files.

Why files: a job started from the dashboard must survive a page reload or an app restart,
so the page only reads `results/jobs/<id>/status.json` and sends signals. The command runs
without a shell (an argument list), in its own process group so it can be cancelled whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core import atomic
from core.errors import LabError
from core.paths import repo_root, results_root
from core.runs import placement

TERMINAL = {"finished", "failed", "cancelled"}


def jobs_dir() -> Path:
    return results_root() / "jobs"


LOCK = ".owner.lock"  # held by the one process that works on a folder, for as long as it lives
CANCEL = "cancel_requested"  # written before a cancel's signal, so a process killed early still reads cancelled


def owner_lock(folder: Path) -> int | None:
    """An open descriptor holding the folder's exclusive lock, or None when another process holds it."""
    import fcntl

    fd = os.open(Path(folder) / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def busy(folder: Path) -> bool:
    """True while some process holds the folder's lock (it is training or running it)."""
    fd = owner_lock(folder)
    if fd is None:
        return True
    os.close(fd)
    return False


def spawn(folder: Path, args: list[str], env: dict[str, str] | None = None, lock_fd: int | None = None) -> int:
    """Run `python -m core <args>` in its own process group, output to folder/log.txt; return its pid.

    `env`: variables added to this process's environment (e.g. which GPU the job may use).
    `lock_fd`: the folder's lock (see `start_locked`), handed to the child (LAB_LOCK_FD) and
    closed here: the child holds it for as long as it lives.
    """
    if lock_fd is not None:
        env = {**(env or {}), "LAB_LOCK_FD": str(lock_fd)}
    (folder / CANCEL).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "core", *[str(a) for a in args]]
    try:
        with open(folder / "log.txt", "ab") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=repo_root(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                pass_fds=(lock_fd,) if lock_fd is not None else (),
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            )
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
    atomic.write_json(folder / "pid.json", {"pid": proc.pid, "cmd": cmd})
    return proc.pid


def start_locked(folder: Path, args: list[str], message: str, progress: float = 0.0, env=None) -> int:
    """Start the one process that works on `folder` (a run, a sweep, a prompt study), or refuse.

    Takes the folder's lock first, so two launches at once (two pages, a page and the CLI)
    start one process and the other is told it is already running; only then writes the
    status, so a refused launch changes nothing on disk.
    """
    from core.errors import LabError

    fd = owner_lock(folder)
    t0 = time.monotonic()
    # a process that has written its final state may take a moment to exit and let go
    while fd is None and (folder / "status.json").exists() and folder_status(folder)["state"] in TERMINAL:
        if time.monotonic() - t0 > 15:
            break
        time.sleep(0.2)
        fd = owner_lock(folder)
    if fd is None:
        raise LabError(f"{Path(folder).name} is already running (another process holds it)")
    try:
        write_status(folder, "running", progress, message)
    except BaseException:
        os.close(fd)
        raise
    return spawn(folder, args, env=env, lock_fd=fd)


def hold_lock(folder: Path) -> int | None:
    """In the process that works on `folder`: the lock its launcher handed over, or the lock taken now.

    Returns the descriptor (kept open for the process's life), or None when another process holds
    the lock: then this one must not touch the folder.
    """
    if os.environ.get("LAB_LOCK_HELD") == "1":  # a Ray task: its driver holds the lock
        return -1
    inherited = os.environ.pop("LAB_LOCK_FD", None)
    if inherited is not None:
        try:
            os.fstat(int(inherited))
            return int(inherited)
        except (OSError, ValueError):
            pass  # not handed down to this process (e.g. a data-parallel worker): take it
    if int(os.environ.get("RANK", "0")) != 0:
        return -1  # data-parallel processes other than the main one write nothing: no lock needed
    return owner_lock(folder)


def cancel_requested(folder: Path) -> bool:
    return (Path(folder) / CANCEL).exists()


def launch(kind: str, args: list[str], label: str = "", executor=None) -> str:
    """Start `python -m core <args> --job-dir DIR` in the background; return the job id.

    `executor` (core.runs.executors.Executor): with Ray, a local driver runs the same command as
    a Ray task.
    """
    job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{uuid.uuid4().hex[:6]}"
    folder = jobs_dir() / job_id
    folder.mkdir(parents=True)
    args = [*args, "--job-dir", str(folder)]
    atomic.write_json(
        folder / "job.json", {"id": job_id, "kind": kind, "label": label, "args": args, "created": time.time()}
    )
    write_status(folder, "queued", 0.0, "starting")
    if executor is not None and executor.ray:
        placement.save(folder, executor)
        spawn(folder, ["ray-drive", "--job", job_id])
    else:
        spawn(folder, args)
    return job_id


def write_status(folder: Path, state: str, progress: float, message: str, **extra: Any) -> None:
    atomic.write_json(
        Path(folder) / "status.json",
        {"state": state, "progress": round(float(progress), 4), "message": message, "updated": time.time(), **extra},
    )


def reporter(folder: Path | None) -> Callable[[float, str], None] | None:
    """A progress callback writing status.json at most twice a second (None without a job dir)."""
    if folder is None:
        return None
    last = [0.0]

    def report(frac: float, msg: str) -> None:
        now = time.time()
        if now - last[0] > 0.5 or frac >= 1.0:
            write_status(folder, "running", frac, msg)
            last[0] = now

    return report


def folder_status(folder: Path) -> dict[str, Any]:
    """status.json of a job or run folder; one whose process vanished without a final state is failed."""
    st = json.loads((folder / "status.json").read_text())
    pid_file = folder / "pid.json"
    if st["state"] not in TERMINAL and pid_file.exists():
        pid = json.loads(pid_file.read_text())["pid"]
        if not atomic.pid_alive(pid):
            time.sleep(0.2)  # it may have written its final state just now
            st = json.loads((folder / "status.json").read_text())
            if st["state"] not in TERMINAL and cancel_requested(folder):
                st = {**st, "state": "cancelled", "message": "cancelled before it could record it; resumable"}
            elif st["state"] not in TERMINAL:
                st = {**st, "state": "failed", "message": "the process ended without reporting (killed?)"}
    return st


def status(job_id: str) -> dict[str, Any]:
    """The job's description and status."""
    folder = jobs_dir() / job_id
    if not (folder / "job.json").exists():
        raise LabError(f"no job {job_id!r}")
    return {**json.loads((folder / "job.json").read_text()), **folder_status(folder)}


def list_jobs(kind: str | None = None) -> list[dict[str, Any]]:
    d = jobs_dir()
    if not d.exists():
        return []
    out = []
    for folder in sorted(d.iterdir(), reverse=True):
        if (folder / "job.json").exists():
            s = status(folder.name)
            if kind is None or s["kind"] == kind:
                out.append(s)
    return out


def signal_folder(folder: Path) -> None:
    """SIGTERM the process group of a job or run folder; it records itself as cancelled.

    The intent is written first: a process signalled before it could handle the signal (just
    started) is then read as cancelled, not failed. Nothing to cancel is a message, not a crash.
    """
    from core.errors import LabError

    folder = Path(folder)
    if not (folder / "pid.json").exists():
        raise LabError(f"{folder.name} has not been started: nothing to cancel")
    if folder_status(folder)["state"] in TERMINAL:
        raise LabError(f"{folder.name} is not running: nothing to cancel")
    atomic.write_text(folder / CANCEL, str(time.time()))
    pid = json.loads((folder / "pid.json").read_text())["pid"]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)


def cancel(job_id: str) -> None:
    signal_folder(jobs_dir() / job_id)


def log_tail(job_id: str, lines: int = 20) -> str:
    return log_tail_of(jobs_dir() / job_id, lines)


def log_tail_of(folder: Path, lines: int = 20) -> str:
    """The last `lines` lines of a job, run or study folder's log.txt ("" when none)."""
    path = Path(folder) / "log.txt"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def eta_seconds(job: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds left for a running job at its average pace since launch (None until 2% is done).

    The pace includes loading the model, so the estimate starts pessimistic and improves.
    """
    p = float(job.get("progress") or 0.0)
    if job.get("state") != "running" or p < 0.02 or p >= 1.0 or not job.get("created"):
        return None
    elapsed = (now or time.time()) - float(job["created"])
    return max(0.0, elapsed * (1.0 - p) / p)


def archive_finished(kind: str | None = None, ids: set[str] | None = None) -> int:
    """Move finished, failed and cancelled job folders (of `kind`, among `ids`) to jobs/.archive; return how many.

    Their tables and datasets stay where they are; only the job listing gets shorter.
    """
    moved = 0
    archive = jobs_dir() / ".archive"
    for j in list_jobs(kind):
        if j["state"] in TERMINAL and (ids is None or j["id"] in ids):
            archive.mkdir(parents=True, exist_ok=True)
            os.replace(jobs_dir() / j["id"], archive / j["id"])
            moved += 1
    return moved
