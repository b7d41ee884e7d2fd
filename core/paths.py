"""Where the lab keeps things: the checkout, the data folder and the results folder.

Shared by every stage, so it depends on nothing else in the lab. Environment variables move
the folders: $LAB_DATA_DIR (datasets) and $LAB_RESULTS_DIR (predictions, runs, jobs).
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The checkout: the folder holding `core/`, `models/` and, by default, `data/` and `results/`."""
    return Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """Where datasets live: $LAB_DATA_DIR, else `data/` in the checkout."""
    return Path(os.environ.get("LAB_DATA_DIR") or repo_root() / "data")


def results_root() -> Path:
    """$LAB_RESULTS_DIR, else `results/` beside `data/` ($LAB_DATA_DIR's parent) or in the checkout."""
    if os.environ.get("LAB_RESULTS_DIR"):
        return Path(os.environ["LAB_RESULTS_DIR"])
    if os.environ.get("LAB_DATA_DIR"):
        return data_root() / "results"
    return repo_root() / "results"


COMMAND_ENV = "LAB_COMMAND_LINE"  # set by `python -m core` (core.cli.main) while a command runs


def command_line() -> str | None:
    """The `python -m core …` line this process is running, for what it writes to record how it was
    made (None when no command made it: a page's in-process work)."""
    return os.environ.get(COMMAND_ENV) or None
