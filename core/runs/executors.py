"""Where the lab's background work runs: here (the default), or as tasks on a Ray cluster.

Local: each run, sweep point, CV fold or scoring job is a `python -m core ...` subprocess of
this machine (`jobs.start_locked`). Ray: the same command runs as a Ray task asking for one GPU
(or `cpus` CPUs on a cluster without GPUs), on whichever node Ray chooses; runs behave the same
on both executors because they run the same command and write the same files.

How it fits the lab's file-based state: a small local *driver* process (`python -m core ray
drive ...`) is started in the folder's place. It holds the folder's lock (so nothing else runs
the folder), submits the task, and turns what happens to it into the folder's state: a cancel
(recorded by `jobs.signal_folder`) cancels the task; a task whose worker or node died leaves the
folder failed (resumable from its checkpoint, on any node). A queue (sweep, cross-validation)
submits all of its runs at once and Ray schedules them by resources: one run per GPU.

The data folder (and results) must be visible at the same path on every node, as on most
clusters' shared storage; `probe` checks that on every node before anything is queued, and
names a node that cannot see it. The nodes run the lab from the same checkout path and Python
environment (e.g. the lab's .venv on the same shared storage).
"""

from __future__ import annotations

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
from core.paths import data_root, repo_root, results_root
from core.runs import jobs

# where work runs is recorded by `placement` (below the job runner); named here too for callers
from core.runs.placement import PLACEMENT_FILE, Executor, of, placement, record_local, save  # noqa: F401

# ray is imported inside functions: importing this module stays cheap

# ---------------------------------------------------------------- the cluster


def _ray():
    try:
        import ray
    except ImportError:
        raise LabError(
            "the Ray executor needs the ray package (pip install ray) on this machine and every node"
        ) from None
    return ray


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes, when nothing listens at HOST:PORT (Ray itself retries for long)."""
    import socket

    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise LabError(f"Ray address {address!r}: give auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise LabError(
            f"no Ray cluster answers at {address} ({exc}); start one with `ray start --head` or check the address"
        ) from exc


def connect(address: str) -> Any:
    """Connect this process to the cluster at `address` (once); returns the ray module."""
    ray = _ray()
    if not ray.is_initialized():
        _reachable(address)
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False, include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise LabError(
                f"cannot reach a Ray cluster at {address!r} ({exc}); start one with `ray start --head`"
            ) from exc
    return ray


def cluster(address: str) -> dict[str, Any]:
    """Nodes (alive), total and free GPUs and CPUs of the cluster at `address`."""
    ray = connect(address)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    total, free = ray.cluster_resources(), ray.available_resources()
    return {
        "address": address,
        "nodes": [
            {
                "node": n["NodeManagerAddress"],
                "id": n["NodeID"][:12],
                "gpus": int(n["Resources"].get("GPU", 0)),
                "cpus": int(n["Resources"].get("CPU", 0)),
            }
            for n in nodes
        ],
        "gpus": int(total.get("GPU", 0)),
        "gpus_free": int(free.get("GPU", 0)),
        "cpus": int(total.get("CPU", 0)),
        "cpus_free": int(free.get("CPU", 0)),
    }


SHARED_ENV = ("LAB_DATA_DIR", "LAB_RESULTS_DIR")  # the folders every node must see at the driver's paths
PROBE_FILE = ".ray-probe"


def lab_env() -> dict[str, str]:
    """What a task is told about the lab's folders: the driver's (absolute) paths."""
    return {"LAB_DATA_DIR": str(data_root().resolve()), "LAB_RESULTS_DIR": str(results_root().resolve())}


def node_env(driver: dict[str, str]) -> dict[str, str]:
    """On a node: the driver's folder settings, except where the node sets its own (then the probe compares)."""
    return {k: os.environ.get(k) or v for k, v in driver.items()}


