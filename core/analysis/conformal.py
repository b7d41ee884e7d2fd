"""Decide or abstain, with a guarantee fitted on dev: selective decisions with a controlled error
rate among decided clips, and conformal prediction sets with a coverage level.

Two targets, both fitted on dev scores and applied to test unchanged:

- **Error among decided clips ≤ α** (`fit_selective`): decide where the confidence
  max(p, 1 − p) reaches a threshold λ, abstain below it. λ is chosen by Learn-then-Test
  (Angelopoulos et al., 2021) with fixed-sequence testing: 100 thresholds from the strictest
  that could pass down to deciding every clip, each tested against "error among decided > α" by the exact binomial tail of its dev errors
  among the clips it decides; the search stops at the first it cannot reject at level δ. With
  probability at least 1 − δ over the dev draw, the chosen rule's error among decided test clips
  is at most α — for clips exchangeable with dev. `tests/test_conformal.py` checks the realised
  error over 500 random dev/test draws of a known distribution.
- **Prediction sets with coverage 1 − α** (`prediction_sets`): split conformal with the
  non-conformity 1 − p(label); a label is in the set when its p-value (#{dev scores ≥ s} + 1) /
  (n + 1) is at least α — crepes' `predict_set` without smoothing, equal on the same inputs
  (tested). Mondrian (class-conditional) sets calibrate each label on dev clips of that label,
  so each class gets its own coverage where the classes differ. A set of one label decides, the
  set of both abstains, an empty set says the clip is unlike every dev clip of either label.

Groups break exchangeability: clips of one speaker are alike, so dev's n clips carry less than
n clips' information. `design_effect` shrinks the dev count to an effective sample size
n / (1 + (m̄ − 1)·ICC) (Kish; m̄ the mean clips per group, ICC of the errors by group) before the
binomial test — the group-aware variant; the lab's splits already hold each group in one part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from core.errors import LabError


def _check(y: np.ndarray, p: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, float)
    if y.shape != p.shape or y.ndim != 1:
        raise LabError(f"{where}: labels and probabilities must be two vectors of one length, got {y.shape}, {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise LabError(f"{where}: probabilities must be finite and within [0, 1]")
    if not len(y):
        raise LabError(f"{where}: no clips")
    return y, p


def _alpha(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise LabError(f"α must lie strictly between 0 and 1, got {alpha}")
    return float(alpha)


# ---------------------------------------------------------------- prediction sets


def p_values(calibration: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Conformal p-values (#{calibration ≥ s} + 1) / (n + 1) of each score s (larger s: stranger)."""
    cal = np.sort(np.asarray(calibration, float))
    n = len(cal)
    ge = n - np.searchsorted(cal, np.asarray(scores, float), side="left")
    return (ge + 1) / (n + 1)


def prediction_sets(y_dev: np.ndarray, p_dev: np.ndarray, p_test: np.ndarray, alpha: float,
                    mondrian: bool = False) -> np.ndarray:  # fmt: skip
    """(n_test, 2) booleans: is speech, is non-speech in each test clip's set (coverage 1 − α)."""
    y, p = _check(y_dev, p_dev, "dev")
    alpha = _alpha(alpha)
    q = np.asarray(p_test, float)
    test_scores = np.column_stack([1 - q, q])  # non-conformity of "speech", of "non-speech"
    dev_scores = np.where(y, 1 - p, p)
    out = np.zeros((len(q), 2), bool)
    for k, is_speech in enumerate((True, False)):
        cal = dev_scores[y == is_speech] if mondrian else dev_scores
        if not len(cal):
            raise LabError(f"dev has no {'speech' if is_speech else 'non-speech'} clip to calibrate that label on")
        out[:, k] = p_values(cal, test_scores[:, k]) >= alpha
    return out


# ---------------------------------------------------------------- selective decisions


def confidence(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, float)
    return np.maximum(p, 1 - p)


def design_effect(errors: np.ndarray, groups: np.ndarray) -> float:
    """Kish's 1 + (m̄ − 1)·ICC of 0/1 errors by group (at least 1): how many clips count as one."""
    from core.analysis.stats import icc_oneway

    g = np.asarray(groups)
    sizes = pd.Series(g).value_counts().to_numpy()
    if len(sizes) < 2 or errors.std() == 0:
        return 1.0
    icc = icc_oneway(np.asarray(errors, float), g)
    return float(max(1.0, 1 + (sizes.mean() - 1) * max(0.0, icc)))


