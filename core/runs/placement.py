"""Where a run or job runs: the executor chosen for it (here, or a Ray cluster) and the node and
GPUs it ran on, as small files in its folder. Below both the job runner (`jobs`) and the Ray
driver (`executors`), which read and write them.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core import atomic
from core.errors import LabError

EXECUTOR_FILE = "executor.json"  # in a run or job folder: where it runs (kept for resume and display)
PLACEMENT_FILE = "placement.json"  # written by the task: the node and GPUs it ran on


@dataclass
class Executor:
    """`local`, or `ray` with the cluster's address ("auto", "ray://host:port", "127.0.0.1:6379")."""

    kind: str = "local"
    address: str = ""
    cpus: int = 1  # per task on a cluster without GPUs

    @classmethod
    def choose(cls, kind: str | None = None, address: str | None = None, cpus: int = 1) -> Executor:
        """From flags, else from LAB_RAY_ADDRESS (which means Ray), else local."""
        address = address or os.environ.get("LAB_RAY_ADDRESS", "")
        kind = kind or ("ray" if address else "local")
        if kind not in ("local", "ray"):
            raise LabError(f"executor must be 'local' or 'ray', got {kind!r}")
        if kind == "ray" and not address:
            raise LabError(
                "the Ray executor needs a cluster address: --address auto|ray://HOST:PORT, or LAB_RAY_ADDRESS"
            )
        return cls(kind, address if kind == "ray" else "", cpus)

    @property
    def ray(self) -> bool:
        return self.kind == "ray"


def save(folder: Path, executor: Executor) -> None:
    atomic.write_json(Path(folder) / EXECUTOR_FILE, asdict(executor))


def of(folder: Path) -> Executor:
    """The executor a folder was started with (local when it says nothing)."""
    path = Path(folder) / EXECUTOR_FILE
    return Executor(**json.loads(path.read_text())) if path.exists() else Executor()


def placement(folder: Path) -> dict[str, Any]:
    path = Path(folder) / PLACEMENT_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def record_local(folder: Path, env: dict[str, str] | None) -> None:
    """Where a local launch runs: this host, and the GPU its slot gave it (a sweep's one GPU per run)."""
    import socket

    gpus = [g for g in (env or {}).get("CUDA_VISIBLE_DEVICES", "").split(",") if g]
    atomic.write_json(
        Path(folder) / PLACEMENT_FILE,
        {"node": "local", "host": socket.gethostname(), "gpus": gpus, "started": time.time()},
    )


def where(folder: Path) -> str:
    """Where a run or job ran, for display: the Ray node and GPUs the task got, or this machine's GPU."""
    p = placement(folder)
    device = (f"GPU {','.join(p['gpus'])}" if p.get("gpus") else "") if p else ""
    if p and p["node"] != "local":
        return f"{p['host']} ({p['node']}) {device or 'CPU'}"
    if of(folder).ray:
        return f"Ray {of(folder).address} (not placed yet)"
    return f"this machine {device}".strip()
