"""The psychometric function and its maximum-likelihood fit, for many data sets at once.

ψ(x) = γ + (1 − γ − λ)·F((x − α)/β): guess rate γ, lapse rate λ within [0, λ_max], F a
logistic, cumulative normal or Gumbel. Batched Levenberg-damped Fisher scoring solves every
bootstrap replicate together as one array problem (see `psychometrics`).
"""

from __future__ import annotations

import numpy as np
from scipy import special

GUESS = 0.5
LAPSE_MAX = 0.1
FUNCTIONS = ("logistic", "normal", "weibull")


def cdf(kind: str, z: np.ndarray) -> np.ndarray:
    if kind == "logistic":
        return special.expit(z)
    if kind == "normal":
        return special.ndtr(z)
    if kind == "weibull":
        return -np.expm1(-np.exp(np.minimum(z, 50.0)))
    raise ValueError(f"function must be one of {FUNCTIONS}, got {kind!r}")


def pdf(kind: str, z: np.ndarray) -> np.ndarray:
    if kind == "logistic":
        f = special.expit(z)
        return f * (1 - f)
    if kind == "normal":
        return np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    zc = np.minimum(z, 50.0)
    return np.exp(zc - np.exp(zc))


def ppf(kind: str, q: np.ndarray | float) -> np.ndarray:
    if kind == "logistic":
        return special.logit(q)
    if kind == "normal":
        return special.ndtri(q)
    return np.log(-np.log1p(-np.asarray(q, float)))


def psi(kind: str, x: np.ndarray, alpha, beta, lapse, guess: float = GUESS) -> np.ndarray:
    """Probability correct at `x` (broadcasts over parameter arrays)."""
    return guess + (1 - guess - lapse) * cdf(kind, (x - alpha) / beta)


