"""Decision thresholds on log-odds: sort once, then every threshold is a `searchsorted`.

Why: the Thresholds page recomputes the confusion matrix on every slider move, and must stay
fluid at 10^6 predictions; a full pass per move would not.

The decision is exactly `core.decision.decide`: speech where `logit / T > t`. Dividing a sorted
array by T > 0 keeps it sorted (IEEE division rounds monotonically), so the index divides the
sorted logits once per temperature and counts with `searchsorted(..., side="right")`: every clip,
ties on the boundary included, is decided as `decide` decides it. The ROC curve and its area do
not depend on T (dividing by T > 0 changes no ranking): they come from the raw logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.decision import decide


@dataclass
class ThresholdIndex:
    """Sorted log-odds of the speech and non-speech clips of one predictions table."""

    pos: np.ndarray
    neg: np.ndarray
    _scaled: dict = field(default_factory=dict, repr=False)  # T -> (pos / T, neg / T), the last T only

    @classmethod
    def build(cls, is_speech: np.ndarray, logits: np.ndarray) -> ThresholdIndex:
        is_speech = np.asarray(is_speech, bool)
        logits = np.asarray(logits, float)
        return cls(np.sort(logits[is_speech]), np.sort(logits[~is_speech]))

    def scaled(self, temperature: float) -> tuple[np.ndarray, np.ndarray]:
        """The sorted logits divided by T, computed once per temperature (a T move is O(n), a t move O(log n))."""
        if not (np.isfinite(temperature) and temperature > 0):
            raise ValueError(f"the temperature must be a positive number, got {temperature!r}")
        if temperature == 1.0:
            return self.pos, self.neg
        if temperature not in self._scaled:
            self._scaled.clear()
            self._scaled[temperature] = (self.pos / temperature, self.neg / temperature)
        return self._scaled[temperature]

    def confusion(self, thresholds: np.ndarray | float, temperature: float = 1.0) -> dict[str, np.ndarray]:
        """tp, fn, tn, fp for the decision `logit / temperature > threshold` (vectorised)."""
        pos, neg = self.scaled(temperature)
        t = np.asarray(thresholds, float)
        tp = len(pos) - np.searchsorted(pos, t, side="right")
        fp = len(neg) - np.searchsorted(neg, t, side="right")
        return {"tp": tp, "fn": len(pos) - tp, "tn": len(neg) - fp, "fp": fp}

    def metrics(self, thresholds: np.ndarray | float, temperature: float = 1.0) -> dict[str, np.ndarray]:
        c = self.confusion(thresholds, temperature)
        n_pos, n_neg = max(len(self.pos), 1), max(len(self.neg), 1)
        rec_s, rec_n = c["tp"] / n_pos, c["tn"] / n_neg
        return {
            **c,
            "accuracy": (c["tp"] + c["tn"]) / max(len(self.pos) + len(self.neg), 1),
            "recall_speech": rec_s,
            "recall_nonspeech": rec_n,
            "balanced_accuracy": (rec_s + rec_n) / 2,
            "youden_j": rec_s + rec_n - 1,
            "fpr": 1 - rec_n,
        }

    def best(self, criterion: str = "balanced_accuracy", temperature: float = 1.0) -> float:
        """The threshold on `logit / T` maximising `criterion` (balanced_accuracy or youden_j) over all cut points."""
        pos, neg = self.scaled(temperature)
        cuts = np.unique(np.concatenate([pos, neg]))
        candidates = np.concatenate([[cuts[0] - 1.0], (cuts[:-1] + cuts[1:]) / 2, [cuts[-1] + 1.0]])
        return float(candidates[int(np.argmax(self.metrics(candidates, temperature)[criterion]))])


def roc_curve(index: ThresholdIndex) -> dict[str, np.ndarray]:
    """False- and true-positive rates at every cut point of the raw log-odds, and the area under them.

    Independent of any temperature: the operating point of (t, T) lies on this curve. The area is
    the Mann–Whitney statistic (ties count half), which is what `roc_auc_score` computes.
    """
    cuts = np.unique(np.concatenate([index.pos, index.neg]))
    grid = np.concatenate([[-np.inf], cuts, [np.inf]])
    m = index.metrics(grid)
    return {"threshold": grid, "fpr": m["fpr"], "tpr": m["recall_speech"], "auc": roc_auc(index)}


def roc_auc(index: ThresholdIndex) -> float:
    """P(speech logit > non-speech logit) + ½ P(equal): the ROC area, from the sorted arrays in O(n log n)."""
    if not len(index.pos) or not len(index.neg):
        return float("nan")
    below = np.searchsorted(index.neg, index.pos, side="left")  # non-speech strictly below each speech clip
    ties = np.searchsorted(index.neg, index.pos, side="right") - below
    return float((below.sum() + 0.5 * ties.sum()) / (len(index.pos) * len(index.neg)))


def dev_to_test(
    dev_labels: np.ndarray,
    dev_logits: np.ndarray,
    test_labels: np.ndarray,
    test_logits: np.ndarray,
    temperature: float = 1.0,
) -> list[dict[str, float]]:
    """Thresholds on `logit / T` chosen on dev (default 0, max balanced accuracy, Youden's J) and what each does on test.

    Also reports the threshold that would be best *on test* — the one the original research
    reported — so the optimism of choosing on the data you judge on is visible next to the
    honest figure.
    """
    dev = ThresholdIndex.build(np.asarray(dev_labels) == "speech", dev_logits)
    test = ThresholdIndex.build(np.asarray(test_labels) == "speech", test_logits)
    choices = [
        ("default (log-odds 0)", "-", 0.0),
        ("max balanced accuracy", "dev", dev.best("balanced_accuracy", temperature)),
        ("Youden's J", "dev", dev.best("youden_j", temperature)),
        ("max balanced accuracy", "test (optimistic)", test.best("balanced_accuracy", temperature)),
    ]
    rows = []
    for rule, chosen_on, t in choices:
        d, s = dev.metrics(t, temperature), test.metrics(t, temperature)
        rows.append(
            {
                "rule": rule,
                "chosen on": chosen_on,
                "threshold (log-odds)": t,
                "dev balanced accuracy": float(d["balanced_accuracy"]),
                "test balanced accuracy": float(s["balanced_accuracy"]),
                "test accuracy": float(s["accuracy"]),
            }
        )
    return rows


def flipped(
    table: pd.DataFrame,
    threshold_from: float,
    threshold_to: float,
    temperature_from: float = 1.0,
    temperature_to: float = 1.0,
    limit: int | None = None,
) -> pd.DataFrame:
    """Clips whose decision changes between two rules (threshold, T) on `logit / T`, closest to the new threshold first.

    Why: moving a threshold trades clips, not just percentages; listing them (and whether each
    flip fixes or breaks the clip) makes the trade something one can listen to. `limit` keeps the
    first rows only (a page lists a few hundred of 10^6); `attrs` holds the totals: `n_flipped`
    and `n_fixed` (flips that made the decision right).
    """
    z = table["logit"].to_numpy(float)
    before = decide(z, threshold_from, temperature_from)
    after = decide(z, threshold_to, temperature_to)
    speech = (table["label"] == "speech").to_numpy()
    idx = np.flatnonzero(before != after)
    dist = np.abs(z[idx] / temperature_to - threshold_to)
    if limit is not None and len(idx) > limit:
        part = np.argpartition(dist, limit - 1)[:limit]
        idx, dist = idx[part], dist[part]
    idx = idx[np.argsort(dist, kind="stable")]
    cols = [c for c in ("clip_id", "label", "group_id", "duration_ms", "snr_db") if c in table]
    out = table.iloc[idx][cols].reset_index(drop=True)
    out["logit"] = z[idx]
    out["was"] = np.where(before[idx], "speech", "nonspeech")
    out["now"] = np.where(after[idx], "speech", "nonspeech")
    out["flip"] = np.where(after[idx] == speech[idx], "fixed", "broken")
    changed = before != after
    out.attrs.update(n_flipped=int(changed.sum()), n_fixed=int((changed & (after == speech)).sum()))
    return out


def thin_roc(roc: dict[str, np.ndarray], max_points: int = 2000) -> dict[str, np.ndarray]:
    """The same ROC with at most ~`max_points` points, evenly spaced along the curve, ends kept.

    For drawing only (the area is computed from every point): a 10^6-point curve looks the same
    and costs megabytes per redraw.
    """
    fpr, tpr = np.asarray(roc["fpr"]), np.asarray(roc["tpr"])
    if len(fpr) <= max_points:
        return roc
    along = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(fpr)) + np.abs(np.diff(tpr)))])
    marks = np.linspace(0, along[-1], max_points)
    keep = np.unique(np.concatenate([[0, len(fpr) - 1], np.searchsorted(along, marks).clip(0, len(fpr) - 1)]))
    return {**roc, "fpr": fpr[keep], "tpr": tpr[keep], "threshold": np.asarray(roc["threshold"])[keep]}
