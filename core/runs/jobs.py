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

TERMINAL = {"finished", "failed", "cancelled"}


def jobs_dir() -> Path:
    return results_root() / "jobs"


def spawn(folder: Path, args: list[str], env: dict[str, str] | None = None) -> int:
    """Run `python -m core <args>` in its own process group, output to folder/log.txt; return its pid.

    `env`: variables added to this process's environment (e.g. which GPU the job may use).
    """
    cmd = [sys.executable, "-m", "core", *[str(a) for a in args]]
    with open(folder / "log.txt", "ab") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=repo_root(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    atomic.write_json(folder / "pid.json", {"pid": proc.pid, "cmd": cmd})
    return proc.pid


def launch(kind: str, args: list[str], label: str = "") -> str:
    """Start `python -m core <args> --job-dir DIR` in the background; return the job id."""
    job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{uuid.uuid4().hex[:6]}"
    folder = jobs_dir() / job_id
    folder.mkdir(parents=True)
    args = [*args, "--job-dir", str(folder)]
    atomic.write_json(
        folder / "job.json", {"id": job_id, "kind": kind, "label": label, "args": args, "created": time.time()}
    )
    write_status(folder, "queued", 0.0, "starting")
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (finished, not yet reaped) is not running
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True


def folder_status(folder: Path) -> dict[str, Any]:
    """status.json of a job or run folder; one whose process vanished without a final state is failed."""
    st = json.loads((folder / "status.json").read_text())
    pid_file = folder / "pid.json"
    if st["state"] not in TERMINAL and pid_file.exists():
        pid = json.loads(pid_file.read_text())["pid"]
        if not _alive(pid):
            time.sleep(0.2)  # it may have written its final state just now
            st = json.loads((folder / "status.json").read_text())
            if st["state"] not in TERMINAL:
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
    """SIGTERM the process group of a job or run folder; it records itself as cancelled."""
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