def _probe_here(driver: dict[str, str], token: str) -> dict[str, Any]:
    """On a node: does it see the driver's data and results folders, at the same paths, as the same storage?"""
    import socket

    env = node_env(driver)
    out: dict[str, Any] = {"host": socket.gethostname(), "problems": []}
    for key, what in (("LAB_DATA_DIR", "data"), ("LAB_RESULTS_DIR", "results")):
        path = Path(env[key])
        if str(path) != driver[key]:
            out["problems"].append(f"its {key} is {path}, not the driver's {driver[key]}")
        elif not path.is_dir():
            out["problems"].append(f"no {what} folder at {path}")
        elif not (path / PROBE_FILE).exists() or (path / PROBE_FILE).read_text() != token:
            out["problems"].append(f"the {what} folder at {path} is another folder (not shared storage)")
    if str(repo_root()) != driver.get("checkout", str(repo_root())):
        out["problems"].append(f"its lab checkout is {repo_root()}, not {driver['checkout']}")
    return out


def probe(address: str) -> list[dict[str, Any]]:
    """Run a check on every alive node; raise, naming each node that cannot see the lab's folders.

    The driver writes a random token into its data and results folders; each node must find both
    folders at the same paths and read the token back (a path that merely exists on a node is
    not shared storage). A node that sets its own LAB_DATA_DIR/LAB_RESULTS_DIR keeps it, and is
    named when it differs from the driver's.
    """
    ray = connect(address)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token, driver = uuid.uuid4().hex, lab_env()
    for key in SHARED_ENV:
        Path(driver[key]).mkdir(parents=True, exist_ok=True)
        atomic.write_text(Path(driver[key]) / PROBE_FILE, token)
    check = ray.remote(num_cpus=0, max_retries=0)(_probe_here)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = {
        f"{n['NodeManagerAddress']} ({n['NodeID'][:12]})": check.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
        ).remote({**driver, "checkout": str(repo_root())}, token)
        for n in nodes
    }
    results = {}
    for node, ref in refs.items():
        try:
            results[node] = ray.get(ref, timeout=120)
        except Exception as exc:  # cannot import the lab there, or the node is gone
            results[node] = {"host": "?", "problems": [f"the check could not run ({type(exc).__name__}: {exc})"[:300]]}
    bad = {node: r for node, r in results.items() if r["problems"]}
    if bad:
        detail = "; ".join(f"node {node}, host {r['host']}: {', '.join(r['problems'])}" for node, r in bad.items())
        raise LabError(
            f"{len(bad)} of {len(results)} Ray node(s) cannot see this lab's folders "
            f"(data {driver['LAB_DATA_DIR']}, results {driver['LAB_RESULTS_DIR']}): {detail}. Every node must see "
            "them at the same paths, on shared storage; see README → Scaling out"
        )
    return [{"node": n, **r} for n, r in results.items()]


