"""The run registry: one folder per training run under results/runs/, sweeps over it.

A run folder holds config.json (settings + provenance), status.json (queued → running →
finished | failed | cancelled, written atomically), metrics.jsonl, log.txt, checkpoint.pt,
adapter/, predictions/{dev,test}.csv and result.json. The dashboard only reads these files
and sends signals, so a page reload or an app restart loses nothing. Sweeps over runs: `sweeps`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from core import atomic
from core.data.datasets import dataset_root, load_dataset
from core.data.noise import check_noise
from core.data.splits import validate_split_name
from core.detectors.checkpoints import require_available
from core.detectors.llm.prompt import check_prompt
from core.detectors.llm.registry import family_named, trainable_model_types
from core.errors import LabError
from core.paths import repo_root, results_root
from core.runs import executors, jobs, placement
from core.runs.train_config import TrainConfig

METRIC_KEYS = ["accuracy", "balanced_accuracy", "recall_speech", "recall_nonspeech", "ece"]


def runs_dir() -> Path:
    return results_root() / "runs"


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
    from core.data import relabels
    from core.data.audit import load_audit, require_clean_split

    ds = load_dataset(cfg.dataset)
    status = require_clean_split(ds, cfg.split, allow_leaky=cfg.allow_leaky)  # raises unless clean or overridden
    audit = load_audit(ds, cfg.split) or {}
    manifest = dataset_root(cfg.dataset) / "manifest.csv"
    return {
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
        **relabels.provenance(ds, cfg.labels),
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
    check_prompt(cfg.prompt)
    if cfg.noise_dir:
        check_noise(cfg.noise_dir)
    if cfg.family:
        family_named(cfg.family)
    if cfg.base_model:
        require_available(cfg.base_model, trainable_model_types())
    load_dataset(cfg.dataset)  # a dataset that is not there is refused here, not in the run's log
    validate_split_name(cfg.split)
    check_numbers(cfg)
    answers = (cfg.answer_speech, cfg.answer_nonspeech)
    if not all(isinstance(a, str) and a.strip() and len(a) <= 32 and "\n" not in a for a in answers):
        raise LabError(f"the answers must be two short one-line texts, got {answers!r}")
    if answers[0].strip() == answers[1].strip():
        raise LabError(f"the speech and non-speech answers must differ, got {answers[0]!r} twice")
    if cfg.labels not in ("original", "corrected"):
        raise LabError(f"labels must be 'original' or 'corrected', got {cfg.labels!r}")
    for tag in (t for t in cfg.exclude_tags.split(",") if t.strip()):
        from core.names import check_tag

        check_tag(tag)


INTS = ("epochs", "batch_size", "grad_accum", "lora_r", "lora_alpha", "checkpoint_every", "seed",
        "max_train_clips", "max_dev_clips")  # fmt: skip
FLOATS = (
    "lr",
    "lora_dropout",
    "warmup_ratio",
    "noise_prob",
    "stretch",
    "pitch",
    "room_prob",
    "telephone_prob",
    "codec_prob",
)
SCHEDULES = ("cosine", "linear", "constant")


def check_numbers(cfg: TrainConfig) -> None:
    """Every number a run's settings hold means what it says: the right type, finite, in range.

    One place for the form, the CLI, sweeps and cross-validation (each builds a TrainConfig and
    calls `check_config`), so a grid value typed as text or a negative cap is refused before any
    run is registered rather than met as a traceback in a run's log.
    """
    import math

    for name in INTS + FLOATS:
        value = getattr(cfg, name)
        ok = isinstance(value, int) if name in INTS else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or not math.isfinite(value):
            kind = "a whole number" if name in INTS else "a number"
            raise LabError(f"{name} must be {kind}, got {value!r}")
    at_least = {"epochs": 1, "batch_size": 1, "grad_accum": 1, "lora_r": 1, "lora_alpha": 1, "checkpoint_every": 1,
                "max_train_clips": 0, "max_dev_clips": 0, "seed": 0}  # fmt: skip
    for name, low in at_least.items():
        if getattr(cfg, name) < low:
            why = " (0 = all clips)" if name.startswith("max_") else ""
            raise LabError(f"{name} must be at least {low}{why}, got {getattr(cfg, name)}")
    if not 0 < cfg.lr < 1:
        raise LabError(f"lr must be between 0 and 1, got {cfg.lr}")
    for name, hi_open in (("noise_prob", False), ("warmup_ratio", False), ("lora_dropout", True)):
        value = getattr(cfg, name)
        if not (0 <= value < 1 if hi_open else 0 <= value <= 1):
            raise LabError(f"{name} must lie within [0, 1{')' if hi_open else ']'}, got {value}")
    if cfg.schedule not in SCHEDULES:
        raise LabError(f"schedule must be one of {', '.join(SCHEDULES)}, got {cfg.schedule!r}")
    low, high = (float(v) for v in cfg.noise_snr)
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise LabError(f"noise_snr must be two finite numbers, low before high, got {tuple(cfg.noise_snr)}")
    cfg.augmentation()  # each augmentation setting in its range, or an error naming it


def check_seeds(seeds) -> list[int]:
    """A sweep's or a cross-validation's seeds: whole numbers, at least one, none twice."""
    if not seeds:
        raise LabError("give at least one seed")
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or s < 0]
    if bad:
        raise LabError(f"seeds must be whole numbers of at least 0, got {bad[0]!r}")
    twice = sorted({s for s in seeds if list(seeds).count(s) > 1})
    if twice:
        raise LabError(f"seed {twice[0]} is given twice: each seed is one run, and a repeat would be counted as two")
    return list(seeds)


def create_run(cfg: TrainConfig, sweep: str = "", name: str = "", executor=None) -> str:
    """Register a queued run (the split gate is checked here and again when it starts)."""
    if name:
        from core.names import check_name

        check_name(name, "run")
    check_config(cfg)
    if executor is not None and executor.ray:
        executors.check(executor.address)  # every node sees the data folder, before anything is queued
    run_id = register(cfg, sweep, name)
    if executor is not None:
        placement.save(runs_dir() / run_id, executor)
    return run_id


def register(cfg: TrainConfig, sweep: str, name: str) -> str:
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


def trained_answers(adapter: str | Path) -> tuple[str, str] | None:
    """(speech, non-speech) answers a run's adapter was trained to give, or None when the folder is
    not a run's adapter. Evaluation must read the answers training taught."""
    folder = Path(adapter)
    cfg = folder.parent / "config.json"
    if folder.name != "adapter" or not cfg.is_file():
        return None
    try:
        c = json.loads(cfg.read_text())
    except (OSError, ValueError):
        return None
    return str(c.get("answer_speech", "A")), str(c.get("answer_nonspeech", "B"))


