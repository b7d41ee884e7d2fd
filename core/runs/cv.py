"""Cross-validation by speaker and source: does a detector work for groups it has never heard?

A single test split of a few groups cannot answer that. Here every group (speaker or sound
source) is held out once:
- `loso`: leave one group of `loso_label` (speech: leave-one-speaker-out) out per fold; the
  other label's groups are spread over the folds, each held out once too;
- `K`: K folds of whole groups, label-stratified (scikit-learn's StratifiedGroupKFold).
Groups are the split units of `core.data.splits` (groups joined by shared base clips), so no
base recording is ever on two sides. Each fold is an ordinary run on a saved split: trained on
the other folds' groups, with a dev part carved from its own training groups (early stopping,
calibration), and tested on its held-out groups only. The content audit runs once over all
units (`audit.copies_across_units`) and each fold's audit is saved from it, so every run
records its fold's audit like any run.

Out of fold: every clip scored exactly once, by the model of the fold that held its group out,
in one ordinary predictions table. A zero-shot detector (nothing to train) gets the same table
on the same folds, so per-group gains are paired. The `shuffled` twin assigns rows to folds at
random (label-stratified, groups ignored): what a leaky split would have told you.

results/cv/<id>/cv.json holds the settings, the folds (held-out groups, clip counts, audit) and
the runs; its worker (`python -m core cv work`) is the sweep worker's queue.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import atomic
from core.errors import LabError
from core.paths import results_root
from core.runs import jobs, registry
from core.runs.train_config import TrainConfig

# sklearn is imported inside functions: importing this module stays cheap


@dataclass
class CVConfig:
    """How to cross-validate; saved in cv.json."""

    folds: str = "4"  # "loso" or a number of folds
    by: str = "group_id"  # the column whose values are held out (speaker / source)
    loso_label: str = "speech"  # loso: the label whose groups define the folds ("" = every group)
    dev_fraction: float = 0.15  # of each fold's training groups, for early stopping and calibration
    seeds: list[int] = field(default_factory=lambda: [0])
    shuffled: bool = False  # the leaky twin: rows, not groups, assigned to folds
    parallel: int = 0  # runs at once (0 = one per GPU; one without CUDA)
    detector: str = ""  # a detector name: zero-shot, nothing trained
    seed: int = 0  # fold assignment


def cv_dir() -> Path:
    return results_root() / "cv"


def folder(cv_id: str) -> Path:
    d = cv_dir() / (cv_id or "")
    if not cv_id or "/" in cv_id or not (d / "cv.json").is_file():
        known = ", ".join(list_cvs()[:5]) or "none"
        raise LabError(f"no cross-validation {cv_id!r} (known: {known})")
    return d


def info(cv_id: str) -> dict[str, Any]:
    return json.loads((folder(cv_id) / "cv.json").read_text())


def list_cvs() -> list[str]:
    d = cv_dir()
    return sorted((p.name for p in d.iterdir() if (p / "cv.json").exists()), reverse=True) if d.exists() else []


def units_of(manifest: pd.DataFrame, by: str) -> pd.Series:
    """The unit of each clip: its `by` value, joined with every value sharing a base clip."""
    from core.data.splits import split_units

    if by not in manifest.columns:
        raise LabError(f"cannot cross-validate by {by!r}: the manifest has no such column")
    return split_units(manifest.assign(group_id=manifest[by].astype(str)))


def fold_assignment(manifest: pd.DataFrame, cfg: CVConfig) -> pd.Series:
    """The fold (0 … K−1) that holds out each clip."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    labels = manifest["label"].to_numpy()
    units = units_of(manifest, cfg.by)
    if cfg.folds == "loso":
        lead = units.groupby(units).apply(lambda u: manifest.loc[u.index, "label"].mode().iloc[0])
        leaders = sorted(lead.index[lead == cfg.loso_label]) if cfg.loso_label else sorted(lead.index)
        if len(leaders) < 2:
            raise LabError(
                f"leave-one-out needs at least 2 groups of {cfg.loso_label or 'any'} label, found {len(leaders)}"
            )
        fold_of_unit = {u: k for k, u in enumerate(leaders)}
        sizes = np.zeros(len(leaders))
        for u in sorted(set(lead.index) - set(leaders), key=lambda u: (-(units == u).sum(), u)):
            k = int(np.argmin(sizes))  # each other group held out once, the folds kept even
            fold_of_unit[u] = k
            sizes[k] += (units == u).sum()
        return units.map(fold_of_unit).astype(int).rename("fold")
    try:
        k = int(cfg.folds)
    except ValueError:
        raise LabError(f"folds must be 'loso' or a number of folds, got {cfg.folds!r}") from None
    if k < 2:
        raise LabError(f"cross-validation needs at least 2 folds, got {k}")
    out = np.zeros(len(manifest), int)
    if cfg.shuffled:
        parts = StratifiedKFold(k, shuffle=True, random_state=cfg.seed).split(np.zeros(len(labels)), labels)
    else:
        per_label = pd.Series(labels).groupby(units.to_numpy()).first().value_counts()
        if per_label.min() < k:
            raise LabError(
                f"{k} folds need at least {k} groups of each label; this dataset has {per_label.to_dict()} "
                "(use fewer folds)"
            )
        parts = StratifiedGroupKFold(k, shuffle=True, random_state=cfg.seed).split(
            np.zeros(len(labels)), labels, units.to_numpy()
        )
    for fold, (_, test) in enumerate(parts):
        out[test] = fold
    return pd.Series(out, index=manifest.index, name="fold")


