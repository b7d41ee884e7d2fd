"""`python -m core ...`: the command line mirror of the dashboard pages, one module per stage."""

from __future__ import annotations

import argparse
import sys

from core.cli import analysis, data, detectors, longform, prompts, report, runs, scoring
from core.errors import LabError

STAGES = (data, detectors, scoring, runs, analysis, longform, prompts, report)
HIDDEN = {"sweep-worker", "ray-drive"}  # started by the lab itself, not typed by a user


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description="Speech Detection Lab command line")
    top = p.add_subparsers(dest="area", required=True)
    for stage in STAGES:
        stage.register(top)
    # argparse lists every subcommand in the usage line; a hidden one is left out of it and of
    # the help list (help=SUPPRESS would print "==SUPPRESS==" there instead)
    top.metavar = "{" + ",".join(name for name in top.choices if name not in HIDDEN) + "}"
    top._choices_actions = [a for a in top._choices_actions if a.dest not in HIDDEN]
    return p


def main(argv: list[str] | None = None) -> int:
    import os

    from core.paths import COMMAND_ENV
    from core.runs.commands import cli_line

    args = build_parser().parse_args(argv)
    before = os.environ.get(COMMAND_ENV)
    # what this command writes (datasets, splits, tables) records the line that made it; restored after,
    # so an in-process call (a test) leaves nothing behind
    os.environ[COMMAND_ENV] = cli_line(list(sys.argv[1:] if argv is None else argv))
    try:
        return args.func(args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cancelled; nothing half-written was kept", file=sys.stderr)
        return 130
    finally:
        if before is None:
            os.environ.pop(COMMAND_ENV, None)
        else:
            os.environ[COMMAND_ENV] = before
