"""Honest comparison of two detectors scored on the same clips, and aggregation over seeds.

Why: 24 clips from 3 groups could not tell the original models apart (McNemar p = 1.0), yet a
row bootstrap made the difference look settled. Here the interval treats groups as the unit
(a cluster-robust t interval, `stats.paired_clustered_diff`), the naive bootstrap over clips
is shown beside it, and the sample size needed to settle the question is computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.analysis import metrics, stats
from core.decision import correct
from core.errors import LabError


class CompareError(LabError):
    """The two tables cannot be paired."""


def pair(a: pd.DataFrame, b: pd.DataFrame, threshold_a: float = 0.0, threshold_b: float = 0.0) -> pd.DataFrame:
    """One row per clip scored by both: label, group, and each model's correctness."""
    cols = ["clip_id", "label", "group_id", "logit"]
    m = a[cols].merge(b[cols], on="clip_id", suffixes=("_a", "_b"))
    if m.empty:
        raise CompareError("the two tables share no clip_id: compare detectors scored on the same clips")
    bad = m[m["label_a"] != m["label_b"]]
    if len(bad):
        raise CompareError(
            f"clip {bad['clip_id'].iloc[0]!r} has label {bad['label_a'].iloc[0]!r} in one table "
            f"and {bad['label_b'].iloc[0]!r} in the other"
        )
    return pd.DataFrame(
        {
            "clip_id": m["clip_id"],
            "label": m["label_a"],
            "group_id": m["group_id_a"],
            "correct_a": correct(m["label_a"], m["logit_a"], threshold_a),
            "correct_b": correct(m["label_a"], m["logit_b"], threshold_b),
        }
    )


@dataclass
class Comparison:
    n_clips: int
    n_groups: int
    only_in_a: int
    only_in_b: int
    accuracy: dict[str, float]
    wilson: dict[str, tuple[float, float]]
    table: np.ndarray
    mcnemar: dict[str, float]
    diff: float
    ci_clustered: tuple[float, float]
    ci_naive: tuple[float, float]
    power: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["table"] = self.table.tolist()
        return d


def power_plan(paired: pd.DataFrame, delta: float | None = None, alpha: float = 0.05, power: float = 0.8) -> dict:
    """Clips and groups needed to detect `delta` (default: the observed difference) at α with `power`.

    The discordant rate is the observed one (floored at |delta|, since a difference needs at least
    that many discordant clips); groups come from the design effect of the per-clip difference.
    """
    a, b = paired["correct_a"].to_numpy(float), paired["correct_b"].to_numpy(float)
    observed = float(np.mean(a - b))
    delta = abs(observed) if delta is None else abs(delta)
    psi = float(np.mean(a != b))
    out: dict[str, Any] = {"delta": delta, "alpha": alpha, "power": power, "discordant_rate": psi}
    if delta == 0:
        out.update(clips=None, groups=None, note="no difference to detect (delta = 0)")
        return out
    n = stats.mcnemar_sample_size(min(1.0, max(psi, delta)), delta, alpha, power)
    sizes = paired.groupby("group_id").size()
    icc = stats.icc_oneway(a - b, paired["group_id"].to_numpy())
    clips, groups = stats.groups_for_power(delta, min(1.0, max(psi, delta)), icc, float(sizes.mean()), alpha, power)
    out.update(
        clips_if_independent=n,
        icc=icc,
        clips_per_group=float(sizes.mean()),
        clips=clips,
        groups=groups,
        note=f"{clips} clips in about {groups} groups of {sizes.mean():.0f} (ICC {icc:.2f}); "
        f"the current test set has {len(paired)} clips in {len(sizes)} groups",
    )
    return out


def compare(
    a: pd.DataFrame,
    b: pd.DataFrame,
    threshold_a: float = 0.0,
    threshold_b: float = 0.0,
    n_boot: int = 2000,
    delta: float | None = None,
    seed: int = 0,
) -> Comparison:
    """McNemar (exact, mid-p, χ² with continuity correction), Wilson per model, paired CIs, power."""
    p = pair(a, b, threshold_a, threshold_b)
    ca, cb = p["correct_a"].to_numpy(), p["correct_b"].to_numpy()
    n = len(p)
    _, lo_c, hi_c = stats.paired_clustered_diff(ca, cb, p["group_id"].to_numpy())
    d, lo_n, hi_n = stats.paired_bootstrap_diff(ca, cb, None, n_boot=n_boot, seed=seed)
    return Comparison(
        n_clips=n,
        n_groups=int(p["group_id"].nunique()),
        only_in_a=int(len(a) - n),
        only_in_b=int(len(b) - n),
        accuracy={"a": float(ca.mean()), "b": float(cb.mean())},
        wilson={"a": stats.wilson(int(ca.sum()), n), "b": stats.wilson(int(cb.sum()), n)},
        table=stats.contingency(ca, cb),
        mcnemar={m: stats.mcnemar(ca, cb, m).pvalue for m in ("exact", "midp", "chi2")},
        diff=d,
        ci_clustered=(lo_c, hi_c),
        ci_naive=(lo_n, hi_n),
        power=power_plan(p, delta),
        warnings=[w for w in [metrics.one_class_note(p["label"].to_numpy(), "the paired set")] if w],
    )


