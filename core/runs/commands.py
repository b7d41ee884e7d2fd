"""The command line behind each background action, to copy: `python -m core ...` as a shell would read it.

Why: a researcher who set a job up in the dashboard should be able to rerun it from a script or
a cluster queue without translating the form by hand (LlamaBoard shows the same). The line is
quoted with `shlex.join`; it is shown, never run through a shell by the lab.
"""

from __future__ import annotations

import shlex
from dataclasses import fields
from typing import Any

from core.runs.train_config import TrainConfig


def cli_line(args: list[str]) -> str:
    """`python -m core ARGS` for a job's argv, without the flags only the lab's own job runner needs."""
    out, skip = [], 0
    for i, a in enumerate(args):
        if skip:
            skip -= 1
            continue
        if a == "--job-dir" or a.startswith("--job-dir="):
            skip = 0 if "=" in a else 1
            continue
        if a == "--executor" and i + 1 < len(args) and args[i + 1] == "local":
            skip = 1
            continue
        out.append(a)
    return "python -m core " + shlex.join(out)


def config_flags(cfg: TrainConfig | dict[str, Any]) -> list[str]:
    """The `runs new` flags that reproduce `cfg` (only the settings that differ from the defaults)."""
    cfg = TrainConfig.from_dict(dict(cfg)) if isinstance(cfg, dict) else cfg
    default = TrainConfig()
    flags = []
    for f in fields(TrainConfig):
        if f.name == "extra":
            continue
        value, base = getattr(cfg, f.name), getattr(default, f.name)
        if value == base and f.name not in ("dataset", "split"):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(base, bool):
            flags.append(flag if value else "--no-" + f.name.replace("_", "-"))
        elif isinstance(base, tuple):
            flags.append(f"{flag}={','.join(f'{v:g}' for v in value)}")  # a range: LOW,HIGH
        else:
            flags.append(f"{flag}={value}")
    return flags


def run_line(cfg: TrainConfig | dict[str, Any]) -> str:
    """`python -m core runs new ...` for one run's settings."""
    return cli_line(["runs", "new", *config_flags(cfg)])


def sweep_line(cfg: TrainConfig | dict[str, Any], grid: dict[str, list], seeds: list[int], parallel: int = 0) -> str:
    """`python -m core sweep new ...`: the base settings, the grid and the seeds."""
    args = ["sweep", "new", *config_flags(cfg)]
    args += [f"--grid={k}={','.join(str(v) for v in vals)}" for k, vals in grid.items()]
    args += ["--seeds", *[str(s) for s in seeds]] + ([f"--parallel={parallel}"] if parallel else [])
    return cli_line(args)


def cv_line(cfg: TrainConfig | dict[str, Any], folds: str, by: str, seeds: list[int], parallel: int = 0,
            detector: str = "") -> str:  # fmt: skip
    """`python -m core cv new ...`: the folds and the settings every fold's run trains with."""
    args = ["cv", "new", f"--folds={folds}", f"--by={by}", "--seeds", *[str(s) for s in seeds]]
    args += ([f"--parallel={parallel}"] if parallel else []) + ([f"--zero-shot={detector}"] if detector else [])
    return cli_line([*args, *config_flags(cfg)])


def study_line(cfg: Any) -> str:
    """`python -m core prompts optimise ...` for a prompt study's settings (those that differ from the defaults)."""
    from dataclasses import MISSING

    args = ["prompts", "optimise"]
    for f in fields(cfg):
        if f.name in ("extra", "shown"):
            continue
        value = getattr(cfg, f.name)
        if f.default is not MISSING and value == f.default and f.name not in ("dataset", "split"):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            args += [flag] if value else []
        else:
            args.append(f"{flag}={value}")
    return cli_line(args)