def unpack(theta: np.ndarray, lapse_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return theta[:, 0:1], np.exp(theta[:, 1:2]), np.clip(theta[:, 2:3], 0.0, lapse_max)


def _loglik(kind, x, k, n, theta, guess, lapse_max) -> np.ndarray:
    a, b, lam = unpack(theta, lapse_max)
    p = np.clip(psi(kind, x[None, :], a, b, lam, guess), 1e-12, 1 - 1e-12)
    return np.sum(k * np.log(p) + (n - k) * np.log1p(-p), axis=1)


def fisher_scoring(
    kind: str,
    x: np.ndarray,
    k: np.ndarray,
    n: np.ndarray,
    theta0: np.ndarray,
    guess: float = GUESS,
    lapse_max: float = LAPSE_MAX,
    iters: int = 300,
    log_beta_min: float = -12.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Maximise the binomial likelihood for B problems at once; returns (θ (B, 3), log-likelihood (B,)).

    θ = (α, log β, λ) with λ kept in [0, λ_max] and log β ≥ `log_beta_min` by projection; k and n
    are (B, levels) counts at x.
    """
    x = np.asarray(x, float)
    theta = np.array(theta0, float, copy=True)
    k, n = np.asarray(k, float), np.asarray(n, float)
    ll = _loglik(kind, x, k, n, theta, guess, lapse_max)
    mu = np.full(len(theta), 1e-3)
    quiet = np.zeros(len(theta), int)
    act = np.arange(len(theta))  # replicates still moving; converged ones drop out
    for _ in range(iters):
        th, kk, nn = theta[act], k[act], n[act]
        a, b, lam = unpack(th, lapse_max)
        z = (x[None, :] - a) / b
        F, f = cdf(kind, z), pdf(kind, z)
        p = np.clip(guess + (1 - guess - lam) * F, 1e-9, 1 - 1e-9)
        J = np.stack([-(1 - guess - lam) * f / b, -(1 - guess - lam) * f * z, -F], axis=2)
        w = nn / (p * (1 - p))
        g = np.einsum("bm,bmi->bi", (kk - nn * p) / (p * (1 - p)), J)
        info = np.einsum("bm,bmi,bmj->bij", w, J, J)
        m = mu[act]
        diag = np.einsum("bii->bi", info)[:, :, None] * np.eye(3)
        damp = info + m[:, None, None] * diag + (1e-8 * (1 + m))[:, None, None] * np.eye(3)
        step = np.linalg.solve(damp, np.nan_to_num(g)[:, :, None])[:, :, 0]
        trial = th + step
        trial[:, 1] = np.clip(trial[:, 1], log_beta_min, 8)
        trial[:, 2] = np.clip(trial[:, 2], 0.0, lapse_max)  # projected step: λ stays in its bounds
        ll_trial = _loglik(kind, x, kk, nn, trial, guess, lapse_max)
        better = ll_trial > ll[act]
        gain = np.where(better, ll_trial - ll[act], 0.0)
        theta[act[better]], ll[act[better]] = trial[better], ll_trial[better]
        mu[act] = np.clip(np.where(better, m / 3, m * 10), 1e-9, 1e9)
        quiet[act] = np.where(gain < 1e-10, quiet[act] + 1, 0)
        act = act[quiet[act] < 12]  # no gain for 12 rounds while damping grows 10× each: converged
        if not len(act):
            break
    return theta, ll


def starts_of(x: np.ndarray, beta_min: float = 0.0) -> np.ndarray:
    span = max(float(np.ptp(x)), 1e-6)
    grid = [
        (a, np.log(max(b, beta_min)), e)
        for a in np.linspace(x.min(), x.max(), 5)
        for b in (span / 20, span / 6, span / 2)
        for e in (0.0, 0.05)
    ]
    return np.array(grid)


STEP_FRACTION = 20  # the steepest slope fitted: β ≥ (smallest level spacing) / 20


def slope_floor(u: np.ndarray) -> float:
    """The smallest β a fit may take: a twentieth of the smallest spacing between tested levels.

    Why: a curve that jumps from chance to ceiling between two adjacent levels (a step) fits
    equally well with any steeper slope and any threshold inside that gap; left free, β runs to
    0 and every bootstrap replicate stays where it started, so the CI collapses to a point the
    data never chose. At this floor the curve rises from 55% to 95% of its range within a fifth of
    the gap, as steep as the levels can tell apart; a fit that reaches it is flagged as a step.
    """
    levels = np.unique(u)
    spacing = float(np.min(np.diff(levels))) if len(levels) > 1 else 1.0
    return spacing / STEP_FRACTION


def thresholds_of(kind: str, theta: np.ndarray, target: float, guess: float, lapse_max: float) -> np.ndarray:
    """x where ψ = target for each θ row (fit units); +inf where the curve never reaches it."""
    a, b, lam = (v[:, 0] for v in unpack(theta, lapse_max))
    q = (target - guess) / (1 - guess - lam)
    out = np.full(len(theta), np.inf)
    ok = (q > 0) & (q < 1)
    out[ok] = a[ok] + b[ok] * ppf(kind, q[ok])
    out[q <= 0] = -np.inf
    return out


def deviance(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> float:
    """Binomial deviance of the fit against the saturated model (one parameter per level)."""
    k, n, p = (np.asarray(v, float) for v in (k, n, p))
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = np.where(k > 0, k * np.log(k / (n * p)), 0.0)
        t2 = np.where(n - k > 0, (n - k) * np.log((n - k) / (n * (1 - p))), 0.0)
    return float(2 * np.sum(t1 + t2))


def bca_quantiles(
    boot: np.ndarray,
    estimate: float,
    jackknife: np.ndarray | None,
    alpha: float = 0.05,
    tails: np.ndarray | None = None,
) -> tuple[float, float]:
    """Bias-corrected and accelerated (BCa, Efron 1987) bootstrap bounds from replicates already drawn.

    A threshold is a nonlinear function of counts near a bounded lapse, so its bootstrap
    distribution can be biased and skewed against the estimate. z₀ (the share of replicates below
    the estimate) corrects the bias; the acceleration, from the jackknife over resampled units
    (leave one base clip out), corrects the skew. Replicates may be ±inf (the curve never reaches
    the target): they count in the ranks as the extremes they are. `tails`: the two nominal levels
    to correct (α/2, 1 − α/2 unless given; `expanded_levels` for the expanded BCa of the lab's default
    interval). Falls back to those levels' percentiles when every replicate lies on one side, or
    (a = 0) when the jackknife is missing or not finite.
    """
    boot = np.asarray(boot, float)
    below = (np.sum(boot < estimate) + 0.5 * np.sum(boot == estimate)) / len(boot)
    tails = np.array([alpha / 2, 1 - alpha / 2]) if tails is None else np.asarray(tails, float)
    # expanded levels for 2 units round to 1.0 (z = ∞, then ∞·0 in the formula); beyond 1e-9 a quantile is an extreme
    tails = np.clip(tails, 1e-9, 1 - 1e-9)
    z = special.ndtri(tails)
    if not 0 < below < 1:
        return tuple(np.quantile(boot, tails, method="inverted_cdf"))  # type: ignore[return-value]
    z0 = float(special.ndtri(below))
    acc = 0.0
    if jackknife is not None and len(jackknife) > 2 and np.all(np.isfinite(jackknife)):
        d = np.mean(jackknife) - np.asarray(jackknife, float)
        ss = float(np.sum(d**2))
        acc = float(np.sum(d**3) / (6 * ss**1.5)) if ss > 0 else 0.0
    levels = special.ndtr(z0 + (z0 + z) / (1 - acc * (z0 + z)))
    return tuple(np.quantile(boot, levels, method="inverted_cdf"))  # type: ignore[return-value]


def expanded_levels(units: int, alpha: float = 0.05) -> np.ndarray:
    """Quantile levels of Hesterberg's (2015) expanded percentile interval for `units` resampled units.

    Why: the percentile bootstrap is too narrow with few units, as z-intervals are (it estimates the
    spread with divisor n, and the normal quantile ignores that the spread is estimated). Taking
    the percentiles at Φ(−√(n/(n − 1))·t_{n−1, α/2}) instead of α/2 undoes both: 1.6% / 98.4% at 20
    units, 2.2% / 97.8% at 60, α/2 in the limit.
    """
    from scipy import stats as sps  # imported inside functions: importing this module stays cheap

    n = max(int(units), 2)
    z = np.sqrt(n / (n - 1)) * sps.t.ppf(1 - alpha / 2, n - 1)
    tail = float(special.ndtr(-z))
    return np.array([tail, 1 - tail])
