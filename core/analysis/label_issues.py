"""Label issues: clips whose label is probably wrong, ranked by cleanlab's confident learning from
out-of-sample scores, and label quality per group.

Why out-of-sample: a model scored on the clips it was trained on has learnt their labels, wrong
ones included, so it vouches for them. The lab's grouped cross-validation gives each clip a score
from a model that never saw its speaker or source (`core.runs.cv`, tables of part "oof"); a
zero-shot detector's table is out-of-sample too. Any other table is accepted with a warning.

The ranking is cleanlab's, not a home-made score: `cleanlab.filter.find_label_issues` (the
clips confident learning flags, by `filter_by`) ranked by `cleanlab.rank.get_label_quality_scores`
(self-confidence: the probability the scores give the clip's own label; lowest first).
Classes: 0 = non-speech, 1 = speech, probabilities (1 − p_speech, p_speech).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import LabError

# cleanlab is imported inside functions: importing this module stays cheap

LABELS = ("nonspeech", "speech")


def _inputs(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    for col in ("clip_id", "label", "p_speech"):
        if col not in table:
            raise LabError(f"a label-issue search needs column {col!r} in the table")
    bad = sorted(set(table["label"]) - set(LABELS))
    if bad:
        raise LabError(f"labels must be speech or nonspeech, found {bad[:3]}")
    p = table["p_speech"].to_numpy(float)
    if not np.isfinite(p).all():
        raise LabError(f"{int((~np.isfinite(p)).sum())} clip(s) have no finite p_speech")
    labels = (table["label"] == "speech").to_numpy(int)
    if len(set(labels)) < 2:
        raise LabError("both labels must occur to find label issues")
    return labels, np.column_stack([1 - p, p])


def find_label_issues(table: pd.DataFrame, filter_by: str = "prune_by_noise_rate") -> pd.DataFrame:
    """Every clip with its label quality, flag and rank (1 = most likely wrong among the flagged);
    sorted by rank, then quality. `suggested` is the label the scores favour."""
    from cleanlab.filter import find_label_issues as cl_find
    from cleanlab.rank import get_label_quality_scores

    labels, probs = _inputs(table)
    quality = get_label_quality_scores(labels, probs, method="self_confidence")
    # n_jobs=1: cleanlab otherwise forks worker processes, which can hang inside a server's (or a
    # test's) thread with torch loaded; two classes need no parallelism
    flagged = cl_find(labels, probs, filter_by=filter_by, return_indices_ranked_by="self_confidence", n_jobs=1)
    rank = np.zeros(len(labels), int)
    rank[flagged] = np.arange(1, len(flagged) + 1)
    out = table[[c for c in ("clip_id", "group_id", "label", "p_speech", "detector") if c in table]].copy()
    out["label_quality"] = quality
    out["flagged"] = rank > 0
    out["rank"] = np.where(rank > 0, rank, np.nan)
    out["suggested"] = np.where(probs[:, 1] > 0.5, "speech", "nonspeech")
    return out.sort_values(["rank", "label_quality"], na_position="last", kind="stable").reset_index(drop=True)


def group_quality(issues: pd.DataFrame) -> pd.DataFrame:
    """Per group: clips, flagged clips, the flagged rate and its ratio to the overall rate, worst first."""
    if "group_id" not in issues:
        raise LabError("the table has no group_id column")
    overall = issues["flagged"].mean() or np.nan
    g = issues.groupby("group_id").agg(clips=("clip_id", "size"), flagged=("flagged", "sum"),
                                       mean_quality=("label_quality", "mean"))  # fmt: skip
    g["flagged_rate"] = g["flagged"] / g["clips"]
    g["times_overall"] = g["flagged_rate"] / overall
    return g.sort_values(["flagged_rate", "clips"], ascending=[False, False]).reset_index()


def planted_recall(issues: pd.DataFrame, flipped_ids: set[str] | list[str], factor: float = 2.0) -> dict[str, float]:
    """How many known-wrong labels the ranking puts in its top `factor` × their count: the check of
    a label-issue search on a dataset with planted flips (core.data.planted_flips)."""
    flipped = set(flipped_ids)
    present = flipped & set(issues["clip_id"])
    if not present:
        raise LabError("none of the planted flips is in this table")
    top = int(round(factor * len(present)))
    caught = len(present & set(issues["clip_id"].head(top)))
    flagged = set(issues.loc[issues["flagged"], "clip_id"])
    return {"planted": len(present), "top": top, "caught": caught, "recall_at_top": caught / len(present),
            "flagged": len(flagged), "flag_precision": len(flagged & present) / max(1, len(flagged)),
            "flag_recall": len(flagged & present) / len(present)}  # fmt: skip


def flips_the_scores_can_reveal(table: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    """Per planted flip (clip_id index): whether the scores side with its true label. A flip whose
    clip the detector gets wrong anyway looks consistent with its wrong label: no method reading
    these scores can find it, so recall among the revealable ones measures the ranking itself."""
    t = table.set_index("clip_id").loc[truth["clip_id"]]
    return pd.Series((t["p_speech"] > 0.5).to_numpy() == (truth["true_label"] == "speech").to_numpy(),
                     index=truth["clip_id"].to_numpy())  # fmt: skip
