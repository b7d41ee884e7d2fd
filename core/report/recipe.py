"""The recipe of a study: the `python -m core …` commands, in order, that rebuild its dataset, split,
audit, relabels, runs and every predictions table of the report ("a recipe for scaling: exact
commands to replicate").

Each dataset, split and table records the command line that made it when a command made it (the
dashboard's jobs are commands too); what a page made in-process (the embedded dataset's build
button, a split made on the Split page) is written from its saved settings instead.
"""

from __future__ import annotations

import shlex

from core.errors import LabError


def _q(*parts: str) -> str:
    return "python -m core " + " ".join(shlex.quote(str(p)) for p in parts)


def dataset_command(name: str, info: dict) -> str:
    if info.get("command"):
        return str(info["command"])
    kind = str(info.get("kind", ""))
    if kind == "embedded-default":
        return _q("data", "build-default", "--name", name)
    if kind == "real-voices":
        return _q("data", "build-voices", "--name", name)
    if kind.startswith("import:") and info.get("source"):
        return _q("data", "import", kind.removeprefix("import:"), info["source"], "--name", name)
    return f"# dataset {name!r} ({kind or 'kind not recorded'}) was not made by a command: copy its folder"


def split_command(dataset: str, split: str, info: dict) -> str:
    if info.get("command"):
        return str(info["command"])
    fr = info.get("fractions") or {}
    if not fr:
        return f"# split {split!r} was not made by a command: copy data/datasets/{dataset}/splits/{split}.*"
    return _q("data", "split", "--dataset", dataset, "--name", split, "--fractions",
              *(f"{float(fr[k]):g}" for k in ("train", "dev", "test")), "--seed", str(info.get("seed", 0)))  # fmt: skip


def table_command(meta: dict) -> str:
    from core.detectors import DETECTORS

    if meta.get("command"):
        return str(meta["command"])
    if str(meta.get("detector", "")) not in DETECTORS:
        return f"# this table was not made by a command ({meta.get('detector', 'unknown detector')}): copy its file"
    args = ["evaluate", "--dataset", meta.get("dataset", ""), "--split", meta.get("split_name", ""),
            "--part", meta.get("part", ""), "--detector", str(meta.get("detector", ""))]  # fmt: skip
    if meta.get("adapter"):
        args += ["--adapter", meta["adapter"]]
    return _q(*args)


def recipe(dataset: str, split: str) -> list[tuple[str, str]]:
    """[(what it makes, command)] in the order to run them on a fresh data folder."""
    from core.data import relabels
    from core.data.audit import load_audit
    from core.data.datasets import load_dataset
    from core.data.splits import list_splits, split_info
    from core.runs import registry
    from core.runs.commands import run_line
    from core.scoring import predictions

    ds = load_dataset(dataset)
    if split not in list_splits(ds):
        raise LabError(f"dataset {dataset!r} has no split {split!r}")
    steps = [(f"dataset {dataset}", dataset_command(dataset, ds.info))]
    steps.append((f"split {split}", split_command(dataset, split, split_info(ds, split))))
    if load_audit(ds, split) is not None:
        steps.append(("leakage audit", _q("data", "audit", "--dataset", dataset, "--split", split)))
    for r in relabels.current(ds).itertuples():
        extra = ("--to", r.label) if r.decision == "relabel" else ("--dismiss",)
        steps.append((f"relabel {r.clip_id}", _q("relabel", "--dataset", dataset, r.clip_id, *extra)))
    runs = registry.list_runs()
    if not runs.empty:
        for run_id in reversed(runs.loc[runs["state"] == "finished", "run"].tolist()):  # oldest first
            cfg = registry.config(run_id)
            if cfg.get("dataset") == dataset and cfg.get("split") == split:
                steps.append((f"run {run_id} (its tables run-{run_id}-dev/test)", run_line(cfg)))
    t = predictions.describe_tables()
    if not t.empty:
        mine = t[(t["dataset"] == dataset) & (t["split_name"] == split) & ~t["table"].str.startswith("run-")]
        for r in mine.sort_values("created").itertuples():  # in the order they were made
            meta = predictions.read_meta(r.path)
            steps.append((f"table {r.table}", table_command(meta)))
    steps.append(("this report", _q("report", "--dataset", dataset, "--split", split)))
    return steps


def recipe_section(dataset: str, split: str):
    """The report's last section: the commands that rebuild it, in order (also written as recipe.sh)."""
    import html

    from core.report.section import Section

    steps = recipe(dataset, split)
    s = Section("Recipe: the commands that rebuild this report")
    s.text.append(
        "Run these in order on a fresh data folder (LAB_DATA_DIR) to rebuild the dataset, split, audit, relabels, "
        "runs and every table in this report; runs and jobs started from the dashboard recorded these lines "
        "themselves. Also saved beside the report as recipe.sh."
    )
    s.text.append("<pre>" + html.escape(script(steps)) + "</pre>")
    return s


def script(steps: list[tuple[str, str]]) -> str:
    """The steps as a shell script, one comment line saying what each command makes."""
    lines = ["#!/usr/bin/env bash", "set -euo pipefail"]
    for what, cmd in steps:
        lines += [f"# {what}", cmd]
    return "\n".join(lines) + "\n"
