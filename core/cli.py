"""`python -m core ...`: the command line mirror of the dashboard pages."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from core.errors import LabError


def _tqdm_progress(desc: str) -> tuple[Callable[[float, str], None], Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=desc, unit="‰", file=sys.stderr, bar_format="{l_bar}{bar}| {postfix}")

    def update(frac: float, msg: str) -> None:
        bar.n = int(frac * 1000)
        bar.set_postfix_str(msg, refresh=True)

    return update, bar.close


def cmd_build_default(args: argparse.Namespace) -> int:
    from core.default_dataset import build_default

    update, close = _tqdm_progress("building embedded dataset")
    try:
        root = build_default(args.name, force=args.force, workers=args.workers, progress=update)
    finally:
        close()
    print(f"dataset ready: {root}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from core.importers import import_dataset

    options = {}
    if args.kind == "voxconverse":
        options = {"include_gaps": args.include_gaps}
    update, close = _tqdm_progress(f"importing {args.kind}")
    try:
        root = import_dataset(
            args.kind, args.source, args.name, skip_bad=args.skip_bad, force=args.force, progress=update, **options
        )
    finally:
        close()
    from core.datasets import load_dataset

    ds = load_dataset(args.name)
    print(f"imported {len(ds.manifest)} clips into {root}")
    for note, n in ds.info.get("load_notes", {}).items():
        print(f"  note: {note} ({n} clips)")
    for problem in ds.info.get("skipped", []):
        print(f"  skipped: {problem}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from core.audit import split_status
    from core.datasets import list_datasets, load_dataset
    from core.splits import list_splits

    for name in list_datasets():
        ds = load_dataset(name)
        splits = ", ".join(f"{s} [{split_status(ds, s)}]" for s in list_splits(ds)) or "no splits"
        print(f"{name}: {len(ds.manifest)} clips, {ds.manifest['group_id'].nunique()} groups; {splits}")
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    from core.datasets import load_dataset
    from core.splits import check_split, make_split, save_split

    ds = load_dataset(args.dataset)
    fractions = dict(zip(("train", "dev", "test"), args.fractions))
    split = make_split(ds.manifest, fractions, seed=args.seed)
    problems = check_split(ds.manifest, split)
    if problems:
        raise LabError("split is invalid: " + "; ".join(problems))
    path = save_split(ds, args.name, split, {"fractions": fractions, "seed": args.seed, "method": "group-stratified"})
    table = ds.manifest.assign(split=split.to_numpy()).groupby(["split", "label"]).size().unstack(fill_value=0)
    print(f"saved {path}\n{table.to_string()}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from core.audit import audit_split
    from core.datasets import load_dataset

    ds = load_dataset(args.dataset)
    update, close = _tqdm_progress("auditing")
    try:
        if args.against_base:
            from core.audit import audit_against
            from core.default_dataset import build_default
            from core.lab_model import POOL_DATASET, pool_recipe

            build_default(POOL_DATASET, pool_recipe())  # deterministic: rebuilt if missing
            reference = load_dataset(POOL_DATASET)
            report = audit_against(ds, args.split, args.part, reference, threshold=args.threshold, progress=update)
        else:
            report = audit_split(
                ds, args.split, content=not args.structural_only, threshold=args.threshold, progress=update
            )
    finally:
        close()
    verdict = "LEAKY" if report.leaky else "clean"
    print(f"split {args.split!r}: {verdict} — {report.counts() or 'no findings'} ({report.seconds:.1f} s)")
    if report.leaky:
        print(report.findings.head(args.show).to_string(index=False))
    return 1 if report.leaky and args.fail_on_leak else 0


def cmd_build_base(args: argparse.Namespace) -> int:
    from core.lab_model import base_model_dir, train_base_model

    folder = base_model_dir()
    if (folder / "config.json").exists() and not args.force:
        print(f"base model present: {folder}")
        return 0
    update, close = _tqdm_progress("training the lab base model")
    try:
        train_base_model(folder, progress=update)
    finally:
        close()
    print(f"base model ready: {folder}")
    return 0


def _job_dir(args: argparse.Namespace):
    from pathlib import Path

    return Path(args.job_dir) if getattr(args, "job_dir", None) else None


def _run_job(args: argparse.Namespace, desc: str, work: Callable, done: Callable[[Any], tuple[str, str]]) -> Any:
    """Run `work(progress, should_stop)` with a tqdm bar, or as a dashboard job (status files) under --job-dir.

    SIGTERM (the dashboard's Cancel) asks the work to stop; it raises KeyboardInterrupt, which is
    recorded as cancelled. Failures are recorded with their message and re-raised.
    """
    import signal

    from core import jobs

    job = _job_dir(args)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("now", True))
    update, close = (jobs.reporter(job), lambda: None) if job else _tqdm_progress(desc)
    try:
        if job:
            jobs.write_status(job, "running", 0.0, desc)
        result = work(update, lambda: stop["now"])
    except KeyboardInterrupt:
        if job:
            jobs.write_status(job, "cancelled", 0.0, "cancelled by the user; nothing was written")
        raise
    except Exception as exc:
        if job:
            jobs.write_status(job, "failed", 0.0, str(exc))
        raise
    finally:
        close()
    if job:
        message, value = done(result)
        jobs.write_status(job, "finished", 1.0, message, result=value)
    return result


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core import runs
    from core.datasets import load_dataset
    from core.detectors import make_detector
    from core.evaluate import evaluate

    opts = {}
    if args.detector in ("audio-llm", "lab-base"):
        opts = {
            "batch_size": args.batch_size,
            "padding": args.padding,
            "mode": args.mode,
            "adapter": args.adapter or "",
            "dtype": args.dtype,
            "load_in_4bit": args.load_in_4bit,
            "compile": args.compile,
        }
        if args.detector == "audio-llm":
            opts["model"] = args.model
        args.prompt, other = runs.scoring_prompt(args.adapter, args.prompt)  # evaluation matches training
        if other:
            print("warning: scoring with another prompt than the adapter was trained with", file=sys.stderr)
        if args.prompt:
            opts["prompt"] = args.prompt
        opts["answers"] = (args.answer_speech, args.answer_nonspeech)

    def work(update, should_stop):
        return evaluate(
            load_dataset(args.dataset),
            args.split,
            args.part,
            make_detector(args.detector, **opts),
            batch_size=args.batch_size,
            seed=args.seed,
            progress=update,
            should_stop=should_stop,
            exclude_tags=args.exclude_tags,
        )

    path = _run_job(args, f"scoring with {args.detector}", work, lambda p: (f"wrote {p.name}", str(p)))
    print(f"predictions: {path}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core import jobs
    from core.training import Stop, train_run

    run_dir = Path(args.run_dir)
    try:
        result = train_run(run_dir, resume=args.resume)
    except Stop:
        print("cancelled; resumable from its checkpoint", file=sys.stderr)
        return 130
    except Exception as exc:
        jobs.write_status(run_dir, "failed", 0.0, f"{type(exc).__name__}: {exc}")
        raise
    if result:  # under `accelerate launch` only the main process has the metrics
        print(json.dumps(result["test"], indent=2))
    return 0


def _train_config(args: argparse.Namespace):
    from dataclasses import fields

    from core.training import TrainConfig

    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    return TrainConfig(**values)


def cmd_runs(args: argparse.Namespace) -> int:
    from core import runs

    if args.action == "new":
        run_id = runs.create_run(_train_config(args), name=args.name or "")
        if args.background:
            runs.launch(run_id)
            print(run_id)
            return 0
        from core.training import train_run

        print(f"run {run_id}: training in the foreground (results/runs/{run_id})", file=sys.stderr)
        res = train_run(runs.runs_dir() / run_id)
        print(json.dumps({"run": run_id, **res}, indent=2))
    elif args.action == "list":
        table = runs.list_runs()
        print(table.to_string(index=False) if len(table) else "no runs")
    elif args.action == "cancel":
        runs.cancel(args.run)
    elif args.action == "resume":
        runs.launch(args.run, resume=True)
    return 0


def _grid(items: list[str]) -> dict[str, list]:
    out = {}
    for item in items:
        key, _, values = item.partition("=")
        parsed = []
        for v in values.split(","):
            try:
                parsed.append(int(v) if v.lstrip("-").isdigit() else float(v))
            except ValueError:
                parsed.append(v)
        out[key.strip()] = parsed
    return out


def cmd_sweep(args: argparse.Namespace) -> int:
    from core import runs

    if args.action == "new":
        sweep_id = runs.create_sweep(_train_config(args), _grid(args.grid), args.seeds, parallel=args.parallel)
        print(sweep_id)
    elif args.action == "matrix":
        matrix, per_seed = runs.results_matrix(args.sweep)
        print(matrix.to_string(index=False) if len(matrix) else "no finished runs yet")
    elif args.action == "cancel":
        runs.cancel_sweep(args.sweep)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from core import atomic, predictions
    from core.calibration_report import as_json, report

    dev_path, test_path = predictions.resolve(args.dev), predictions.resolve(args.test)
    dev, _ = predictions.load(dev_path)
    test, _ = predictions.load(test_path)
    rep, _, test_c = report(dev, test, args.method, args.bins, args.strategy)
    out = predictions.analysis_dir(test_path)
    payload = {**as_json(rep), "fitted_on": dev_path.name, "applied_to": test_path.name, "bins": args.bins}
    atomic.write_json(out / f"calibration-{args.method}.json", payload)
    atomic.write_csv(out / f"calibrated-{args.method}.csv", test_c)
    cols = ["split", "stage", "accuracy", "balanced_accuracy", "roc_auc", "ece", "ece_quantile", "brier", "nll"]
    print(f"{args.method} fitted on {dev_path.name}: {rep.params}")
    print(rep.table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for w in rep.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {out}/calibration-{args.method}.json and calibrated-{args.method}.csv")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from core import atomic, predictions
    from core.compare import compare

    pa, pb = predictions.resolve(args.a), predictions.resolve(args.b)
    a, _ = predictions.load(pa)
    b, _ = predictions.load(pb)
    c = compare(a, b, args.threshold_a, args.threshold_b, n_boot=args.n_boot, delta=args.delta)
    out = predictions.analysis_dir(pa) / f"compare-{pb.stem}.json"
    atomic.write_json(out, {"a": pa.name, "b": pb.name, **c.as_json()})
    t = c.table
    print(f"A = {pa.stem}\nB = {pb.stem}\n{c.n_clips} paired clips in {c.n_groups} groups")
    for k in ("a", "b"):
        lo, hi = c.wilson[k]
        print(f"accuracy {k.upper()}: {c.accuracy[k]:.4f}  (Wilson 95% {lo:.4f}–{hi:.4f})")
    print(f"2×2: both right {t[0, 0]}, only A {t[0, 1]}, only B {t[1, 0]}, both wrong {t[1, 1]}")
    print("McNemar p: " + ", ".join(f"{k} {v:.4g}" for k, v in c.mcnemar.items()))
    print(
        f"A − B = {c.diff:+.4f}; 95% CI clustered by group [{c.ci_clustered[0]:+.4f}, {c.ci_clustered[1]:+.4f}], "
        f"naive by clip [{c.ci_naive[0]:+.4f}, {c.ci_naive[1]:+.4f}]"
    )
    print(f"power: {c.power['note']}")
    print(f"wrote {out}")
    return 0


def cmd_aggregate(args: argparse.Namespace) -> int:
    from core import atomic, predictions
    from core.compare import aggregate

    if args.sweep:
        from core import runs

        matrix, per_seed = runs.results_matrix(args.sweep, args.part)
        folder = runs.sweeps_dir() / args.sweep
        atomic.write_csv(folder / f"matrix-{args.part}.csv", matrix)
        atomic.write_csv(folder / f"per-seed-{args.part}.csv", per_seed)
        print(matrix.to_string(index=False) if len(matrix) else "no finished runs yet")
        print(f"wrote {folder}/matrix-{args.part}.csv")
        return 0
    if not args.tables:
        raise LabError("give predictions tables (runs of one configuration, different seeds) or --sweep ID")
    paths = [predictions.resolve(t) for t in args.tables]
    per, summary = aggregate({p.stem: predictions.load(p)[0] for p in paths})
    name = args.name or f"{paths[0].stem}-x{len(paths)}"
    folder = predictions.results_root() / "aggregates"
    atomic.write_csv(folder / f"{name}-per-seed.csv", per)
    atomic.write_csv(folder / f"{name}.csv", summary)
    print(per.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"wrote {folder}/{name}.csv")
    return 0


def cmd_conditions(args: argparse.Namespace) -> int:
    from core.conditions import ConditionSpec, generate
    from core.datasets import load_dataset

    spec = ConditionSpec(
        durations_ms=tuple(args.durations),
        snrs_db=tuple(args.snrs),
        include_clean=not args.no_clean,
        noise=args.noise,
        noise_folder=args.noise_folder or "",
        bands=tuple(args.bands),
        rooms=tuple(args.rooms),
        bases_per_label=args.bases_per_label,
        seed=args.seed,
    )
    ds = _run_job(
        args,
        f"conditions {args.name}",
        lambda update, should_stop: generate(
            load_dataset(args.dataset), args.split, args.part, args.name, spec, args.force, update, should_stop
        ),
        lambda d: (f"{d.name}: {len(d.manifest)} clips", d.name),
    )
    print(
        f"condition set {ds.name}: {len(ds.manifest)} clips from {ds.info['base_clips']} base clips; split 'conditions'"
    )
    print(f"score it: python -m core evaluate --dataset {ds.name} --split conditions --part test --detector silero-vad")
    return 0


def cmd_psychometric(args: argparse.Namespace) -> int:
    from core import atomic, predictions
    from core import psychometrics as pm

    by = [c for c in (args.by or []) if c]
    frames = []
    for name in args.tables:
        path = predictions.resolve(name)
        table, meta = predictions.load(path)
        detector = meta.get("detector", path.stem)
        fits = pm.fit_table(
            table,
            args.axis,
            by,
            args.threshold,
            function=args.function,
            target=args.target,
            n_boot=args.n_boot,
            boot=args.boot,
            lapse_max=args.lapse_max,
        )
        rows = pm.summary_rows(fits, detector)
        frames.append(rows)
        out = predictions.analysis_dir(path)
        tag = f"{args.axis}" + (f"-by-{'-'.join(by)}" if by else "")
        payload = {
            "table": path.name,
            "axis": args.axis,
            "by": by,
            "function": args.function,
            "target": args.target,
            "fits": [{"stratum": s, "note": note, **(f.as_dict() if f else {})} for s, f, note in fits],
        }
        if args.glm:
            g = pm.interaction_glm(table, args.threshold)
            payload["glm"] = {**g, "coefficients": g["coefficients"].to_dict(orient="records")}
            print(
                f"{detector}: GEE {g['formula']} (clusters: {g['n_clusters']} base clips); "
                f"interaction p = {g['interaction_p']:.3g}; McFadden R² = {g['mcfadden_r2']:.3f}"
            )
            print(g["coefficients"].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        atomic.write_json(out / f"psychometric-{tag}.json", payload)
        atomic.write_csv(out / f"observed-{tag}.csv", pm.observed(table, args.axis, by, args.threshold))
        print(f"wrote {out}/psychometric-{tag}.json")
    import pandas as pd

    summary = pd.concat(frames, ignore_index=True)
    cols = [c for c in ["detector", *by, "result", "lapse", "deviance", "p_deviance", "clips"] if c in summary]
    print(summary[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from core import annotations
    from core.datasets import load_dataset

    ds = load_dataset(args.dataset)
    if args.clip and args.tag:
        if args.remove:
            annotations.remove_tag(ds, args.clip, args.tag)
        else:
            annotations.set_tag(ds, args.clip, args.tag, args.note)
    elif args.clip or args.tag:
        raise LabError("give both a clip id and a tag (or neither, to list the tags)")
    t = annotations.load(ds)
    print(t.to_string(index=False) if len(t) else f"no tags in {ds.name}")
    return 0


def cmd_errors(args: argparse.Namespace) -> int:
    from core import atomic, predictions
    from core.error_analysis import consistently_wrong, per_clip

    paths = [predictions.resolve(t) for t in args.tables]
    wide = per_clip({p.stem: predictions.load(p)[0] for p in paths}, args.threshold)
    top = consistently_wrong(wide, args.min_frac)
    cols = ["clip_id", "label", "group_id", "duration_ms", "snr_db", "runs_wrong", "runs", "mean_abs_logit_wrong"]
    print(
        f"{len(wide)} clips, {int((wide['runs_wrong'] > 0).sum())} wrong in at least one of {len(paths)} tables; "
        f"{len(top)} wrong in ≥ {args.min_frac:.0%}:"
    )
    print(top[cols].head(30).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if args.csv:
        atomic.write_csv(args.csv, wide)
        print(f"wrote {args.csv}")
    return 0


def cmd_sweep_worker(args: argparse.Namespace) -> int:
    from core import runs

    runs.run_sweep(args.sweep)
    return 0


def _add_train_settings(p: argparse.ArgumentParser) -> None:
    from dataclasses import MISSING, fields

    from core.training import TrainConfig

    for f in fields(TrainConfig):
        if f.name in ("extra", "noise_snr"):
            continue
        default = f.default if f.default is not MISSING else None
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            p.add_argument(flag, dest=f.name, action="store_true", default=None)
        else:
            p.add_argument(flag, dest=f.name, type=type(default), default=None, help=f"default {default!r}")


def build_parser() -> argparse.ArgumentParser:
    from core.audit import NEAR_THRESHOLD
    from core.importers import SCANNERS

    p = argparse.ArgumentParser(prog="python -m core", description="Speech Detection Lab command line")
    top = p.add_subparsers(dest="area", required=True)
    data = top.add_parser("data", help="datasets, splits and leakage audits").add_subparsers(dest="cmd", required=True)

    b = data.add_parser("build-default", help="build the embedded default dataset (offline)")
    b.add_argument("--name", default="default")
    b.add_argument("--force", action="store_true", help="rebuild even if it exists")
    b.add_argument("--workers", type=int, default=2)
    b.set_defaults(func=cmd_build_default)

    i = data.add_parser("import", help="import a real corpus (audio read in place)")
    i.add_argument("kind", choices=sorted(SCANNERS))
    i.add_argument("source", help="folder (or CSV file for 'csv')")
    i.add_argument("--name", required=True, help="dataset name")
    i.add_argument("--skip-bad", action="store_true", help="skip unusable clips instead of failing")
    i.add_argument("--force", action="store_true", help="replace an existing dataset of that name")
    i.add_argument("--include-gaps", action="store_true", help="voxconverse: gaps between turns as non-speech")
    i.set_defaults(func=cmd_import)

    ls = data.add_parser("list", help="datasets and their splits")
    ls.set_defaults(func=cmd_list)

    s = data.add_parser("split", help="make and save a group-aware, label-stratified split")
    s.add_argument("--dataset", default="default")
    s.add_argument("--name", default="default", help="split name")
    s.add_argument("--fractions", type=float, nargs=3, default=[0.7, 0.15, 0.15], metavar=("TRAIN", "DEV", "TEST"))
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_split)

    a = data.add_parser("audit", help="audit a saved split for leakage")
    a.add_argument("--dataset", default="default")
    a.add_argument("--split", default="default")
    a.add_argument("--threshold", type=float, default=NEAR_THRESHOLD, help="near-duplicate match score")
    a.add_argument("--structural-only", action="store_true", help="skip the content (audio) checks")
    a.add_argument("--show", type=int, default=20, help="findings to print")
    a.add_argument("--fail-on-leak", action="store_true", help="exit 1 if the split is leaky")
    a.add_argument(
        "--against-base",
        action="store_true",
        help="check --part of the split against the lab base model's training pool instead",
    )
    a.add_argument("--part", default="test", help="with --against-base: train, dev, test or all")
    a.set_defaults(func=cmd_audit)

    model = top.add_parser("model", help="the lab base model").add_subparsers(dest="cmd", required=True)
    mb = model.add_parser("build-base", help="train the lab base model from its recipe if missing (~1 min)")
    mb.add_argument("--force", action="store_true")
    mb.set_defaults(func=cmd_build_base)

    from core.detectors import DETECTORS

    e = top.add_parser("evaluate", help="score a split with a detector; write a predictions table")
    e.add_argument("--dataset", default="default")
    e.add_argument("--split", default="default", help="saved split name")
    e.add_argument("--part", default="test", help="train, dev, test or all")
    e.add_argument("--detector", default="lab-base", choices=sorted(DETECTORS))
    e.add_argument("--model", default="Qwen/Qwen2-Audio-7B-Instruct", help="audio-llm: local dir or cached id")
    e.add_argument("--adapter", default="", help="LoRA adapter folder (peft)")
    e.add_argument(
        "--prompt",
        default="",
        help="question text (answers A = speech, B = non-speech); the clip goes first, or where it says <audio>; "
        "default: a run's adapter's own prompt, else the default question",
    )
    e.add_argument("--answer-speech", default="A", help="audio LLMs: the answer (one token) that means speech")
    e.add_argument("--answer-nonspeech", default="B", help="audio LLMs: the answer (one token) that means non-speech")
    e.add_argument("--padding", default="trimmed", choices=["trimmed", "padded"])
    e.add_argument("--mode", default="logits", choices=["logits", "generate"])
    e.add_argument("--dtype", default="auto")
    e.add_argument("--load-in-4bit", action="store_true", help="NF4 base weights (CUDA + bitsandbytes)")
    e.add_argument("--batch-size", type=int, default=16)
    e.add_argument("--compile", action="store_true", help="audio-llm: torch.compile the layers (GPU throughput)")
    e.add_argument("--seed", type=int, default=None, help="recorded in the table (e.g. the run's seed)")
    e.add_argument("--job-dir", default=None, help=argparse.SUPPRESS)
    e.add_argument(
        "--exclude-tags",
        nargs="*",
        action="extend",
        default=[],
        help="leave out clips with these annotation tags (--exclude-tags=TAG for a tag that starts with '-')",
    )
    e.set_defaults(func=cmd_evaluate)

    tg = top.add_parser("tag", help="tag a clip in the dataset's annotations (or --remove the tag); list with no clip")
    tg.add_argument("--dataset", default="default")
    tg.add_argument("clip", nargs="?", help="clip id")
    tg.add_argument("tag", nargs="?", help="e.g. 'label wrong', 'ambiguous'")
    tg.add_argument("--note", default="")
    tg.add_argument("--remove", action="store_true")
    tg.set_defaults(func=cmd_tag)

    er = top.add_parser("errors", help="per-clip errors across runs: consistently wrong and confident errors")
    er.add_argument("tables", nargs="+", help="predictions tables scored on the same clips (runs, seeds, detectors)")
    er.add_argument("--threshold", type=float, default=0.0)
    er.add_argument("--min-frac", type=float, default=0.5, help="consistently wrong: wrong in at least this fraction")
    er.add_argument("--csv", help="write the per-clip table here")
    er.set_defaults(func=cmd_errors)

    t = top.add_parser("train", help="train one registered run (the dashboard starts this)")
    t.add_argument("--run-dir", required=True)
    t.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    t.set_defaults(func=cmd_train)

    r = top.add_parser("runs", help="training runs: new, list, cancel, resume")
    r.add_argument("action", choices=["new", "list", "cancel", "resume"])
    r.add_argument("run", nargs="?", help="run id (cancel, resume)")
    r.add_argument("--name", default="")
    r.add_argument("--background", action="store_true", help="new: start it in the background")
    _add_train_settings(r)
    r.set_defaults(func=cmd_runs)

    sw = top.add_parser("sweep", help="grid × seeds of runs, one per GPU at a time (one on CPU)")
    sw.add_argument("action", choices=["new", "matrix", "cancel"])
    sw.add_argument("sweep", nargs="?", help="sweep id (matrix, cancel)")
    sw.add_argument("--grid", action="append", default=[], help="KEY=v1,v2 (repeatable), e.g. lora_r=8,16")
    sw.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    sw.add_argument("--parallel", type=int, default=0, help="runs at once (0 = one per GPU; one without CUDA)")
    _add_train_settings(sw)
    sw.set_defaults(func=cmd_sweep)

    c = top.add_parser("calibrate", help="fit a calibrator on a dev table, apply and judge it on a test table")
    c.add_argument("--dev", required=True, help="predictions table (name or path) to fit on")
    c.add_argument("--test", required=True, help="predictions table (name or path) to apply to")
    c.add_argument("--method", choices=["temperature", "platt", "isotonic"], default="temperature")
    c.add_argument("--bins", type=int, default=10)
    c.add_argument("--strategy", choices=["uniform", "quantile"], default="uniform")
    c.set_defaults(func=cmd_calibrate)

    cp = top.add_parser("compare", help="McNemar, paired clustered bootstrap and power for two tables")
    cp.add_argument("a", help="predictions table A (name or path)")
    cp.add_argument("b", help="predictions table B, scored on the same clips")
    cp.add_argument("--threshold-a", type=float, default=0.0, help="decision threshold on A's log-odds")
    cp.add_argument("--threshold-b", type=float, default=0.0)
    cp.add_argument("--n-boot", type=int, default=2000)
    cp.add_argument("--delta", type=float, default=None, help="difference to power for (default: observed)")
    cp.set_defaults(func=cmd_compare)

    ag = top.add_parser("aggregate", help="mean ± std over seeds: tables of one configuration, or a sweep")
    ag.add_argument("tables", nargs="*", help="predictions tables (names or paths)")
    ag.add_argument("--sweep", help="a sweep id: its results matrix over seeds")
    ag.add_argument("--part", choices=["dev", "test"], default="test")
    ag.add_argument("--name", help="output name under results/aggregates")
    ag.set_defaults(func=cmd_aggregate)

    from core import conditions as cond
    from core import psychometrics as pm

    cd = top.add_parser("conditions", help="a psychoacoustic condition set (durations × SNRs × bands × rooms)")
    cd.add_argument("--dataset", default="default", help="source dataset")
    cd.add_argument("--split", required=True, help="a saved split of the source dataset")
    cd.add_argument("--part", default="test", help="which part supplies the base clips (the rest supply babble)")
    cd.add_argument("--name", required=True, help="name of the new dataset")
    cd.add_argument("--durations", type=int, nargs="+", default=list(cond.DURATIONS_MS), help="milliseconds")
    cd.add_argument("--snrs", type=float, nargs="+", default=list(cond.SNRS_DB), help="dB")
    cd.add_argument("--no-clean", action="store_true", help="leave out the noise-free variants")
    cd.add_argument("--noise", choices=list(cond.NOISES), default="white")
    cd.add_argument("--noise-folder", help="folder of noise recordings (with --noise folder)")
    cd.add_argument("--bands", nargs="+", choices=list(cond.BANDS), default=["clean"])
    cd.add_argument("--rooms", nargs="+", choices=list(cond.ROOMS), default=["none"])
    cd.add_argument("--bases-per-label", type=int, default=24)
    cd.add_argument("--seed", type=int, default=0)
    cd.add_argument("--force", action="store_true", help="replace an existing dataset of that name")
    cd.add_argument("--job-dir", help=argparse.SUPPRESS)
    cd.set_defaults(func=cmd_conditions)

    ps = top.add_parser("psychometric", help="psychometric fits, thresholds with bootstrap CIs, GLM")
    ps.add_argument("tables", nargs="+", help="predictions tables scored on a condition set")
    ps.add_argument("--axis", choices=list(pm.AXES), default="snr_db")
    ps.add_argument("--by", nargs="*", default=[], help="strata, e.g. duration_ms band reverb")
    ps.add_argument("--function", choices=list(pm.FUNCTIONS), default="logistic")
    ps.add_argument("--target", type=float, default=0.75, help="proportion correct at the threshold")
    ps.add_argument("--n-boot", type=int, default=1000)
    ps.add_argument("--boot", choices=["nonparametric", "parametric"], default="nonparametric")
    ps.add_argument("--lapse-max", type=float, default=pm.LAPSE_MAX)
    ps.add_argument("--threshold", type=float, default=0.0, help="decision threshold on the log-odds")
    ps.add_argument("--glm", action="store_true", help="also fit the GEE of correct ~ log2(duration) × SNR")
    ps.set_defaults(func=cmd_psychometric)

    w = top.add_parser("sweep-worker", help=argparse.SUPPRESS)
    w.add_argument("--sweep", required=True)
    w.set_defaults(func=cmd_sweep_worker)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cancelled; nothing half-written was kept", file=sys.stderr)
        return 130
