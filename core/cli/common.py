"""Pieces every stage's commands share: a tqdm bar, and running work as a dashboard job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def positive_int(text: str) -> int:
    """argparse type: a whole number ≥ 1 (batch sizes, counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number (thresholds, SNRs)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def unit_interval(text: str) -> float:
    """argparse type: a number in (0, 1] (a match score, a proportion)."""
    value = finite_float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1], got {value}")
    return value


def tqdm_progress(desc: str) -> tuple[Callable[[float, str], None], Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=desc, unit="‰", file=sys.stderr, bar_format="{l_bar}{bar}| {postfix}")

    def update(frac: float, msg: str) -> None:
        bar.n = int(frac * 1000)
        bar.set_postfix_str(msg, refresh=True)

    return update, bar.close


def job_dir(args: argparse.Namespace):
    return Path(args.job_dir) if getattr(args, "job_dir", None) else None


def run_job(args: argparse.Namespace, desc: str, work: Callable, done: Callable[[Any], tuple[str, str]]) -> Any:
    """Run `work(progress, should_stop)` with a tqdm bar, or as a dashboard job (status files) under --job-dir.

    SIGTERM (the dashboard's Cancel) asks the work to stop; it raises KeyboardInterrupt, which is
    recorded as cancelled. Failures are recorded with their message and re-raised.
    """
    import signal

    from core.runs import jobs

    job = job_dir(args)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("now", True))
    update, close = (jobs.reporter(job), lambda: None) if job else tqdm_progress(desc)
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


def add_executor(p: argparse.ArgumentParser) -> None:
    """--executor and --address: where the work runs (this machine, or a Ray cluster)."""
    p.add_argument("--executor", choices=["local", "ray"], default=None, help="default: ray if LAB_RAY_ADDRESS is set")
    p.add_argument(
        "--address", default=None, help="Ray cluster: auto, ray://HOST:PORT or HOST:PORT (or LAB_RAY_ADDRESS)"
    )


def executor_of(args: argparse.Namespace):
    from core.runs.executors import Executor

    return Executor.choose(getattr(args, "executor", None), getattr(args, "address", None))


def on_ray(args: argparse.Namespace, kind: str, label: str) -> Any:
    """Run this very command again as a Ray task (a job with a local driver); wait; return its result.

    The task's copy runs with `--executor local` (argparse keeps the last value), so it does the
    work where Ray placed it. Ctrl-C cancels the task.
    """
    import time

    from core.errors import LabError
    from core.runs import jobs

    job_id = jobs.launch(kind, [*sys.argv[1:], "--executor", "local"], label, executor=executor_of(args))
    update, close = tqdm_progress(f"{label} (Ray)")
    try:
        while (s := jobs.status(job_id))["state"] not in jobs.TERMINAL:
            update(float(s.get("progress", 0.0)), s.get("message", ""))
            time.sleep(0.5)
    except KeyboardInterrupt:
        jobs.cancel(job_id)
        raise
    finally:
        close()
    if s["state"] != "finished":
        raise LabError(
            f"{label}: {s['state']} on the Ray cluster: {s.get('message', '')} (log: {jobs.jobs_dir() / job_id}/log.txt)"
        )
    return s.get("result")
