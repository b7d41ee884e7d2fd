"""`python -m core train | runs | sweep | cv`: fine-tuning runs, sweeps and cross-validations over them."""

from __future__ import annotations

import argparse
import json
import sys

from core.cli.common import add_executor, executor_of, tqdm_progress
from core.errors import LabError


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core.runs import jobs
    from core.runs.training import RunBusy, Stop, train_run

    run_dir = Path(args.run_dir)
    if not (run_dir / "config.json").is_file():
        raise LabError(f"{run_dir}: not a run folder (no config.json); create runs with `python -m core runs new`")
    try:
        result = train_run(run_dir, resume=args.resume)
    except RunBusy as exc:  # another trainer has this run: touch nothing
        print(f"error: {exc}", file=sys.stderr)
        return 3
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

    from core.runs.train_config import TrainConfig

    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    return TrainConfig(**values)


def cmd_runs(args: argparse.Namespace) -> int:
    from core.runs import registry

    if args.action == "new":
        executor = executor_of(args)
        run_id = registry.create_run(_train_config(args), name=args.name or "", executor=executor)
        if args.background or executor.ray:
            registry.launch(run_id)
            print(run_id)
            return 0
        from core.runs.training import train_run

        print(f"run {run_id}: training in the foreground (results/runs/{run_id})", file=sys.stderr)
        res = train_run(registry.runs_dir() / run_id)
        print(json.dumps({"run": run_id, **res}, indent=2))
    elif args.action == "list":
        table = registry.list_runs()
        print(table.to_string(index=False) if len(table) else "no runs")
    elif not args.run:
        raise LabError(f"give the run: python -m core runs {args.action} RUN (see: python -m core runs list)")
    elif args.action == "cancel":
        registry.cancel(args.run)
    elif args.action == "resume":
        registry.launch(args.run, resume=True)
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
    from core.runs import sweeps

    if args.action == "new":
        sweep_id = sweeps.create_sweep(
            _train_config(args), _grid(args.grid), args.seeds, parallel=args.parallel, executor=executor_of(args)
        )
        print(sweep_id)
    elif not args.sweep:
        raise LabError(f"give the sweep: python -m core sweep {args.action} SWEEP")
    elif args.action == "matrix":
        matrix, per_seed = sweeps.results_matrix(args.sweep)
        print(matrix.to_string(index=False) if len(matrix) else "no finished runs yet")
    elif args.action == "cancel":
        sweeps.cancel_sweep(args.sweep)
    elif args.action == "resume":
        sweeps.resume_sweep(args.sweep)
        print(f"resumed {args.sweep}")
    return 0