def scoring_prompt(adapter: str, prompt: str) -> tuple[str, bool]:
    """(prompt to score `adapter` with, whether it differs from the one its run was trained with).

    No prompt given: a run's adapter is scored with its run's own prompt ("" = the default question).
    """
    trained = trained_prompt(adapter) if adapter else None
    if trained is None:
        return prompt, False
    if not prompt:
        return trained, False
    from core.detectors.llm.prompt import DEFAULT_PROMPT

    return prompt, prompt != (trained or DEFAULT_PROMPT)


def launch(run_id: str, resume: bool = False, env: dict[str, str] | None = None) -> None:
    """Start (or resume) the run's trainer in the background: at most one per run, ever.

    The run's lock is taken here and handed to the trainer, so a second launch (another page,
    the CLI) is refused while it lives; a finished run is not trained again.
    """
    folder = runs_dir() / run_id
    st = status(run_id)
    if st["state"] == "finished":
        raise LabError(f"run {run_id} has finished; nothing to resume (start a new run to train again)")
    args = ["train", "--run-dir", str(folder), *(["--resume"] if resume else [])]
    if placement.of(folder).ray:  # a local driver holds the run and runs the same command as a Ray task
        args = ["ray-drive", "--run", run_id, *(["--resume"] if resume else [])]
    jobs.start_locked(folder, args, "resuming" if resume else "starting", st.get("progress", 0.0), env=env)
    if not placement.of(folder).ray:
        placement.record_local(folder, env)


def status(run_id: str) -> dict[str, Any]:
    folder = runs_dir() / (run_id or "")
    if not run_id or "/" in run_id or not (folder / "run.json").exists():
        raise LabError(f"no run {run_id!r}")
    return {**json.loads((folder / "run.json").read_text()), **jobs.folder_status(folder)}


def cancel(run_id: str) -> None:
    status(run_id)  # an unknown run is a message
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
                "ran_on": placement.where(folder),
                **{f"test_{k}": test.get(k) for k in METRIC_KEYS},
                "test_short_noisy_bacc": test.get("short_noisy_balanced_accuracy"),
            }
        )
    return pd.DataFrame(rows)


def finished_runs() -> list[str]:
    """Runs that finished with an adapter, newest first (what a page can score a clip with)."""
    t = list_runs()
    if t.empty:
        return []
    ids = t.loc[t["state"] == "finished", "run"].tolist()
    return [r for r in ids if (runs_dir() / r / "adapter" / "adapter_config.json").exists()]


def run_detector(run_id: str, batch_size: int = 8):
    """A finished run as a detector: its base model, adapter, prompt and answers exactly as its own
    final scoring used them (read from its test table's sidecar), so a clip scored here gets the
    number the run's tables would give it."""
    from core.detectors import make_detector
    from core.scoring import predictions

    if run_id not in finished_runs():
        raise LabError(f"run {run_id!r} has not finished with an adapter")
    _, meta = predictions.load(predictions.resolve(f"run-{run_id}-test"))
    opts = {"model": meta["model_id"], "adapter": meta["adapter"], "batch_size": batch_size,
            "prompt": meta.get("prompt") or ""}  # fmt: skip
    if meta.get("answers"):
        opts["answers"] = tuple(meta["answers"])
    return make_detector("audio-llm", **{k: v for k, v in opts.items() if v != ""})
