"""The run registry: one folder per training run under results/runs/, sweeps over it.

A run folder holds config.json (settings + provenance), status.json (queued → running →
finished | failed | cancelled, written atomically), metrics.jsonl, log.txt, checkpoint.pt,
adapter/, predictions/{dev,test}.csv and result.json. The dashboard only reads these files
and sends signals, so a page reload or an app restart loses nothing.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import time
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import atomic, jobs
from core.datasets import dataset_root, load_dataset, repo_root
from core.errors import LabError
from core.predictions import results_root
from core.training import TrainConfig, noise_files

METRIC_KEYS = ["accuracy", "balanced_accuracy", "recall_speech", "recall_nonspeech", "ece"]


def runs_dir() -> Path:
    return results_root() / "runs"


def sweeps_dir() -> Path:
    return results_root() / "sweeps"


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "transformers", "peft", "accelerate", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


def provenance(cfg: TrainConfig) -> dict[str, Any]:
    """What makes a run reproducible from its folder: data hash, split audit, versions, commit."""
    from core.audit import load_audit, require_clean_split

    ds = load_dataset(cfg.dataset)
    status = require_clean_split(ds, cfg.split, allow_leaky=cfg.allow_leaky)  # raises unless clean or overridden
    audit = load_audit(ds, cfg.split) or {}
    manifest = dataset_root(cfg.dataset) / "manifest.csv"
    return {
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
        "split_status": status,
        "leaky_override": bool(cfg.allow_leaky and status == "leaky"),
        "split_audit_counts": audit.get("counts", {}),
        "versions": _versions(),
        "git_commit": _git_commit(),
        "created": time.time(),
    }


def check_config(cfg: TrainConfig) -> None:
    """Refuse, while the user is still at the form, what a run would only find out after it starts."""
    if cfg.targets not in ("attention", "attention+mlp"):
        raise LabError(f"targets must be 'attention' or 'attention+mlp', got {cfg.targets!r}")
    from core.detectors.audio_llm import check_prompt, require_available

    check_prompt(cfg.prompt)
    if cfg.noise_dir:
        noise_files(cfg.noise_dir)
    if cfg.base_model:
        require_available(cfg.base_model)


def create_run(cfg: TrainConfig, sweep: str = "", name: str = "") -> str:
    """Register a queued run (the split gate is checked here and again when it starts)."""
    check_config(cfg)
    return _register(cfg, sweep, name)


def _register(cfg: TrainConfig, sweep: str, name: str) -> str:
    prov = provenance(cfg)
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    folder = runs_dir() / run_id
    folder.mkdir(parents=True)
    atomic.write_json(folder / "config.json", {**asdict(cfg), "provenance": prov})
    atomic.write_json(folder / "run.json", {"id": run_id, "sweep": sweep, "name": name or run_id})
    jobs.write_status(folder, "queued", 0.0, "queued")
    return run_id


def trained_prompt(adapter: str | Path) -> str | None:
    """The prompt a run's adapter was trained with ("" = the default question), or None when the
    folder is not a run's adapter. Evaluation must ask what training asked."""
    folder = Path(adapter)
    cfg = folder.parent / "config.json"
    if folder.name != "adapter" or not cfg.is_file():
        return None
    try:
        return str(json.loads(cfg.read_text()).get("prompt", ""))
    except (OSError, ValueError):
        return None


def scoring_prompt(adapter: str, prompt: str) -> tuple[str, bool]:
    """(prompt to score `adapter` with, whether it differs from the one its run was trained with).

    No prompt given: a run's adapter is scored with its run's own prompt ("" = the default question).
    """
    trained = trained_prompt(adapter) if adapter else None
    if trained is None:
        return prompt, False
    if not prompt:
        return trained, False
    from core.detectors.audio_llm import DEFAULT_PROMPT

    return prompt, prompt != (trained or DEFAULT_PROMPT)


def launch(run_id: str, resume: bool = False, env: dict[str, str] | None = None) -> None:
    folder = runs_dir() / run_id
    st = status(run_id)
    if st["state"] == "running":
        raise LabError(f"run {run_id} is already running")
    jobs.write_status(folder, "running", st.get("progress", 0.0), "resuming" if resume else "starting")
    jobs.spawn(folder, ["train", "--run-dir", str(folder), *(["--resume"] if resume else [])], env=env)


def status(run_id: str) -> dict[str, Any]:
    folder = runs_dir() / run_id
    if not (folder / "run.json").exists():
        raise LabError(f"no run {run_id!r}")
    return {**json.loads((folder / "run.json").read_text()), **jobs.folder_status(folder)}


def cancel(run_id: str) -> None:
    jobs.signal_folder(runs_dir() / run_id)


def config(run_id: str) -> dict[str, Any]:
    return json.loads((runs_dir() / run_id / "config.json").read_text())


def result(run_id: str) -> dict[str, Any] | None:
    path = runs_dir() / run_id / "result.json"
    return json.loads(path.read_text()) if path.exists() else None


def metrics_log(run_id: str) -> pd.DataFrame:
    path = runs_dir() / run_id / "metrics.jsonl"
    if not path.exists():
        return pd.DataFrame()
    return pd.DataFrame([json.loads(line) for line in path.read_text().splitlines() if line.strip()])


def list_runs() -> pd.DataFrame:
    """One row per run: status, key settings and test metrics."""
    rows = []
    d = runs_dir()
    for folder in sorted(d.iterdir(), reverse=True) if d.exists() else []:
        if not (folder / "run.json").exists():
            continue
        st, cfg, res = status(folder.name), config(folder.name), result(folder.name) or {}
        test = res.get("test", {})
        rows.append(
            {
                "run": folder.name,
                "sweep": st.get("sweep", ""),
                "state": st["state"],
                "progress": st.get("progress", 0.0),
                "message": st.get("message", ""),
                "dataset": cfg["dataset"],
                "split": cfg["split"],
                "targets": cfg["targets"],
                "r": cfg["lora_r"],
                "alpha": cfg["lora_alpha"],
                "lr": cfg["lr"],
                "seed": cfg["seed"],
                "leaky_override": cfg["provenance"].get("leaky_override", False),
                **{f"test_{k}": test.get(k) for k in METRIC_KEYS},
                "test_short_noisy_bacc": test.get("short_noisy_balanced_accuracy"),
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- sweeps

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
    run_ids = [_register(cfg, sweep_id, "") for cfg in configs]
    folder = sweeps_dir() / sweep_id
    folder.mkdir(parents=True)
    atomic.write_json(
        folder / "sweep.json",
        {"id": sweep_id, "grid": grid, "seeds": seeds, "runs": run_ids, "base": asdict(base), "parallel": parallel},
    )
    jobs.write_status(folder, "queued", 0.0, f"{len(run_ids)} runs queued")
    if launch_worker:
        jobs.spawn(folder, ["sweep-worker", "--sweep", sweep_id])
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
    runs = info["runs"]
    slots = sweep_slots(info.get("parallel", 0), torch.cuda.device_count(), os.cpu_count() or 1)
    pending = [r for r in runs if status(r)["state"] == "queued"]
    active: dict[int, str] = {}  # slot -> run
    while pending or active:
        if stop["now"]:
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
    return {**json.loads((folder / "sweep.json").read_text()), **jobs.folder_status(folder)}


def list_sweeps() -> list[str]:
    d = sweeps_dir()
    return sorted((p.name for p in d.iterdir() if (p / "sweep.json").exists()), reverse=True) if d.exists() else []


def cancel_sweep(sweep_id: str) -> None:
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