def cmd_sweep_worker(args: argparse.Namespace) -> int:
    from core.runs import sweeps

    sweeps.run_sweep(args.sweep)
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    from core.analysis.groups import across_folds, per_fold, per_group
    from core.runs import cv
    from core.scoring import predictions

    if args.action == "new":
        settings = cv.CVConfig(
            folds=args.folds, by=args.by, loso_label=args.loso_label, dev_fraction=args.dev_fraction,
            seeds=args.seeds, shuffled=args.shuffled, parallel=args.parallel, detector=args.zero_shot or "",
            seed=args.fold_seed,
        )  # fmt: skip
        update, close = tqdm_progress("setting up the folds")
        try:
            executor = executor_of(args)
            cv_id = cv.create(
                _train_config(args), settings, launch_worker=args.background or executor.ray, progress=update,
                executor=executor,
            )  # fmt: skip
        finally:
            close()
        print(cv_id)
        if args.zero_shot:
            path = cv.zero_shot(cv_id, args.zero_shot)
            print(f"out-of-fold table: {path.stem}")
        elif not (args.background or executor.ray):
            print(f"cross-validation {cv_id}: training its folds in the foreground", file=sys.stderr)
            for path in cv.work_here(cv_id):
                print(f"out-of-fold table: {path.stem}")
        return 0
    if args.action == "list":
        for cv_id in cv.list_cvs():
            s, c = cv.status(cv_id), cv.info(cv_id)
            print(f"{cv_id}: {s['state']} — {len(c['folds'])} folds by {c['settings']['by']}, {s.get('message', '')}")
        return 0
    if not args.cv:
        raise LabError(f"give the cross-validation: python -m core cv {args.action} ID")
    if args.action == "work":
        cv.work(args.cv)
    elif args.action == "cancel":
        cv.cancel(args.cv)
    elif args.action == "resume":
        cv.resume(args.cv)
    elif args.action == "zero-shot":
        print(cv.zero_shot(args.cv, args.zero_shot or "silero-vad").stem)
    elif args.action == "show":
        s = cv.status(args.cv)
        print(f"{args.cv}: {s['state']} — {s.get('message', '')}")
        for name in cv.tables(args.cv):
            table, _ = predictions.load(predictions.resolve(name))
            folds = per_fold(table)
            acc = across_folds(folds["accuracy"].tolist())
            print(f"\n{name}: accuracy over folds {acc['mean']:.3f} ± {acc['std']:.3f} "
                  f"(95% CI {acc['ci_lower']:.3f}–{acc['ci_upper']:.3f}, {acc['folds']} folds)")  # fmt: skip
            print(folds.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
            print("worst groups:")
            print(per_group(table).head(8).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def cmd_ray(args: argparse.Namespace) -> int:
    from core.runs import executors

    executor = executors.Executor.choose("ray", args.address)
    if args.action == "status":
        c = executors.cluster(executor.address)
        if args.json:
            print(json.dumps(c))
            return 0
        print(f"Ray cluster {c['address']}: {len(c['nodes'])} node(s), GPUs {c['gpus_free']}/{c['gpus']} free, "
              f"CPUs {c['cpus_free']}/{c['cpus']} free")  # fmt: skip
        for n in c["nodes"]:
            print(f"  {n['node']} ({n['id']}): {n['gpus']} GPU, {n['cpus']} CPU")
        return 0
    env, nodes = executors.lab_env(), executors.probe(executor.address)
    if args.json:
        print(json.dumps({"nodes": nodes, **env}))
        return 0
    for r in nodes:
        print(f"  node {r['node']}, host {r['host']}: sees the lab's folders")
    print(f"every node sees the data folder {env['LAB_DATA_DIR']} and results {env['LAB_RESULTS_DIR']}")
    return 0


def cmd_ray_drive(args: argparse.Namespace) -> int:
    """The local driver of one run, job or prompt study that runs as a Ray task (started by the lab)."""
    from pathlib import Path

    from core.runs import executors, jobs, registry

    resume = ["--resume"] if args.resume else []
    if args.run:
        folder = registry.runs_dir() / args.run
        items = [(folder, ["train", "--run-dir", str(folder), *resume])]
    elif args.job:
        folder = jobs.jobs_dir() / args.job
        items = [(folder, json.loads((folder / "job.json").read_text())["args"])]
    else:
        from core.prompts import study

        folder = study.folder(args.study)
        items = [(folder, ["prompts", "run", args.study, *resume])]
    if jobs.hold_lock(Path(folder)) is None:
        raise LabError(f"{Path(folder).name} is already running")
    executors.drive(items, executors.of(folder))
    return 0


def _pair(text: str) -> tuple[float, float]:
    """A range typed as LOW,HIGH (the SNR range of noise, the RT60 range of rooms)."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers LOW,HIGH, got {text!r}") from None
    return (low, high)


def _add_train_settings(p: argparse.ArgumentParser) -> None:
    from dataclasses import MISSING, fields

    from core.runs.train_config import TrainConfig

    for f in fields(TrainConfig):
        if f.name == "extra":
            continue
        default = f.default if f.default is not MISSING else None
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None)
        elif isinstance(default, tuple):
            p.add_argument(flag, dest=f.name, type=_pair, default=None, metavar="LOW,HIGH",
                           help=f"default {','.join(f'{v:g}' for v in default)}")  # fmt: skip
        else:
            p.add_argument(flag, dest=f.name, type=type(default), default=None, help=f"default {default!r}")


def register(top: argparse._SubParsersAction) -> None:
    """`train` (one registered run), `runs`, `sweep` and the hidden `sweep-worker`."""
    t = top.add_parser("train", help="train one registered run (the dashboard starts this)")
    t.add_argument("--run-dir", required=True)
    t.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    t.set_defaults(func=cmd_train)

    r = top.add_parser("runs", help="training runs: new, list, cancel, resume")
    r.add_argument("action", choices=["new", "list", "cancel", "resume"])
    r.add_argument("run", nargs="?", help="run id (cancel, resume)")
    r.add_argument("--name", default="")
    r.add_argument("--background", action="store_true", help="new: start it in the background")
    add_executor(r)
    _add_train_settings(r)
    r.set_defaults(func=cmd_runs)

    sw = top.add_parser("sweep", help="grid × seeds of runs, one per GPU at a time (one on CPU)")
    sw.add_argument("action", choices=["new", "matrix", "cancel", "resume"])
    sw.add_argument("sweep", nargs="?", help="sweep id (matrix, cancel, resume)")
    sw.add_argument("--grid", action="append", default=[], help="KEY=v1,v2 (repeatable), e.g. lora_r=8,16")
    sw.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    sw.add_argument("--parallel", type=int, default=0, help="runs at once (0 = one per GPU; one without CUDA)")
    add_executor(sw)
    _add_train_settings(sw)
    sw.set_defaults(func=cmd_sweep)

    cvp = top.add_parser("cv", help="cross-validation by speaker/source: LOSO or K group folds, out-of-fold tables")
    cvp.add_argument("action", choices=["new", "list", "show", "cancel", "resume", "work", "zero-shot"])
    cvp.add_argument("cv", nargs="?", help="cross-validation id (show, cancel, resume, work, zero-shot)")
    cvp.add_argument("--folds", default="4", help="'loso' (leave one group out) or a number of group folds")
    cvp.add_argument("--by", default="group_id", help="the column whose values are held out")
    cvp.add_argument("--loso-label", default="speech", help="loso: the label whose groups make the folds ('' = all)")
    cvp.add_argument("--dev-fraction", type=float, default=0.15, help="of each fold's training groups")
    cvp.add_argument("--seeds", type=int, nargs="+", default=[0])
    cvp.add_argument("--fold-seed", type=int, default=0, help="seed of the fold assignment")
    cvp.add_argument("--shuffled", action="store_true", help="assign rows, not groups (the leaky twin)")
    cvp.add_argument("--parallel", type=int, default=0, help="runs at once (0 = one per GPU; one without CUDA)")
    cvp.add_argument("--zero-shot", default="", help="a detector to score the folds with, untrained (e.g. silero-vad)")
    cvp.add_argument("--background", action="store_true", help="new: train the folds in the background")
    add_executor(cvp)
    _add_train_settings(cvp)
    cvp.set_defaults(func=cmd_cv)

    ray = top.add_parser("ray", help="the Ray cluster this lab can run on: status, probe")
    ray.add_argument("action", choices=["status", "probe"])
    ray.add_argument("--address", default=None, help="auto, ray://HOST:PORT or HOST:PORT (or LAB_RAY_ADDRESS)")
    ray.add_argument("--json", action="store_true", help="print the answer as JSON")
    ray.set_defaults(func=cmd_ray)

    rd = top.add_parser("ray-drive")  # hidden: the local driver of a run, job or study on Ray
    rd.add_argument("--run")
    rd.add_argument("--job")
    rd.add_argument("--study")
    rd.add_argument("--resume", action="store_true")
    rd.set_defaults(func=cmd_ray_drive)

    w = top.add_parser("sweep-worker")  # hidden: started by `sweep new`; not in the help listing
    w.add_argument("--sweep", required=True)
    w.set_defaults(func=cmd_sweep_worker)
