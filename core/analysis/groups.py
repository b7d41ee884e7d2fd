"""How a detector does per held-out group, and across folds: where generalisation breaks.

Reads predictions tables (an out-of-fold table above all): accuracy per group with Wilson
intervals, sorted so the worst speakers and sources stand out, and the spread of a metric
across folds with a t interval over the folds (each fold is one draw of unseen groups).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from core.analysis.stats import wilson
from core.decision import correct


def per_group(table: pd.DataFrame, by: str = "group_id", threshold: float = 0.0) -> pd.DataFrame:
    """One row per group: label, clips, correct, accuracy with its Wilson 95% interval, worst first."""
    t = table.assign(correct=correct(table["label"], table["logit"], threshold))
    g = t.groupby(by).agg(
        label=("label", lambda s: s.mode().iloc[0]), clips=("correct", "size"), right=("correct", "sum")
    )
    ci = [wilson(int(k), int(n)) for k, n in zip(g["right"], g["clips"])]
    g = g.assign(accuracy=g["right"] / g["clips"], ci_lower=[c[0] for c in ci], ci_upper=[c[1] for c in ci])
    if "fold" in t:
        g["fold"] = t.groupby(by)["fold"].first()
    return g.reset_index().sort_values(["accuracy", by], kind="stable").reset_index(drop=True)


def across_folds(values: list[float], alpha: float = 0.05) -> dict[str, float]:
    """Mean, sample std and a t interval of a metric over folds (NaN folds, e.g. one class only, left out)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
    if len(v) == 0:
        return {
            "mean": float("nan"),
            "std": float("nan"),
            "ci_lower": float("nan"),
            "ci_upper": float("nan"),
            "folds": 0,
        }
    mean = float(v.mean())
    if len(v) < 2:
        return {"mean": mean, "std": float("nan"), "ci_lower": float("nan"), "ci_upper": float("nan"), "folds": 1}
    std = float(v.std(ddof=1))
    half = float(sps.t.ppf(1 - alpha / 2, len(v) - 1)) * std / np.sqrt(len(v))
    return {"mean": mean, "std": std, "ci_lower": mean - half, "ci_upper": mean + half, "folds": int(len(v))}


def per_fold(table: pd.DataFrame, threshold: float = 0.0) -> pd.DataFrame:
    """Metrics of each fold's held-out clips in an out-of-fold table (its `fold` column)."""
    from core.analysis.metrics import summary

    rows = []
    for fold, sub in table.groupby("fold", sort=True):
        m = summary(sub["label"].to_numpy(), sub["logit"].to_numpy(float), threshold=threshold)
        rows.append(
            {
                "fold": int(fold),
                "clips": len(sub),
                "groups": int(sub["group_id"].nunique()),
                "accuracy": m["accuracy"],
                "balanced_accuracy": m["balanced_accuracy"] if sub["label"].nunique() > 1 else float("nan"),
                "recall_speech": m["recall_speech"],
                "recall_nonspeech": m["recall_nonspeech"],
                "roc_auc": m["roc_auc"],
            }
        )
    return pd.DataFrame(rows)