def fold_split(manifest: pd.DataFrame, fold_of: pd.Series, k: int, cfg: CVConfig) -> pd.Series:
    """train / dev / test of fold `k`: its held-out clips are test; dev is carved from the rest by group."""
    from core.data.splits import make_split

    split = pd.Series("test", index=manifest.index, name="split")
    rest = manifest[fold_of != k]
    if cfg.shuffled:  # the leaky twin: dev rows drawn at random too
        rng = np.random.default_rng([cfg.seed, k])
        dev = rng.random(len(rest)) < cfg.dev_fraction
        split[rest.index] = np.where(dev, "dev", "train")
        return split
    inner = make_split(
        rest.assign(group_id=rest[cfg.by].astype(str)),
        {"train": 1 - cfg.dev_fraction, "dev": cfg.dev_fraction},
        cfg.seed + k,
    )
    split[rest.index] = inner.to_numpy()
    return split


def _short_id() -> str:
    return f"cv-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"


# long: checks, folds, audits, then registration, in the all-or-nothing order the docstring states
def create(
    base: TrainConfig, cfg: CVConfig, launch_worker: bool = True, progress=None, twin_of: str = "", executor=None
) -> str:
    """Register a cross-validation: folds, their saved splits and audits, one run per fold × seed.

    Everything is checked and the audits are done before any run is registered (a failure
    leaves no orphan run). A zero-shot CV (`cfg.detector`) registers no run: its table is
    made by `zero_shot`.
    """
    from core.data.audit import copies_across_units, fold_audit, save_audit
    from core.data.datasets import load_dataset
    from core.data.splits import save_split

    registry.check_seeds(cfg.seeds)
    if not 0 < cfg.dev_fraction < 0.5:
        raise LabError(f"dev_fraction must lie in (0, 0.5), got {cfg.dev_fraction}")
    if cfg.detector:
        from core.detectors import DETECTORS

        if cfg.detector not in DETECTORS:
            raise LabError(f"unknown detector {cfg.detector!r}; choose from {', '.join(DETECTORS)}")
    ds = load_dataset(base.dataset)
    manifest = ds.manifest
    fold_of = fold_assignment(manifest, cfg)
    n_folds = int(fold_of.max()) + 1
    if not cfg.detector:
        registry.check_config(base)  # the fold splits replace base.split; everything else is checked now
    if executor is not None and executor.ray:
        from core.runs import executors

        executors.check(executor.address)
    cv_id = _short_id()
    load = lambda row: ds.load_clip(row["clip_id"]).samples  # noqa: E731
    if progress:
        progress(0.0, "auditing copies across groups once for every fold")
    across = copies_across_units(manifest, load, units_of(manifest, cfg.by), progress=progress)
    folds = []
    for k in range(n_folds):
        split = fold_split(manifest, fold_of, k, cfg)
        name = f"{cv_id}-f{k}"
        save_split(ds, name, split, {"cv": cv_id, "fold": k, "method": "shuffled rows" if cfg.shuffled else "groups"})
        report = fold_audit(manifest.assign(split=split.to_numpy()), across)
        save_audit(ds, name, report)
        held = manifest.loc[split == "test", cfg.by].astype(str)
        folds.append(
            {
                "fold": k,
                "split": name,
                "held_out": sorted(held.unique().tolist()),
                "clips": split.value_counts().to_dict(),
                "audit": report.counts() or "clean",
            }
        )
    leaky = [f["fold"] for f in folds if f["audit"] != "clean"]
    if leaky and not (cfg.shuffled or base.allow_leaky or cfg.detector):
        raise LabError(
            f"folds {leaky} are leaky: copies cross groups ({folds[leaky[0]]['audit']}); fix the dataset, or "
            "override explicitly (allow_leaky, recorded with every run)"
        )
    runs, run_fold = [], {}
    if not cfg.detector:
        for f in folds:
            for seed in cfg.seeds:
                run_cfg = replace(base, split=f["split"], seed=int(seed), allow_leaky=base.allow_leaky or cfg.shuffled)
                run_id = registry.register(run_cfg, cv_id, f"{cv_id} fold {f['fold']} seed {seed}")
                runs.append(run_id)
                run_fold[run_id] = {"fold": f["fold"], "seed": int(seed)}
    d = cv_dir() / cv_id
    d.mkdir(parents=True)
    atomic.write_json(
        d / "cv.json",
        {
            "id": cv_id,
            "dataset": ds.name,
            "settings": asdict(cfg),
            "base": asdict(base),
            "folds": folds,
            "runs": runs,
            "run_fold": run_fold,
            "parallel": cfg.parallel,
            "content_audit": across.counts() or "clean",
            "twin_of": twin_of,
            "created": time.time(),
        },
    )
    if executor is not None:
        from core.runs import executors

        executors.save(d, executor)
        for run_id in runs:
            executors.save(registry.runs_dir() / run_id, executor)
    jobs.write_status(d, "queued", 0.0, f"{len(folds)} folds, {len(runs)} runs queued" if runs else "zero-shot")
    if launch_worker and runs:
        jobs.start_locked(d, ["cv", "work", cv_id], f"{len(runs)} runs queued")
    return cv_id


