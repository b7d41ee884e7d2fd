"""`report`: a study written out as one self-contained HTML file, its tables as CSV and LaTeX."""

from __future__ import annotations

import argparse


def cmd_report(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.report.study import write_report

    with tqdm(total=100, unit="%", desc="report") as bar:

        def progress(frac: float, msg: str) -> None:
            bar.set_postfix_str(msg)
            bar.update(int(100 * frac) - bar.n)

        path = write_report(args.dataset, args.split, args.out or None, progress)
    print(f"wrote {path} (tables as CSV and LaTeX in {path.parent / 'tables'})")
    return 0


def register(top: argparse._SubParsersAction) -> None:
    r = top.add_parser(
        "report",
        help="write a study report (HTML: split and audit, runs, calibration, comparisons, psychometric "
        "thresholds, worst clips) and every table as CSV and LaTeX",
    )
    r.add_argument("--dataset", default="default")
    r.add_argument("--split", required=True)
    r.add_argument("--out", default="", help="folder (default results/reports/<dataset>-<split>)")
    r.add_argument("--job-dir", default="", help=argparse.SUPPRESS)
    r.set_defaults(func=cmd_report)
