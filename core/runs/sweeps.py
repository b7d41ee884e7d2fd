"""Sweeps: a grid of settings × seeds, each point an ordinary run of the registry.

A sweep folder (results/sweeps/<id>/) holds sweep.json (grid, seeds, run ids) and the status of
its worker, a `python -m core sweep-worker` process that starts the queued runs, as many at once
as it has slots (one per GPU, or shares of the CPU cores).
"""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import atomic
from core.errors import LabError
from core.paths import results_root
from core.runs import jobs
from core.runs.registry import METRIC_KEYS, cancel, check_config, config, launch, register, result, status
from core.runs.training import TrainConfig


def sweeps_dir() -> Path:
    return results_root() / "sweeps"


GRID_KEYS = ("targets", "lora_r", "lora_alpha", "lora_dropout", "lr", "epochs", "batch_size")


def create_sweep(
    base: TrainConfig, grid: dict[str, list], seeds: list[int], launch_worker: bool = True, parallel: int = 0
) -> str:
    """Queue one run per grid point × seed, then start a worker that runs them.

    `parallel`: runs at once; 0 = one per visible GPU (one on a machine without CUDA).
    """
    if parallel < 0:
        raise LabError(f"parallel must be 0 (one run per GPU) or a number of runs, got {parallel}")
    bad = set(grid) - set(GRID_KEYS)
    if bad:
        raise LabError(f"cannot sweep over {sorted(bad)}; choose from {GRID_KEYS}")
    if not seeds:
        raise LabError("a sweep needs at least one seed")
    sweep_id = f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    keys = list(grid)
    configs = [
        replace(base, seed=int(seed), **dict(zip(keys, values)))
        for values in itertools.product(*(grid[k] for k in keys))
        for seed in seeds
    ]
    for cfg in configs:  # every point checked before any run is registered: no orphan runs
        check_config(cfg)
    run_ids = [register(cfg, sweep_id, "") for cfg in configs]
    folder = sweeps_dir() / sweep_id
    folder.mkdir(parents=True)
    atomic.write_json(
        folder / "sweep.json",
        {"id": sweep_id, "grid": grid, "seeds": seeds, "runs": run_ids, "base": asdict(base), "parallel": parallel},
    )
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
    """Worker: run the sweep's queued runs, as many at once as it has slots; SIGTERM stops it."""
    import signal

    import torch

    folder = sweeps_dir() / sweep_id
    info = json.loads((folder / "sweep.json").read_text())
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("now", True))
    if jobs.hold_lock(folder) is None:  # kept for the worker's life: one worker per sweep
        raise LabError(f"sweep {sweep_id} already has a worker")
    runs = info["runs"]
    slots = sweep_slots(info.get("parallel", 0), torch.cuda.device_count(), os.cpu_count() or 1)
    pending = [r for r in runs if status(r)["state"] == "queued"]
    active: dict[int, str] = {}  # slot -> run
    while pending or active:
        if stop["now"] or jobs.cancel_requested(folder):
            stop["now"] = True
            pending = []
            for run_id in active.values():
                cancel(run_id)
        for slot in range(len(slots)):
            if slot not in active and pending:
                active[slot] = pending.pop(0)
                launch(active[slot], env=slots[slot])
        active = {k: r for k, r in active.items() if status(r)["state"] not in jobs.TERMINAL}
        done = len(runs) - len(pending) - len(active)
        jobs.write_status(
            folder,
            "running",
            done / len(runs),
            f"{done}/{len(runs)} runs done; running {', '.join(active.values()) or 'none'}",
            current=list(active.values()),
        )
        time.sleep(poll_s)
    state = "cancelled" if stop["now"] else "finished"
    jobs.write_status(
        folder, state, 1.0, f"{state}: {sum(status(r)['state'] == 'finished' for r in runs)}/{len(runs)} runs finished"
    )


def sweep_status(sweep_id: str) -> dict[str, Any]:
    folder = sweeps_dir() / sweep_id
    if not sweep_id or "/" in sweep_id or not (folder / "sweep.json").is_file():
        known = ", ".join(list_sweeps()[:5]) or "none"
        raise LabError(f"no sweep {sweep_id!r} (known: {known})")
    return {**json.loads((folder / "sweep.json").read_text()), **jobs.folder_status(folder)}


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
