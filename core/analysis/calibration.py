"""Calibration: temperature / Platt / isotonic fitted on dev, reliability data and the ECE family.

Methods share `fit(logits, y)` / `transform(logits)` (calibrated log-odds), so a page can
swap them. Fit on dev, apply to test: fitting and judging on one split flatters the result.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from core.decision import sigmoid


def nll(y: np.ndarray, p: np.ndarray, eps: float = 1e-12) -> float:
    p = np.clip(np.asarray(p, float), eps, 1 - eps)
    y = np.asarray(y, float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, float) - np.asarray(y, float)) ** 2))


class TemperatureScaling:
    """logit / T with T minimising dev NLL, searched on log T over [t_min, t_max]."""

    def __init__(self, t_min: float = 0.01, t_max: float = 100.0):
        self.t_min, self.t_max, self.temperature = t_min, t_max, 1.0

    def fit(self, logits: np.ndarray, y: np.ndarray) -> TemperatureScaling:
        z, y = np.asarray(logits, float), np.asarray(y, float)
        res = minimize_scalar(
            lambda lt: nll(y, sigmoid(z / np.exp(lt))),
            bounds=(np.log(self.t_min), np.log(self.t_max)),
            method="bounded",
            options={"xatol": 1e-6},
        )
        self.temperature = float(np.exp(res.x))
        return self

    def transform(self, logits: np.ndarray) -> np.ndarray:
        return np.asarray(logits, float) / self.temperature


class PlattScaling:
    """a·logit + b fitted by (nearly unregularised) logistic regression."""

    def fit(self, logits: np.ndarray, y: np.ndarray) -> PlattScaling:
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression(C=1e6).fit(np.asarray(logits, float)[:, None], np.asarray(y, int))
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
        return np.quantile(np.asarray(p, float), np.linspace(0, 1, n_bins + 1))
    raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")


def reliability(y: np.ndarray, p: np.ndarray, n_bins: int = 10, strategy: str = "uniform") -> pd.DataFrame:
    """Per non-empty bin: count, mean predicted probability, observed frequency of speech.

    Binning as `sklearn.calibration.calibration_curve` (same edges and bin assignment).
    """
    y, p = np.asarray(y, float), np.asarray(p, float)
    edges = bin_edges(p, n_bins, strategy)
    idx = np.searchsorted(edges[1:-1], p, side="right")
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
    n_boot: int = 1000,
    alpha: float = 0.05,
    min_count: int = 20,
    seed: int = 0,
) -> pd.DataFrame:
    """`reliability` plus a bootstrap band on each bin's observed frequency and a `few` flag.

    The band resamples the clips inside each bin (a binomial draw at the bin's observed rate),
    so it shows how far the observed frequency could move with this many clips. Bins with fewer
    than `min_count` clips are flagged: their gap to the diagonal means little.
    """
    r = reliability(y, p, n_bins, strategy)
    if r.empty:
        return r.assign(ci_lower=[], ci_upper=[], few=[])
    rng = np.random.default_rng(seed)
    counts = r["count"].to_numpy()
    draws = rng.binomial(counts[None, :], r["fraction_positive"].to_numpy()[None, :], size=(n_boot, len(r)))
    lo, hi = np.quantile(draws / counts[None, :], [alpha / 2, 1 - alpha / 2], axis=0)
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
        return {"temperature": calibrator.temperature}
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
