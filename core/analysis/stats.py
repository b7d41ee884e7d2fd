"""Paired model comparison and uncertainty: McNemar, Wilson, clustered bootstrap, sample size.

Clips of one speaker or source are not independent, so intervals that resample clips as if
they were are too narrow; `paired_bootstrap_diff` resamples groups when given them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class McNemarResult:
    statistic: float
    pvalue: float
    table: np.ndarray  # [[both right, only A right], [only B right, both wrong]]
    method: str


def contingency(correct_a: np.ndarray, correct_b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape:
        raise ValueError(f"paired correctness vectors differ in length: {a.shape} vs {b.shape}")
    return np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray, method: str = "exact") -> McNemarResult:
    """McNemar's test on paired correctness.

    method: "exact" (two-sided binomial on the discordant pairs, as statsmodels exact=True),
    "midp" (exact p minus the point probability, less conservative), or "chi2" (with
    continuity correction, as statsmodels exact=False, correction=True).
    """
    table = contingency(correct_a, correct_b)
    b, c = int(table[0, 1]), int(table[1, 0])
    n = b + c
    if method == "chi2":
        stat = 0.0 if n == 0 else (abs(b - c) - 1) ** 2 / n
        return McNemarResult(float(stat), float(sps.chi2.sf(stat, 1)) if n else 1.0, table, method)
    k = min(b, c)
    p_exact = 1.0 if n == 0 else min(1.0, 2 * sps.binom.cdf(k, n, 0.5))
    if method == "exact":
        return McNemarResult(float(k), float(p_exact), table, method)
    if method == "midp":
        p = 1.0 if n == 0 else p_exact - (sps.binom.pmf(k, n, 0.5) if b != c else 0.5 * sps.binom.pmf(k, n, 0.5))
        return McNemarResult(float(k), float(min(1.0, p)), table, method)
    raise ValueError(f"method must be exact, midp or chi2, got {method!r}")


def wilson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials."""
    if n == 0:
        return (0.0, 1.0)
    z = sps.norm.ppf(1 - alpha / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (float(centre - half), float(centre + half))


def paired_bootstrap_diff(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    groups: np.ndarray | None = None,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Accuracy difference A − B with a percentile bootstrap CI; resamples whole groups if given.

    Returns (difference, lower, upper).
    """
    a, b = np.asarray(correct_a, float), np.asarray(correct_b, float)
    d = a - b
    rng = np.random.default_rng(seed)
    if groups is None:
        idx = rng.integers(0, len(d), size=(n_boot, len(d)))
        boots = d[idx].mean(axis=1)
    else:
        codes = np.unique(np.asarray(groups), return_inverse=True)[1]
        n_groups = codes.max() + 1
        sums = np.bincount(codes, weights=d, minlength=n_groups)
        counts = np.bincount(codes, minlength=n_groups)
        pick = rng.integers(0, n_groups, size=(n_boot, n_groups))
        boots = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return float(d.mean()), float(lo), float(hi)


def mcnemar_sample_size(p_discordant: float, delta: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Paired clips needed to detect an accuracy difference `delta` with McNemar's test.

    Connor (1987): n = [z_{1−α/2}·√ψ + z_{power}·√(ψ − δ²)]² / δ², with ψ the discordant rate.
    The power is that of the uncorrected χ² test; the exact and continuity-corrected tests are
    more conservative (about 0.74 instead of 0.80 at ψ = 0.2, δ = 0.1), so round up generously.
    """
    if not 0 < abs(delta) <= p_discordant <= 1:
        raise ValueError("need 0 < |delta| <= p_discordant <= 1")
    za, zb = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf(power)
    return int(np.ceil((za * np.sqrt(p_discordant) + zb * np.sqrt(p_discordant - delta**2)) ** 2 / delta**2))


def icc_oneway(values: np.ndarray, groups: np.ndarray) -> float:
    """Intra-class correlation of `values` within `groups` (one-way ANOVA estimator, floored at 0).

    Used for the design effect: clips of one speaker tend to be right or wrong together.
    """
    v = np.asarray(values, float)
    codes = np.unique(np.asarray(groups), return_inverse=True)[1]
    k, n = codes.max() + 1, len(v)
    if k < 2 or n <= k:
        return 0.0
    sizes = np.bincount(codes, minlength=k)
    means = np.bincount(codes, weights=v, minlength=k) / sizes
    ms_between = np.sum(sizes * (means - v.mean()) ** 2) / (k - 1)
    ms_within = np.sum((v - means[codes]) ** 2) / (n - k)
    m0 = (n - np.sum(sizes**2) / n) / (k - 1)
    denom = ms_between + (m0 - 1) * ms_within
    return float(max(0.0, (ms_between - ms_within) / denom)) if denom > 0 else 0.0


def groups_needed(n_clips: int, clips_per_group: float, icc: float) -> tuple[int, int]:
    """(clips, groups) once clustering is paid for: n · DEFF, with DEFF = 1 + (m − 1)·ICC."""
    m = max(1.0, float(clips_per_group))
    n = int(np.ceil(n_clips * (1 + (m - 1) * max(0.0, icc))))
    return n, int(np.ceil(n / m))


def balanced_accuracy_ci(
    labels: np.ndarray,
    correct: np.ndarray,
    groups: np.ndarray,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Balanced accuracy (mean of the two recalls) with a percentile CI that resamples groups.

    Groups (speakers, sources) are resampled with replacement within their label (a group's
    majority label), so each replicate keeps both classes and every clip of a group moves with
    it: clips of one speaker are right or wrong together, and a CI that resampled clips would
    be too narrow. Returns (estimate, lower, upper); NaN bounds when a class is missing.
    """
    labels, ok = np.asarray(labels) == "speech", np.asarray(correct, bool)
    codes = np.unique(np.asarray(groups), return_inverse=True)[1]
    g = codes.max() + 1 if len(codes) else 0
    # per group: right speech, all speech, right non-speech, all non-speech
    counts = np.stack(
        [
            np.bincount(codes, weights=ok & labels, minlength=g),
            np.bincount(codes, weights=labels, minlength=g),
            np.bincount(codes, weights=ok & ~labels, minlength=g),
            np.bincount(codes, weights=~labels, minlength=g),
        ],
        axis=1,
    )

    def bacc(c: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (c[..., 0] / c[..., 1] + c[..., 2] / c[..., 3]) / 2

    est = float(bacc(counts.sum(0)))
    if not labels.any() or labels.all():
        return est, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    weights = np.zeros((n_boot, g))
    speech_groups = counts[:, 1] >= counts[:, 3]
    for members in (np.flatnonzero(speech_groups), np.flatnonzero(~speech_groups)):
        if len(members):
            pick = members[rng.integers(0, len(members), size=(n_boot, len(members)))]
            np.add.at(weights, (np.arange(n_boot)[:, None], pick), 1.0)
    boots = bacc(weights @ counts)
    boots = boots[np.isfinite(boots)]
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2]) if len(boots) else (np.nan, np.nan)
    return est, float(lo), float(hi)
