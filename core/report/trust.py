"""The study report's trust section: decide-or-abstain per detector (a rule fitted on dev, judged on
test) with risk–coverage curves on one set of axes, and label issues from out-of-fold tables."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from core.errors import LabError
from core.report.section import Section

ALPHA, DELTA = 0.05, 0.1


def abstain_rows(dataset: str, split: str, alpha: float = ALPHA, delta: float = DELTA):
    """Per detector with dev and test tables: the selective rule fitted on dev (dev counted by
    groups), applied to test; and every test table's risk–coverage curve."""
    from core.analysis import conformal
    from core.report.listing import scored_tables
    from core.scoring import predictions

    every = predictions.describe_tables()
    rows, curves = [], {}
    for r in scored_tables(every, dataset, split).itertuples():
        test, _ = predictions.load(r.path)
        name = predictions.display_name(r._asdict())
        yt, pt = (test["label"] == "speech").to_numpy(), test["p_speech"].to_numpy(float)
        try:
            curves[name] = conformal.risk_coverage(yt, pt)
        except LabError:
            continue
        dev_name = predictions.counterpart(r.table, "dev", every)
        if not dev_name:
            continue
        dev, _ = predictions.load(every.set_index("table").at[dev_name, "path"])
        yd, pdv = (dev["label"] == "speech").to_numpy(), dev["p_speech"].to_numpy(float)
        try:
            rule = conformal.fit_selective(yd, pdv, alpha, delta, groups=dev["group_id"].to_numpy())
        except LabError:
            continue
        res = conformal.apply_selective(rule, yt, pt, test["group_id"].to_numpy())
        rows.append({"detector": name, "threshold": rule.threshold, "effective_dev_clips": rule.effective_n,
                     "decided": res["decided"], "error_decided": res["error"], "error_ci_lower": res["error_lo"],
                     "error_ci_upper": res["error_hi"], "error_all": float(np.mean((pt > 0.5) != yt))})  # fmt: skip
    return pd.DataFrame(rows), curves


def label_issue_rows(dataset: str) -> tuple[pd.DataFrame, pd.DataFrame, dict | None, str]:
    """From the newest out-of-fold table of `dataset`: flagged clips (top 15), per-group quality
    (worst 10), planted recall where the dataset has planted flips, and the table's name."""
    from core.analysis.label_issues import find_label_issues, group_quality, planted_recall
    from core.data.datasets import load_dataset
    from core.data.planted_flips import planted_truth
    from core.scoring import predictions

    t = predictions.describe_tables()
    if t.empty or "part" not in t:
        return pd.DataFrame(), pd.DataFrame(), None, ""
    oof = t[(t["dataset"] == dataset) & (t["part"] == "oof")]
    if oof.empty:
        return pd.DataFrame(), pd.DataFrame(), None, ""
    r = oof.iloc[0]
    table, _ = predictions.load(r["path"])
    issues = find_label_issues(table)
    truth = planted_truth(load_dataset(dataset))
    planted = planted_recall(issues, truth["clip_id"]) if truth is not None else None
    cols = ["rank", "clip_id", "group_id", "label", "suggested", "p_speech", "label_quality"]
    return issues[issues["flagged"]][cols].head(15), group_quality(issues).head(10), planted, str(r["table"])


def trust_section(dataset: str, split: str) -> Section | None:
    """Decide-or-abstain and label issues (None when the study has neither dev/test pairs nor an
    out-of-fold table)."""
    from core.data import relabels
    from core.data.datasets import load_dataset
    from core.report.figures import risk_coverage

    rows, curves = abstain_rows(dataset, split)
    flagged, groups, planted, oof_name = label_issue_rows(dataset)
    if not curves and not oof_name:
        return None
    s = Section("Trust: decide or abstain, and label issues")
    if len(rows):
        s.text.append(
            f"Each detector's abstention rule is fitted on its dev table (Learn-then-Test, fixed-sequence binomial "
            f"tests: error among decided clips at most α = {ALPHA:g} with probability 1 − δ = {1 - DELTA:g}; dev "
            "clips counted by effective sample size, since clips of one speaker are alike) and applied to test "
            "unchanged. The test error among decided clips has a 95% interval clustered by group."
        )
        s.tables.append(("abstain", f"Decide or abstain on test (α = {ALPHA:g}, fitted on dev)", rows))
    if curves:
        s.figures.append(risk_coverage(curves, ALPHA))
    if oof_name:
        s.text.append(
            f"Label issues: cleanlab's confident learning on the out-of-fold table {html.escape(oof_name)} (every "
            f"clip scored by a model that never trained on its group); {len(flagged)} most likely wrong shown."
        )
        if planted:
            s.text.append(
                f"This dataset has planted flips: {planted['caught']} of {planted['planted']} are in the top "
                f"{planted['top']} of the ranking ({planted['recall_at_top']:.0%})."
            )
        s.tables.append(("label_issues", "Clips whose label is most likely wrong", flagged))
        s.tables.append(("label_quality", "Label quality by group (flagged rate, worst first)", groups))
    decided = relabels.current(load_dataset(dataset))
    if len(decided):
        n = int((decided["decision"] == "relabel").sum())
        s.text.append(f"Relabels: {n} clip(s) relabelled and {len(decided) - n} flag(s) dismissed (relabels.csv, "
                      "dated); tables scored with corrected labels say so in their sidecars.")  # fmt: skip
    return s