def aggregate(
    tables: dict[str, pd.DataFrame], seeds: dict[str, int] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-table metrics, mean ± std over the tables): runs of one configuration with different seeds."""
    if not tables:
        raise CompareError("nothing to aggregate: give at least one predictions table")
    rows = []
    for name, t in tables.items():
        seed = (seeds or {}).get(name, int(t["seed"].iloc[0]) if "seed" in t else -1)
        rows.append({"table": name, "seed": seed, **metrics.summary(t["label"].to_numpy(), t["logit"].to_numpy(float))})
    per = pd.DataFrame(rows)
    keys = [c for c in per.columns if c not in ("table", "seed", "n")]
    summary = pd.DataFrame(
        {
            "metric": keys,
            "mean": [per[k].mean() for k in keys],
            "std": [per[k].std(ddof=1) if len(per) > 1 else float("nan") for k in keys],
            "min": [per[k].min() for k in keys],
            "max": [per[k].max() for k in keys],
            "seeds": len(per),
        }
    )
    return per, summary


def verdict(res: Comparison, a: str = "A", b: str = "B") -> str:
    """One plain sentence: which detector is better, how sure, and how many more groups would settle it.

    "Better" needs the interval clustered by group to exclude 0; McNemar's p is quoted beside it.
    """
    lo, hi = res.ci_clustered
    d, p = res.diff, res.mcnemar["exact"]
    where = f"on {res.n_clips} clips in {res.n_groups} groups"
    if res.table[0, 1] + res.table[1, 0] == 0:
        return f"{a} and {b} are right and wrong on exactly the same clips {where}: nothing tells them apart."
    ci = f"95% CI clustered by group {100 * lo:+.1f} to {100 * hi:+.1f} points"
    if np.isfinite(lo) and np.isfinite(hi) and (lo > 0 or hi < 0):
        better, worse = (a, b) if d > 0 else (b, a)
        return (
            f"{better} is better than {worse}: {100 * abs(d):.1f} points more clips right ({ci}; McNemar exact "
            f"p = {p:.3g}) {where}."
        )
    pw = res.power
    if pw.get("groups"):
        more = max(0, int(pw["groups"]) - res.n_groups)
        settle = (
            f" Settling a difference of {100 * pw['delta']:.1f} points with 80% power needs about {pw['groups']} "
            f"groups ({pw['clips']} clips): {more} more groups than this test set has."
            if more
            else f" This test set is large enough to detect {100 * pw['delta']:.1f} points with 80% power: the "
            "difference is probably smaller."
        )
    else:
        settle = ""
    why = "" if np.isfinite(lo) and np.isfinite(hi) else " (too few groups for a clustered interval)"
    caveat = (
        " McNemar's test counts clips as independent; clips of one speaker or source are not, so its small p "
        "overstates the evidence."
        if p < 0.05
        else ""
    )
    return (
        f"No clear winner {where}: {a} − {b} = {100 * d:+.1f} points, {ci}{why} includes 0 (McNemar exact "
        f"p = {p:.3g}).{caveat}{settle}"
    )


def disagreements(a: pd.DataFrame, b: pd.DataFrame, threshold_a: float = 0.0, threshold_b: float = 0.0) -> pd.DataFrame:
    """The clips one detector gets right and the other wrong (McNemar's discordant pairs), most confident error first.

    Columns: clip_id, label, group_id, logit_a, logit_b, right ("A" or "B"); the clips behind the p-value.
    """
    p = pair(a, b, threshold_a, threshold_b)
    logits = a[["clip_id", "logit"]].merge(b[["clip_id", "logit"]], on="clip_id", suffixes=("_a", "_b"))
    d = p[p["correct_a"] != p["correct_b"]].merge(logits, on="clip_id")
    d["right"] = np.where(d["correct_a"], "A", "B")
    wrong_logit = np.where(d["correct_a"], d["logit_b"] - threshold_b, d["logit_a"] - threshold_a)
    d = d.assign(_conf=np.abs(wrong_logit)).sort_values("_conf", ascending=False, kind="stable")
    return d[["clip_id", "label", "group_id", "logit_a", "logit_b", "right"]].reset_index(drop=True)
