"""Sweeps: a grid of settings × seeds, each point an ordinary run of the registry.

A sweep folder (results/sweeps/<id>/) holds sweep.json (grid, seeds, run ids) and the status of
its worker, a `python -m core sweep-worker` process that starts the queued runs, as many at once
as it has slots (one per GPU, or shares of the CPU cores).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import atomic
from core.errors import LabError
from core.paths import results_root
from core.runs import jobs
from core.runs.registry import (
    METRIC_KEYS,
    cancel,
    check_config,
    check_seeds,
    config,
    launch,
    register,
    result,
    runs_dir,
    status,
)
from core.runs.train_config import TrainConfig

# torch is imported inside functions: importing this module stays cheap


def sweeps_dir() -> Path:
    return results_root() / "sweeps"


GRID_KEYS = ("targets", "lora_r", "lora_alpha", "lora_dropout", "lr", "epochs", "batch_size")


def create_sweep(
    base: TrainConfig,
    grid: dict[str, list],
    seeds: list[int],
    launch_worker: bool = True,
    parallel: int = 0,
    executor=None,
) -> str:
    """Queue one run per grid point × seed, then start a worker that runs them.

    `parallel`: runs at once; 0 = one per visible GPU (one on a machine without CUDA).
    """
    if parallel < 0:
        raise LabError(f"parallel must be 0 (one run per GPU) or a number of runs, got {parallel}")
    bad = set(grid) - set(GRID_KEYS)
    if bad:
        raise LabError(f"cannot sweep over {sorted(bad)}; choose from {GRID_KEYS}")
    check_seeds(seeds)
    sweep_id = f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    keys = list(grid)
    configs = [
        replace(base, seed=int(seed), **dict(zip(keys, values)))
        for values in itertools.product(*(grid[k] for k in keys))
        for seed in seeds
    ]
    for cfg in configs:  # every point checked before any run is registered: no orphan runs
        check_config(cfg)
    from core.runs import executors

    if executor is not None and executor.ray:
        executors.check(executor.address)
    run_ids = [register(cfg, sweep_id, "") for cfg in configs]
    folder = sweeps_dir() / sweep_id
    folder.mkdir(parents=True)
    atomic.write_json(
        folder / "sweep.json",
        {"id": sweep_id, "grid": grid, "seeds": seeds, "runs": run_ids, "base": asdict(base), "parallel": parallel},
    )
    if executor is not None:
        executors.save(folder, executor)
        for run_id in run_ids:
            executors.save(runs_dir() / run_id, executor)
    jobs.write_status(folder, "queued", 0.0, f"{len(run_ids)} runs queued")
    if launch_worker:
        jobs.start_locked(folder, ["sweep-worker", "--sweep", sweep_id], f"{len(run_ids)} runs queued")
    return sweep_id


def sweep_slots(parallel: int, gpus: int, cpus: int) -> list[dict[str, str]]:
    """The environment of each place a sweep's run can go: one per GPU, or CPU shares.

    With GPUs, each slot sees one (CUDA_VISIBLE_DEVICES), `parallel` of them (0 = all);
    without, `parallel` (at least 1) runs share the cores, each given its share of threads.
    """
    if gpus:
        return [{"CUDA_VISIBLE_DEVICES": str(i)} for i in range(min(parallel or gpus, gpus))]
    n = max(parallel, 1)
    return [{"OMP_NUM_THREADS": str(max(1, cpus // n))} if n > 1 else {} for _ in range(n)]


def run_sweep(sweep_id: str, poll_s: float = 1.0) -> None:
    """Worker: run the sweep's unfinished runs, as many at once as it has slots; SIGTERM stops it."""
    run_queue(sweeps_dir() / sweep_id, "sweep.json", poll_s)


def run_queue(folder: Path, info_file: str, poll_s: float = 1.0, on_finished: Callable[[], str] | None = None) -> str:
    """Worker of a folder listing runs (a sweep's or a cross-validation's): run every unfinished one.

    As many at once as there are slots (`sweep_slots`). A queued run starts; a cancelled or
    failed one resumes from its checkpoint, so the same worker serves a resume of the whole
    folder. SIGTERM or a recorded cancel stops it and cancels the runs it started.
    `on_finished` writes what the folder produces once every run has finished (a CV's
    out-of-fold tables) and returns the final message: the folder reads `finished` only after
    it returns, so no reader sees `finished` before the outputs exist. Returns the final state.
    """
    import signal

    import torch

    info = json.loads((folder / info_file).read_text())
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("now", True))
    if jobs.hold_lock(folder) is None:  # kept for the worker's life: one worker per folder
        raise LabError(f"{folder.name} already has a worker")
    runs = info["runs"]
    from core.runs import executors

    executor = executors.of(folder)
    if executor.ray:  # every unfinished run as a Ray task; Ray schedules them by resources
        items = []
        for run_id in runs:
            state = status(run_id)["state"]
            run_dir = runs_dir() / run_id
            if state == "finished" or jobs.owner_lock(run_dir) is None:
                continue  # done, or running elsewhere
            resume = ["--resume"] if state in ("cancelled", "failed") else []
            items.append((run_dir, ["train", "--run-dir", str(run_dir), *resume]))
        stopped = executors.drive(items, executor, queue=folder)
        return _conclude(folder, runs, stopped, [], on_finished)
    slots = sweep_slots(info.get("parallel", 0), torch.cuda.device_count(), os.cpu_count() or 1)
    pending = [r for r in runs if status(r)["state"] != "finished"]
    active: dict[int, str] = {}  # slot -> run
    skipped: list[str] = []
    while pending or active:
        if stop["now"] or jobs.cancel_requested(folder):
            stop["now"] = True
            pending = []
            for run_id in active.values():
                with contextlib.suppress(LabError):
                    cancel(run_id)
        for slot in range(len(slots)):
            if slot not in active and pending:
                run_id = pending.pop(0)
                try:
                    launch(run_id, resume=status(run_id)["state"] in ("cancelled", "failed"), env=slots[slot])
                    active[slot] = run_id
                except LabError as exc:  # e.g. resumed by hand elsewhere meanwhile: say so, go on
                    skipped.append(f"{run_id}: {exc}")
        active = {k: r for k, r in active.items() if status(r)["state"] not in jobs.TERMINAL}
        done = len(runs) - len(pending) - len(active)
        jobs.write_status(
            folder,
            "running",
            done / len(runs),
            f"{done}/{len(runs)} runs done; running {', '.join(active.values()) or 'none'}",
            current=list(active.values()),
            skipped=skipped,
        )
        time.sleep(poll_s)
    return _conclude(folder, runs, stop["now"], skipped, on_finished)


