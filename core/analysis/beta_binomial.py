"""The posterior of a mean accuracy over groups under a beta-binomial model, for few groups.

Why: with 10–20 groups and an accuracy near 1, an interval built from the groups the test set
happens to hold (Korn–Graubard, the cluster-robust t) misses from above whenever no weak group was
drawn: the spread between groups looks small exactly when the estimate is too high. Here each
group's accuracy is drawn from a Beta with mean μ and intraclass correlation ρ; ρ is not estimated
but integrated over (uniform prior on [0, 1]), so ten groups that all look alike still leave room
for a weak eleventh. μ has Jeffreys' prior. The posterior is computed on a grid (logit-spaced in μ,
which resolves accuracies near 0 and 1), exactly: no sampling, the same answer every call.
`stats.clustered_accuracy_ci` and `stats.balanced_accuracy_ci` report the union of this interval
and Korn–Graubard's (docs/methods.md gives the coverage of each and of the union).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, expit

_LOGIT = np.linspace(-9.0, 9.0, 361)
MU = expit(_LOGIT)  # grid of the mean accuracy
RHO = (np.arange(100) + 0.5) / 100  # grid of the intraclass correlation (midpoints: uniform prior)
_KAPPA = (1 - RHO) / RHO  # a + b of the Beta
_A, _B = MU[:, None] * _KAPPA, (1 - MU[:, None]) * _KAPPA
_PRIOR = np.sqrt(MU * (1 - MU))  # Jeffreys' density times dμ/dlogit on the logit-spaced grid
_FINE = np.linspace(0.0, 1.0, 2001)  # uniform grid for averaging two posteriors


def mean_posterior(successes: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """Posterior mass of μ at each point of `MU`, from each group's (successes, trials).

    Groups with no trials carry no information and are dropped; equal (k, n) pairs are computed
    once, so the cost grows with the distinct pairs, not the groups.
    """
    k, n = np.asarray(successes, float), np.asarray(trials, float)
    keep = n > 0
    pairs, counts = np.unique(np.stack([k[keep], n[keep]], axis=1), axis=0, return_counts=True)
    loglik = -counts.sum() * betaln(_A, _B)
    for (kk, nn), c in zip(pairs, counts):
        loglik = loglik + c * betaln(kk + _A, nn - kk + _B)
    loglik -= loglik.max()
    mass = (np.exp(loglik) * _PRIOR[:, None]).sum(axis=1)
    return mass / mass.sum()


def _cdf_on(mass: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The posterior's CDF at `points`, each grid mass spread over its cell (piecewise linear)."""
    edges = np.concatenate([[0.0], (MU[1:] + MU[:-1]) / 2, [1.0]])
    return np.interp(points, edges, np.concatenate([[0.0], np.cumsum(mass)]))


def _quantiles(points: np.ndarray, cdf: np.ndarray, alpha: float) -> tuple[float, float]:
    keep = np.concatenate([[True], np.diff(cdf) > 0])  # strictly increasing for the inverse
    return float(np.interp(alpha / 2, cdf[keep], points[keep])), float(
        np.interp(1 - alpha / 2, cdf[keep], points[keep])
    )


def mean_interval(successes: np.ndarray, trials: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """Equal-tailed 1 − α credible interval of the mean accuracy over groups."""
    return _quantiles(_FINE, _cdf_on(mean_posterior(successes, trials), _FINE), alpha)


def average_interval(
    first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray], alpha: float = 0.05
) -> tuple[float, float]:
    """Interval of (μ₁ + μ₂)/2 for two independent sets of groups (a balanced accuracy: the mean of
    the speech groups' recall and the non-speech groups' recall), by convolving the two posteriors."""
    pmf = [np.diff(_cdf_on(mean_posterior(*part), _FINE), prepend=0.0) for part in (first, second)]
    total = np.convolve(pmf[0], pmf[1])  # mass of μ₁ + μ₂ on 0, 1/2000, …, 2
    points = np.linspace(0.0, 1.0, len(total))
    return _quantiles(points, np.cumsum(total) / total.sum(), alpha)
