"""Calibration: temperature / Platt / isotonic fitted on dev, reliability data and the ECE family.

Methods share `fit(logits, y)` / `transform(logits)` (calibrated log-odds), so a page can
swap them. Fit on dev, apply to test: fitting and judging on one split flatters the result.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from core.decision import sigmoid

# sklearn is imported inside functions: importing this module stays cheap


def nll(y: np.ndarray, logits: np.ndarray) -> float:
    """Mean negative log-likelihood of the labels under p = sigmoid(logit), from the logits.

    log(1 + e^(−z)) for speech and log(1 + e^z) otherwise, by log-sum-exp (`np.logaddexp`), so a
    confidently wrong clip counts in full: no probability is clipped (clipping p at 1e-12 would
    cap one clip's loss at 27.6 nats however wrong it is).
    """
    z, y = np.asarray(logits, float), np.asarray(y, bool)
    return float(np.mean(np.logaddexp(0.0, np.where(y, -z, z))))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, float) - np.asarray(y, float)) ** 2))


class TemperatureScaling:
    """logit / T with T minimising dev NLL, searched on log T over [t_min, t_max], widened when needed.

    When the optimum lies at the edge of the search range the range is widened (×100 each side,
    up to [1e-6, 1e6]); if it is still at an edge, `bound_note` says why instead of the bound
    being passed off as a fitted value: at the top, the NLL keeps falling as p → 0.5 (the logits
    carry no usable signal, or the wrong one); at the bottom, it keeps falling as T → 0 (the dev
    clips are perfectly separated, so any T that sharpens them looks better).
    """

    WIDEST = (1e-6, 1e6)

    def __init__(self, t_min: float = 0.01, t_max: float = 100.0):
        self.t_min, self.t_max, self.temperature = t_min, t_max, 1.0
        self.bound_note = ""

    def fit(self, logits: np.ndarray, y: np.ndarray) -> TemperatureScaling:
        z, y = np.asarray(logits, float), np.asarray(y, float)
        lo, hi = np.log(self.t_min), np.log(self.t_max)
        while True:
            loss = lambda lt: nll(y, z / np.exp(lt))  # noqa: E731
            res = minimize_scalar(loss, bounds=(lo, hi), method="bounded", options={"xatol": 1e-7})
            # at a bound, or on a plateau that reaches it (perfect separation makes the NLL exactly 0 below some T)
            at_lo = res.x - lo < 1e-3 or loss(lo) <= res.fun + 1e-12
            at_hi = hi - res.x < 1e-3 or loss(hi) <= res.fun + 1e-12
            if at_lo and lo > np.log(self.WIDEST[0]):
                lo = max(lo - np.log(100), np.log(self.WIDEST[0]))
            elif at_hi and hi < np.log(self.WIDEST[1]):
                hi = min(hi + np.log(100), np.log(self.WIDEST[1]))
            else:
                break
        self.temperature = float(np.exp(res.x))
        self.bound_note = ""
        if at_hi:
            self.bound_note = (
                f"T reached the search bound {np.exp(hi):g}: the dev NLL keeps falling as p(speech) → 0.5, so "
                "the logits carry no usable calibration signal (the model is at chance or worse on dev)"
            )
        elif at_lo:
            self.bound_note = (
                f"T reached the search bound {np.exp(lo):g}: the dev clips are perfectly separated, so the NLL "
                "keeps falling as T → 0; the fitted T only reflects how few clips were seen"
            )
        return self

    def transform(self, logits: np.ndarray) -> np.ndarray:
        return np.asarray(logits, float) / self.temperature


class PlattScaling:
    """a·logit + b fitted by (nearly unregularised) logistic regression."""

    def fit(self, logits: np.ndarray, y: np.ndarray) -> PlattScaling:
        from sklearn.linear_model import LogisticRegression

        z, y = np.asarray(logits, float), np.asarray(y, int)
        self.model = LogisticRegression(C=1e6).fit(z[:, None], y)
        self.bound_note = ""
        if y.any() and not y.all() and z[y == 1].min() > z[y == 0].max():
            self.bound_note = (
                f"the dev clips are perfectly separated by the logit (speech ≥ {z[y == 1].min():.2f} > non-speech ≤ "
                f"{z[y == 0].max():.2f}): Platt's slope ({self.model.coef_[0, 0]:.3g}) is set by its regulariser, "
                "not by the data, and its probabilities are near 0 or 1; prefer temperature scaling or more dev clips"
            )
        return self

    def transform(self, logits: np.ndarray) -> np.ndarray:
        return self.model.decision_function(np.asarray(logits, float)[:, None])


class IsotonicCalibration:
    """Monotone map of the probability (sklearn IsotonicRegression), returned as clipped log-odds."""

    def fit(self, logits: np.ndarray, y: np.ndarray) -> IsotonicCalibration:
        from sklearn.isotonic import IsotonicRegression

        self.model = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
        self.model.fit(sigmoid(logits), np.asarray(y, float))
        return self

    def transform(self, logits: np.ndarray) -> np.ndarray:
        p = np.clip(self.model.predict(sigmoid(logits)), 1e-6, 1 - 1e-6)
        return np.log(p) - np.log1p(-p)


def bin_edges(p: np.ndarray, n_bins: int = 10, strategy: str = "uniform") -> np.ndarray:
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    if strategy == "quantile":
        return np.percentile(np.asarray(p, float), np.linspace(0, 1, n_bins + 1) * 100)
    raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")


def reliability(y: np.ndarray, p: np.ndarray, n_bins: int = 10, strategy: str = "uniform") -> pd.DataFrame:
    """Per non-empty bin: count, mean predicted probability, observed frequency of speech.

    Binning as `sklearn.calibration.calibration_curve` (same edges and bin assignment).
    """
    y, p = np.asarray(y, float), np.asarray(p, float)
    edges = bin_edges(p, n_bins, strategy)
    # as calibration_curve: a probability on an inner edge goes to the lower bin (side="left"),
    # against the same floating-point edges (np.linspace), so 0.2 and 0.3 land where sklearn puts them
    idx = np.searchsorted(edges[1:-1], p, side="left")
    rows = [
        {
            "bin": int(b),
            "lower": edges[b],
            "upper": edges[b + 1],
            "count": int(np.sum(idx == b)),
            "mean_predicted": float(p[idx == b].mean()),
            "fraction_positive": float(y[idx == b].mean()),
        }
        for b in np.unique(idx)
    ]
    return pd.DataFrame(rows)


def reliability_bands(
    y: np.ndarray,
    p: np.ndarray,
    n_bins: int = 10,
    strategy: str = "uniform",
    alpha: float = 0.05,
    min_count: int = 20,
) -> pd.DataFrame:
    """`reliability` plus a Wilson interval on each bin's observed frequency and a `few` flag.

    The band shows how far the observed frequency could move with this many clips. Wilson, not
    a bootstrap at the observed rate: a bin whose clips are all speech (or none) would get a
    zero-width band from resampling, claiming a certainty that 3 clips cannot give. Bins with
    fewer than `min_count` clips are flagged: their gap to the diagonal means little.
    """
    from core.analysis.stats import wilson

    r = reliability(y, p, n_bins, strategy)
    if r.empty:
        return r.assign(ci_lower=[], ci_upper=[], few=[])
    counts = r["count"].to_numpy()
    k = np.round(r["fraction_positive"].to_numpy() * counts).astype(int)
    lo, hi = np.array([wilson(int(a), int(n), alpha) for a, n in zip(k, counts)]).T
    return r.assign(ci_lower=lo, ci_upper=hi, few=counts < min_count)


METHODS = {"temperature": TemperatureScaling, "platt": PlattScaling, "isotonic": IsotonicCalibration}


def make_calibrator(method: str):
    """A fresh calibrator by name (temperature, platt or isotonic)."""
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {sorted(METHODS)}, got {method!r}")
    return METHODS[method]()


def describe(calibrator) -> dict[str, float]:
    """The fitted parameters worth showing (T for temperature, a and b for Platt)."""
    if isinstance(calibrator, TemperatureScaling):
        out: dict = {"temperature": calibrator.temperature}
        return {**out, "bound_note": calibrator.bound_note} if calibrator.bound_note else out
    if isinstance(calibrator, PlattScaling):
        return {"a": float(calibrator.model.coef_[0, 0]), "b": float(calibrator.model.intercept_[0])}
    return {"breakpoints": int(len(calibrator.model.X_thresholds_))}


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = 10, strategy: str = "uniform") -> float:
    """Expected calibration error: count-weighted |observed − predicted| over the bins."""
    r = reliability(y, p, n_bins, strategy)
    return float(np.sum(r["count"] * (r["fraction_positive"] - r["mean_predicted"]).abs()) / len(np.asarray(p)))


def mce(y: np.ndarray, p: np.ndarray, n_bins: int = 10, strategy: str = "uniform") -> float:
    """Maximum calibration error over non-empty bins."""
    r = reliability(y, p, n_bins, strategy)
    return float((r["fraction_positive"] - r["mean_predicted"]).abs().max())
