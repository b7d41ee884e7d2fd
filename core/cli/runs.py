"""`python -m core train | runs | sweep`: fine-tuning runs and sweeps over them."""

from __future__ import annotations

import argparse
import json
import sys

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

    from core.runs.training import TrainConfig

    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    return TrainConfig(**values)


def cmd_runs(args: argparse.Namespace) -> int:
    from core.runs import registry

    if args.action == "new":
        run_id = registry.create_run(_train_config(args), name=args.name or "")
        if args.background:
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
        sweep_id = sweeps.create_sweep(_train_config(args), _grid(args.grid), args.seeds, parallel=args.parallel)
        print(sweep_id)
    elif not args.sweep:
        raise LabError(f"give the sweep: python -m core sweep {args.action} SWEEP")
    elif args.action == "matrix":
        matrix, per_seed = sweeps.results_matrix(args.sweep)
        print(matrix.to_string(index=False) if len(matrix) else "no finished runs yet")
    elif args.action == "cancel":
        sweeps.cancel_sweep(args.sweep)
    return 0


def cmd_sweep_worker(args: argparse.Namespace) -> int:
    from core.runs import sweeps

    sweeps.run_sweep(args.sweep)
    return 0


def _add_train_settings(p: argparse.ArgumentParser) -> None:
    from dataclasses import MISSING, fields

    from core.runs.training import TrainConfig

    for f in fields(TrainConfig):
        if f.name in ("extra", "noise_snr"):
            continue
        default = f.default if f.default is not MISSING else None
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            p.add_argument(flag, dest=f.name, action="store_true", default=None)
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

    w = top.add_parser("sweep-worker")  # hidden: started by `sweep new`; not in the help listing
    w.add_argument("--sweep", required=True)
    w.set_defaults(func=cmd_sweep_worker)
