"""What several prompts scored on the same clips did: overall with clustered CIs, and by condition.

Reads predictions tables only, so any prompt's table (from Try prompts, a search, or the
Evaluate page) can be compared. Balanced accuracy is the score (the two classes are rarely
balanced in a subset of conditions), with a cluster-robust CI over speaker and source groups.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.analysis import calibration, metrics
from core.analysis.stats import balanced_accuracy_ci
from core.decision import correct, sigmoid
from core.prompts.subset import conditions

MIN_GROUPS = 5  # per class; below it a clustered CI rests on a handful of speakers or sources


def score(table: pd.DataFrame) -> dict[str, float]:
    """Balanced accuracy with its group-clustered 95% CI, accuracy, ROC-AUC and ECE of one table."""
    labels, z = table["label"].to_numpy(), table["logit"].to_numpy(float)
    est, lo, hi = balanced_accuracy_ci(labels, correct(labels, z), table["group_id"].to_numpy())
    m = metrics.summary(labels, z)
    return {
        "balanced_accuracy": est,
        "ci_lower": lo,
        "ci_upper": hi,
        "accuracy": m["accuracy"],
        "roc_auc": m["roc_auc"],
        "ece": calibration.ece(labels == "speech", sigmoid(z)),
        "clips": int(len(table)),
        "groups": int(table["group_id"].nunique()),
        # a clustered CI from fewer than MIN_GROUPS groups of a class cannot hold its level: say so
        "fewest_groups": int(table.groupby("label")["group_id"].nunique().min()),
    }


def summary(tables: dict[str, pd.DataFrame], answers: dict[str, tuple[str, str]] | None = None) -> pd.DataFrame:
    """One row per table: its prompt and answers, balanced accuracy [clustered 95% CI], ROC-AUC, ECE."""
    rows = []
    for name, t in tables.items():
        a = (answers or {}).get(name, ("", ""))
        rows.append({"table": name, "prompt": str(t["prompt"].iloc[0]), "speech": a[0], "nonspeech": a[1], **score(t)})
    return pd.DataFrame(rows)


def _levels(table: pd.DataFrame, col: str) -> pd.Series:
    v = table[col]
    if col == "duration_ms":
        return v.map(lambda x: f"{x:g} ms" if pd.notna(x) else "unknown")
    if col == "snr_db":
        return v.map(lambda x: f"{x:g} dB" if pd.notna(x) else "clean")
    return v.astype(object).where(v.notna(), "none").astype(str)


def by_condition(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Balanced accuracy per condition level (duration, SNR, noise, band, room) for every table.

    Long format: condition, level, table, balanced_accuracy, clips. A level where only one
    class occurs reports that class's recall (balanced accuracy of what is there).
    """
    rows = []
    first = next(iter(tables.values()))
    for col in conditions(first):
        for name, t in tables.items():
            ok = correct(t["label"], t["logit"])
            speech = (t["label"] == "speech").to_numpy()
            for level, idx in t.groupby(_levels(t, col), sort=False).groups.items():
                i = t.index.get_indexer(idx)
                recalls = [ok[i][cls].mean() for cls in (speech[i], ~speech[i]) if cls.any()]
                rows.append(
                    {
                        "condition": col,
                        "level": level,
                        "table": name,
                        "balanced_accuracy": float(np.mean(recalls)),
                        "clips": len(i),
                    }
                )
    return pd.DataFrame(rows, columns=["condition", "level", "table", "balanced_accuracy", "clips"])


def best_and_worst(long: pd.DataFrame) -> pd.DataFrame:
    """Per condition level: the best and the worst table (prompt) and the spread between them."""
    rows = []
    for (cond, level), sub in long.groupby(["condition", "level"], sort=False):
        best, worst = sub.loc[sub["balanced_accuracy"].idxmax()], sub.loc[sub["balanced_accuracy"].idxmin()]
        tie = best["balanced_accuracy"] == worst["balanced_accuracy"]
        rows.append(
            {
                "condition": cond,
                "level": level,
                "clips": int(best["clips"]),
                "best": "(all equal)" if tie else best["table"],
                "best_balanced_accuracy": best["balanced_accuracy"],
                "worst": "(all equal)" if tie else worst["table"],
                "worst_balanced_accuracy": worst["balanced_accuracy"],
                "spread": best["balanced_accuracy"] - worst["balanced_accuracy"],
            }
        )
    return pd.DataFrame(rows)
