"""`python -m core model ...`: the lab base model."""

from __future__ import annotations

import argparse

from core.cli.common import tqdm_progress


def cmd_build_base(args: argparse.Namespace) -> int:
    from core.detectors.lab_base import train_base_model
    from core.detectors.lab_model import base_model_dir

    folder = base_model_dir()
    if (folder / "config.json").exists() and not args.force:
        print(f"base model present: {folder}")
        return 0
    update, close = tqdm_progress("training the lab base model")
    try:
        train_base_model(folder, progress=update)
    finally:
        close()
    print(f"base model ready: {folder}")
    return 0


def register(top: argparse._SubParsersAction) -> None:
    """`model build-base`: the lab base model."""
    model = top.add_parser("model", help="the lab base model").add_subparsers(dest="cmd", required=True)
    mb = model.add_parser("build-base", help="train the lab base model from its recipe if missing (~1 min)")
    mb.add_argument("--force", action="store_true")
    mb.set_defaults(func=cmd_build_base)
