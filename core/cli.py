"""`python -m core ...`: the command line mirror of the dashboard pages."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

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
    a.set_defaults(func=cmd_audit)
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