def status(cv_id: str) -> dict[str, Any]:
    return jobs.folder_status(folder(cv_id))


def cancel(cv_id: str) -> None:
    jobs.signal_folder(folder(cv_id))


def resume(cv_id: str) -> None:
    """Continue a cancelled or failed CV: queued runs start, cancelled or failed ones resume."""
    d, st = folder(cv_id), status(cv_id)
    if st["state"] == "finished":
        raise LabError(f"cross-validation {cv_id} has finished; nothing to resume")
    jobs.start_locked(d, ["cv", "work", cv_id], "resuming", st.get("progress", 0.0))


def work(cv_id: str) -> list[Path]:
    """The worker: run every unfinished fold run, then write the out-of-fold table of each seed."""
    from core.runs.sweeps import run_queue

    paths: list[Path] = []

    def write_tables() -> str:  # before the CV reads finished: a poller never sees it without its tables
        paths.extend(out_of_fold(cv_id, seed) for seed in info(cv_id)["settings"]["seeds"])
        return f"finished: out-of-fold tables {', '.join(p.stem for p in paths)}"

    run_queue(folder(cv_id), "cv.json", on_finished=write_tables)
    return paths


def _save_oof(cv_id: str, table: pd.DataFrame, name: str, meta: dict[str, Any]) -> Path:
    from core.decision import correct
    from core.scoring import predictions

    c = info(cv_id)
    dup = table["clip_id"][table["clip_id"].duplicated()]
    if len(dup):
        raise LabError(f"{cv_id}: clip {dup.iloc[0]!r} was held out by two folds")
    sidecar = {
        "dataset": c["dataset"],
        "split_name": f"cv:{cv_id}",
        "part": "oof",
        "cv": cv_id,
        "folds": len(c["folds"]),
        "by": c["settings"]["by"],
        "shuffled": c["settings"]["shuffled"],
        "accuracy": float(correct(table["label"], table["logit"]).mean()),
        **meta,
    }
    return predictions.save(table.assign(split="oof"), sidecar, name)