def check(address: str, what: str = "probe", timeout: float = 180) -> dict[str, Any]:
    """`python -m core ray probe|status --json` in a child process, its answer parsed.

    Why a child: a Ray client lives as long as its process; the dashboard and a test session
    should not become Ray drivers just to look at a cluster or check it before queueing.
    """
    cmd = [sys.executable, "-m", "core", "ray", what, "--address", address, "--json"]
    try:
        proc = subprocess.run(cmd, cwd=repo_root(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LabError(f"the Ray cluster at {address} did not answer within {timeout:.0f} s") from None
    if proc.returncode != 0:
        errors = [line.removeprefix("error: ") for line in proc.stderr.splitlines() if line.startswith("error: ")]
        raise LabError(errors[-1] if errors else f"ray {what} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout)


# ---------------------------------------------------------------- a task and its driver


def _task(args: list[str], folder: str, env: dict[str, str]) -> dict[str, Any]:
    """On a node: run `python -m core <args>` for `folder`, recording where; stop it on a recorded cancel."""
    import socket

    import ray

    ctx = ray.get_runtime_context()
    gpus = [str(g) for g in ray.get_gpu_ids()]
    where = {
        "node": ctx.get_node_id()[:12],
        "host": socket.gethostname(),
        "gpus": gpus,
        "worker_pid": os.getpid(),
        "started": time.time(),
    }
    atomic.write_json(Path(folder) / PLACEMENT_FILE, where)
    child_env = {**os.environ, **node_env(env), "PYTHONUNBUFFERED": "1", "LAB_LOCK_HELD": "1"}
    if gpus:
        child_env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    else:  # the CPUs Ray gave this task, not every core of the node
        child_env["OMP_NUM_THREADS"] = str(
            max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
        )

    def die_with_parent() -> None:  # the run dies with this worker: a killed worker leaves no orphan trainer
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    with open(Path(folder) / "log.txt", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core", *args],
            cwd=repo_root(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env,
            preexec_fn=die_with_parent,
        )
        try:
            while proc.poll() is None:
                if jobs.cancel_requested(Path(folder)):
                    proc.send_signal(signal.SIGTERM)
                    proc.wait()
                    break
                time.sleep(0.5)
        except BaseException:  # ray.cancel: stop the run, let it record itself
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
            raise
    return {**where, "returncode": proc.returncode}


def _resources(executor: Executor, gpus: int) -> dict[str, Any]:
    ray = _ray()
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    return {"num_gpus": gpus, "num_cpus": 1} if has_gpu and gpus else {"num_gpus": 0, "num_cpus": executor.cpus}


def drive(
    items: list[tuple[Path, list[str]]],
    executor: Executor,
    queue: Path | None = None,
    gpus: int = 1,
    should_stop: Callable[[], bool] | None = None,
) -> bool:
    """The driver: run each (folder, `python -m core` args) as a Ray task; keep the folders' states.

    Returns True when it was asked to stop. `queue`: the sweep or CV folder these runs belong to
    (its status shows progress, and a cancel of it cancels them all); its final state is the
    caller's to write (`sweeps.run_queue`), after whatever it produces. `should_stop`: another way to be asked to stop (a scoring job's).
    SIGTERM (a cancel of the driver) cancels every task.
    """
    ray = connect(executor.address)
    probe(executor.address)
    task = ray.remote(max_retries=0)(_task)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("now", True))
    pending: dict[Any, Path] = {}
    env = lab_env()
    for folder, args in items:
        ref = task.options(**_resources(executor, gpus)).remote(args, str(folder), env)
        pending[ref] = folder
        before = jobs.folder_status(folder).get("progress", 0.0) if (folder / "status.json").exists() else 0.0
        jobs.write_status(folder, "queued", before, "queued on the Ray cluster")
    total = len(items)
    while pending:
        stop["now"] = stop["now"] or bool(should_stop and should_stop())
        cancel_all = stop["now"] or (queue is not None and jobs.cancel_requested(queue))
        for ref, folder in list(pending.items()):
            if cancel_all and not jobs.cancel_requested(folder):
                atomic.write_text(folder / jobs.CANCEL, str(time.time()))
            if jobs.cancel_requested(folder) and jobs.folder_status(folder)["state"] == "queued":
                ray.cancel(ref)  # not started yet: nothing to stop but the task
        done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for ref in done:
            folder = pending.pop(ref)
            try:
                ray.get(ref)
                lost = None
            except Exception as exc:  # the worker or its node died, or the task was cancelled
                lost = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            st = jobs.folder_status(folder)
            if st["state"] not in jobs.TERMINAL:  # the process could not record its own end
                if jobs.cancel_requested(folder):
                    jobs.write_status(folder, "cancelled", st.get("progress", 0.0), "cancelled; resumable")
                else:
                    why = lost or "the task ended without recording a state"
                    jobs.write_status(
                        folder, "failed", st.get("progress", 0.0), f"lost on the Ray cluster ({why}); resumable"
                    )
        if queue is not None:
            finished = total - len(pending)
            jobs.write_status(queue, "running", finished / max(total, 1), f"{finished}/{total} done on the Ray cluster")
    return stop["now"] or (queue is not None and jobs.cancel_requested(queue))
