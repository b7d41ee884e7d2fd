"""Pieces every stage's commands share: a tqdm bar, and running work as a dashboard job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


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