def out_of_fold(cv_id: str, seed: int) -> Path:
    """One table in which every clip is scored once, by the fold model that held its group out."""
    from core.scoring import predictions

    c = info(cv_id)
    parts = []
    for run_id, where in c["run_fold"].items():
        if where["seed"] != seed:
            continue
        if registry.status(run_id)["state"] != "finished":
            raise LabError(f"{cv_id}: fold {where['fold']} (run {run_id}) has not finished")
        table, _ = predictions.load(registry.runs_dir() / run_id / "predictions" / "test.csv")
        parts.append(table.assign(fold=where["fold"], run=run_id))
    if not parts:
        raise LabError(f"{cv_id}: no runs for seed {seed}")
    table = pd.concat(parts, ignore_index=True)
    detector = f"cv:{cv_id}" + (" (shuffled rows)" if c["settings"]["shuffled"] else "")
    meta = {"detector": detector, "seed": seed, "runs": sorted(c["run_fold"])}
    return _save_oof(cv_id, table.assign(detector=detector), f"{cv_id}-oof-s{seed}", meta)


def zero_shot(cv_id: str, detector_name: str, progress=None, should_stop=None, **opts: Any) -> Path:
    """The out-of-fold table of a detector that trains on nothing: every clip scored once by it.

    Paired with a fine-tuned CV's table clip by clip (same dataset, same folds), so per-group gains
    are measured on the same groups.
    """
    from core.data.datasets import load_dataset
    from core.data.splits import load_split
    from core.detectors import make_detector
    from core.scoring import predictions
    from core.scoring.evaluate import score_clips

    c = info(cv_id)
    ds = load_dataset(c["dataset"])
    clips = ds.manifest.assign(split="oof")
    fold_of = {}
    for f in c["folds"]:
        split = load_split(ds, f["split"])
        fold_of.update({cid: f["fold"] for cid in ds.manifest.loc[split == "test", "clip_id"]})
    detector = make_detector(detector_name, **opts)
    logits = score_clips(ds, clips, detector, 32, progress, should_stop)
    table = predictions.build_table(
        clips, logits, detector=detector.name, adapter=detector.adapter, prompt=detector.prompt
    )
    table = table.assign(fold=table["clip_id"].map(fold_of))
    name = f"{cv_id}-zero-shot-{detector_name}"
    return _save_oof(cv_id, table, name, {"detector": detector.name, "zero_shot": True, **detector.info()})


def work_here(cv_id: str) -> list[Path]:
    """Run the folds in this process (the CLI's foreground), holding the CV's lock like its worker."""
    d = folder(cv_id)
    fd = jobs.owner_lock(d)
    if fd is None:
        raise LabError(f"cross-validation {cv_id} is already running")
    import os

    os.environ["LAB_LOCK_FD"] = str(fd)  # `work` takes it over, as a spawned worker would
    return work(cv_id)


def tables(cv_id: str) -> list[str]:
    """The out-of-fold tables made on this CV's folds (fine-tuned seeds, zero-shot detectors), newest first."""
    from core.scoring import predictions

    t = predictions.describe_tables()
    return t.loc[t["split_name"] == f"cv:{cv_id}", "table"].tolist()


def create_twin(cv_id: str, launch_worker: bool = True) -> str:
    """The same CV (settings, seeds, runs' settings) with rows shuffled into folds: the leaky twin."""
    c = info(cv_id)
    if c["settings"]["shuffled"]:
        raise LabError(f"{cv_id} is itself the shuffled twin")
    from core.runs import executors

    base = TrainConfig.from_dict({k: v for k, v in c["base"].items() if k != "provenance"})
    executor = executors.of(folder(cv_id))
    return create(
        base, replace(CVConfig(**c["settings"]), shuffled=True), launch_worker, twin_of=cv_id, executor=executor
    )


def twin(cv_id: str) -> str | None:
    """The shuffled twin of `cv_id`, if one was made."""
    return next((other for other in list_cvs() if info(other).get("twin_of") == cv_id), None)