@dataclass(frozen=True)
class SelectiveRule:
    """Decide where max(p, 1 − p) ≥ `threshold` (answer p > 0.5), abstain below."""

    threshold: float
    alpha: float
    delta: float
    dev_decided: float  # fraction of dev clips decided
    dev_error: float  # error among decided dev clips
    n_dev: int
    effective_n: float

    def decided(self, p: np.ndarray) -> np.ndarray:
        return confidence(p) >= self.threshold


def fit_selective(y_dev: np.ndarray, p_dev: np.ndarray, alpha: float, delta: float = 0.1,
                  groups: np.ndarray | None = None) -> SelectiveRule:  # fmt: skip
    """The most permissive confidence threshold whose error among decided dev clips is shown ≤ α
    (fixed-sequence binomial tests at level δ); `groups`: count dev clips by effective sample size."""
    y, p = _check(y_dev, p_dev, "dev")
    alpha = _alpha(alpha)
    if not 0 < delta < 1:
        raise LabError(f"δ must lie strictly between 0 and 1, got {delta}")
    conf = confidence(p)
    wrong = (p > 0.5) != y
    deff = design_effect(wrong, groups) if groups is not None else 1.0
    order = np.argsort(-conf, kind="stable")
    c_sorted, w_sorted = conf[order], wrong[order]
    cum_err = np.cumsum(w_sorted)
    # Candidate thresholds, strictest first, fixed by the dev confidences alone (never the labels):
    # from the fewest decided clips that could ever pass (all right: (1 − α)^n ≤ δ) up to all, in
    # 100 steps. Starting lower would stop the fixed sequence at its first, hopeless, test.
    n_dev = len(c_sorted)
    n_min = int(np.ceil(np.log(delta) / np.log1p(-alpha) * deff))
    counts = np.unique(np.round(np.linspace(min(n_min, n_dev), n_dev, 100)).astype(int))
    thresholds = np.unique(c_sorted[counts - 1])[::-1]
    decided = n_dev - np.searchsorted(c_sorted[::-1], thresholds, side="left")  # clips with conf ≥ threshold
    n = decided / deff
    k = np.floor(cum_err[decided - 1] / deff + 1e-9)
    pvals = np.where(n >= 1, sps.binom.cdf(k, np.maximum(1, np.round(n)).astype(int), alpha), 1.0)
    failed = np.flatnonzero(pvals > delta)
    stop = failed[0] if len(failed) else len(thresholds)  # fixed sequence: every threshold before the first failure
    chosen = float(thresholds[stop - 1]) if stop > 0 else float(np.inf)
    dec = conf >= chosen
    err = float(wrong[dec].mean()) if dec.any() else float("nan")
    return SelectiveRule(chosen, alpha, delta, float(dec.mean()), err, len(y), len(y) / deff)


def risk_coverage(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """Error among decided clips against the fraction decided, deciding the most confident first
    (one row per distinct confidence): the curve every selective rule lies on."""
    y, p = _check(y, p, "table")
    conf = confidence(p)
    order = np.argsort(-conf, kind="stable")
    c = conf[order]
    wrong = ((p > 0.5) != y)[order]
    last = np.r_[np.flatnonzero(np.diff(c) != 0), len(c) - 1]
    decided = last + 1
    return pd.DataFrame({"threshold": c[last], "coverage": decided / len(c), "error": np.cumsum(wrong)[last] / decided})


def apply_selective(rule: SelectiveRule, y: np.ndarray, p: np.ndarray, groups: np.ndarray | None = None) -> dict:
    """On test: fraction decided, error among decided with a 95% interval (clustered by group when
    given, else Wilson), and which clips were set aside."""
    from core.analysis.stats import clustered_accuracy_ci, wilson

    y, p = _check(y, p, "test")
    dec = rule.decided(p)
    wrong = (p > 0.5) != y
    n, k = int(dec.sum()), int(wrong[dec].sum())
    if n == 0:
        lo, hi = float("nan"), float("nan")
    elif groups is not None and len(set(np.asarray(groups)[dec])) >= 2:
        _, a, b = clustered_accuracy_ci(wrong[dec], np.asarray(groups)[dec])
        lo, hi = max(0.0, a), min(1.0, b)
    else:
        lo, hi = wilson(k, n)
    return {"decided": float(dec.mean()), "n_decided": n, "error": k / n if n else float("nan"), "error_lo": lo,
            "error_hi": hi, "abstained": np.flatnonzero(~dec)}  # fmt: skip