def _conclude(
    folder: Path, runs: list[str], stopped: bool, skipped: list[str], on_finished: Callable[[], str] | None
) -> str:
    """Write the folder's final state from its runs' states, after its outputs when all finished."""
    finished = sum(status(r)["state"] == "finished" for r in runs)
    state = "cancelled" if stopped else ("finished" if finished == len(runs) else "failed")
    message = f"{state}: {finished}/{len(runs)} runs finished"
    if state == "finished" and on_finished is not None:
        jobs.write_status(folder, "running", 0.99, f"{finished}/{len(runs)} runs finished; writing results")
        message = on_finished()
    jobs.write_status(folder, state, 1.0, message, skipped=skipped)
    return state


def sweep_status(sweep_id: str) -> dict[str, Any]:
    """The sweep and its state, which follows its runs: a sweep whose worker is gone says which
    runs are left and how to resume; one whose runs all finished is finished, whatever its worker wrote."""
    folder = sweeps_dir() / sweep_id
    if not sweep_id or "/" in sweep_id or not (folder / "sweep.json").is_file():
        known = ", ".join(list_sweeps()[:5]) or "none"
        raise LabError(f"no sweep {sweep_id!r} (known: {known})")
    info = {**json.loads((folder / "sweep.json").read_text()), **jobs.folder_status(folder)}
    states = [status(r)["state"] for r in info["runs"]]
    counts = {s: states.count(s) for s in dict.fromkeys(states)}
    info["run_states"] = counts
    if counts.get("finished", 0) == len(states) and info["state"] != "finished":
        info.update(state="finished", message=f"finished: {len(states)}/{len(states)} runs finished")
    elif info["state"] in ("failed", "cancelled"):
        left = ", ".join(f"{n} {s}" for s, n in counts.items() if s != "finished")
        info["message"] = (
            f"{info['state']}: {counts.get('finished', 0)}/{len(states)} runs finished ({left}); "
            f"resume with: python -m core sweep resume {sweep_id}"
        )
    return info


def resume_sweep(sweep_id: str) -> None:
    """Start a new worker for a sweep whose worker was cancelled, failed or killed: queued runs start,
    cancelled or failed runs resume from their checkpoints, finished ones stay."""
    info = sweep_status(sweep_id)
    if info["state"] == "finished":
        raise LabError(f"sweep {sweep_id} has finished; nothing to resume")
    if info["state"] in ("queued", "running"):
        raise LabError(f"sweep {sweep_id} is {info['state']}; cancel it first or let it finish")
    left = len(info["runs"]) - info["run_states"].get("finished", 0)
    jobs.start_locked(sweeps_dir() / sweep_id, ["sweep-worker", "--sweep", sweep_id], f"resuming: {left} runs left")


def list_sweeps() -> list[str]:
    d = sweeps_dir()
    return sorted((p.name for p in d.iterdir() if (p / "sweep.json").exists()), reverse=True) if d.exists() else []


def cancel_sweep(sweep_id: str) -> None:
    sweep_status(sweep_id)  # an unknown sweep is a message
    jobs.signal_folder(sweeps_dir() / sweep_id)


def results_matrix(sweep_id: str, part: str = "test") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per configuration with mean ± std over seeds, the per-seed values) of finished runs."""
    info = sweep_status(sweep_id)
    keys = list(info["grid"])
    per_seed = []
    for run_id in info["runs"]:
        res = result(run_id)
        if res is None:
            continue
        cfg = config(run_id)
        per_seed.append(
            {
                "run": run_id,
                **{k: cfg[k] for k in keys},
                "seed": cfg["seed"],
                **{m: res[part].get(m) for m in METRIC_KEYS},
            }
        )
    seeds = pd.DataFrame(per_seed)
    if seeds.empty:
        return seeds, seeds
    rows = []
    for values, sub in seeds.groupby(keys, sort=True) if keys else [((), seeds)]:
        values = values if isinstance(values, tuple) else (values,)
        row = dict(zip(keys, values))
        row["seeds"] = len(sub)
        for m in METRIC_KEYS:
            v = sub[m].astype(float).to_numpy()
            row[f"{m}_mean"] = float(np.mean(v))
            row[f"{m}_std"] = float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows), seeds
