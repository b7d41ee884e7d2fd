"""Paired model comparison and uncertainty: McNemar, Wilson, clustered bootstrap, sample size.

Clips of one speaker or source are not independent, so intervals that resample clips as if
they were are too narrow. The lab's clustered intervals are cluster-robust t intervals
(`clustered_mean_ci`, `paired_clustered_diff`), which hold their level with few groups where a
percentile bootstrap over groups does not (benchmarks/bench_coverage.py); one detector's accuracy
and balanced accuracy add a beta-binomial posterior interval to Korn-Graubard's and report the
union (`interval_parts`: inside [0, 1], and at its level when accuracy is near 1 with ~10 groups);
`paired_bootstrap_diff` stays for the naive by-clip contrast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from core.analysis import beta_binomial


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
    if method == "midp":  # 2·P(X < k) + P(X = k): exactly 1 when b = c
        p = 1.0 if n == 0 else 2 * sps.binom.cdf(k, n, 0.5) - sps.binom.pmf(k, n, 0.5)
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


def groups_for_power(
    delta: float, discordant: float, icc: float, clips_per_group: float, alpha: float = 0.05, power: float = 0.8
) -> tuple[int, int]:
    """(clips, groups) at which the lab's clustered test of a paired accuracy difference reaches `power`.

    The test is the one Compare reports (`paired_clustered_diff`: CR1 over G groups, t with G − 1
    df), so its power is that of a t test with noncentrality δ / SE, where
    SE² = G/(G − 1) · σ² · DEFF / (G · m), σ² = ψ − δ² the per-clip variance of correct_A − correct_B
    (ψ the discordant rate), DEFF = 1 + (m − 1)·ICC. Why not n·DEFF from McNemar's normal formula:
    with few groups the t quantile and the G/(G − 1) factor cost power, and the plan fell short of
    its 80% in simulation (benchmarks/bench_coverage.py --power).
    """
    m = max(1.0, float(clips_per_group))
    sigma2 = max(float(discordant) - float(delta) ** 2, 1e-12)
    deff = 1.0 + (m - 1.0) * max(0.0, float(icc))
    g = np.arange(2, 20001, dtype=float)
    se = np.sqrt(g / (g - 1) * sigma2 * deff / (g * m))
    crit = sps.t.ppf(1 - alpha / 2, g - 1)
    ncp = abs(delta) / se
    reached = sps.nct.sf(crit, g - 1, ncp) + sps.nct.cdf(-crit, g - 1, ncp) >= power
    groups = int(g[np.argmax(reached)]) if reached.any() else int(g[-1])
    return int(np.ceil(groups * m)), groups


def _balanced_linearised(labels: np.ndarray, values: np.ndarray, groups: np.ndarray) -> tuple[float, float, float]:
    """(estimate, variance, degrees of freedom) of the mean of two per-class means of `values`.

    Linearised as `clustered_mean_ci` is: each clip contributes (value − mean of its class)
    / (2 · clips of its class); summed per group (a speaker or source moves whole) these give the
    CR1 variance of each class's mean, G_c/(G_c − 1) Σ e_g², and Satterthwaite's degrees of
    freedom for the two classes' groups (G − 1 when a group holds both classes). `values` are 0/1
    correctness for a balanced accuracy, or correct_A − correct_B for a paired difference of two.
    NaN variance when a class is missing or has a single group.
    """
    speech, v = np.asarray(labels) == "speech", np.asarray(values, float)
    if not speech.any() or speech.all():
        est = float(v[speech].mean() if speech.any() else v[~speech].mean()) if len(v) else float("nan")
        return est, float("nan"), float("nan")
    means = {True: v[speech].mean(), False: v[~speech].mean()}
    est = float((means[True] + means[False]) / 2)
    codes = np.unique(np.asarray(groups), return_inverse=True)[1]
    g = int(codes.max()) + 1
    infl = np.where(speech, (v - means[True]) / (2 * speech.sum()), (v - means[False]) / (2 * (~speech).sum()))
    e = np.bincount(codes, weights=infl, minlength=g)
    has_s = np.bincount(codes, weights=speech, minlength=g) > 0
    has_n = np.bincount(codes, weights=~speech, minlength=g) > 0
    if (has_s & has_n).any():  # a group with both classes: one pool of groups
        if g < 2:
            return est, float("nan"), float("nan")
        return est, g / (g - 1) * float(np.sum(e**2)), float(g - 1)
    gs, gn = int(has_s.sum()), int(has_n.sum())
    if gs < 2 or gn < 2:
        return est, float("nan"), float("nan")
    vs, vn = gs / (gs - 1) * float(np.sum(e[has_s] ** 2)), gn / (gn - 1) * float(np.sum(e[has_n] ** 2))
    var = vs + vn
    df = var**2 / (vs**2 / (gs - 1) + vn**2 / (gn - 1)) if var > 0 else float(gs + gn - 2)
    return est, var, float(df)


def balanced_accuracy_ci(
    labels: np.ndarray, correct: np.ndarray, groups: np.ndarray, alpha: float = 0.05
) -> tuple[float, float, float]:
    """Balanced accuracy (mean of the two recalls) with an interval clustered by group.

    The union of Korn-Graubard's (variance and degrees of freedom from `_balanced_linearised`) and
    the beta-binomial posterior's for the mean of the two classes' recalls over their groups (a
    group's clips of each class count towards that class): see `clustered_accuracy_ci` for why.
    Returns (estimate, lower, upper) inside [0, 1]; NaN bounds when a class is missing or has a
    single group: nothing can be said about a speaker you have only one of.
    """
    est, (lo, hi), (b_lo, b_hi) = interval_parts(correct, groups, labels, alpha)
    return est, min(lo, b_lo), max(hi, b_hi)


def paired_balanced_accuracy_diff(
    labels: np.ndarray, correct_a: np.ndarray, correct_b: np.ndarray, groups: np.ndarray, alpha: float = 0.05
) -> tuple[float, float, float]:
    """Balanced accuracy of A minus that of B on the same clips, with a cluster-robust t interval.

    The difference of two balanced accuracies is the balanced mean of correct_A − correct_B, so
    `_balanced_linearised` gives its variance over groups; est ± t_df · √V (a difference can be
    negative: no [0, 1] transform). Returns (difference, lower, upper).
    """
    d = np.asarray(correct_a, float) - np.asarray(correct_b, float)
    est, var, df = _balanced_linearised(labels, d, groups)
    if not np.isfinite(var):
        return est, float("nan"), float("nan")
    half = float(sps.t.ppf(1 - alpha / 2, df)) * np.sqrt(var)
    return est, est - half, est + half


def korn_graubard(est: float, var: float, n: int, df: float, alpha: float = 0.05) -> tuple[float, float]:
    """A clustered proportion's interval inside [0, 1]: Clopper-Pearson at the effective sample size.

    Korn & Graubard (1998), built for survey proportions with few clusters: the effective size
    n* = p(1 − p)/V (at most n: clustering never makes clips worth more than independent ones),
    scaled by (t_{n−1}/t_{df})² for the clusters' degrees of freedom, then the exact binomial
    interval for p·n* successes in n*. Unlike est ± t·√V it never leaves [0, 1] and does not
    collapse to a point when every clip is right (V = 0). Simulated coverage (ICC 0.3, 6–18
    clips a group, per-group accuracies Beta around the mean): benchmarks/bench_coverage.py --proportion.
    """
    if not (np.isfinite(est) and np.isfinite(var) and n > 1 and df > 0):
        return float("nan"), float("nan")
    n_eff = float(n) if var <= 0 or est <= 0 or est >= 1 else min(float(n), est * (1 - est) / var)
    n_df = n_eff * (float(sps.t.ppf(1 - alpha / 2, n - 1)) / float(sps.t.ppf(1 - alpha / 2, df))) ** 2
    x = est * n_df
    lo = float(sps.beta.ppf(alpha / 2, x, n_df - x + 1)) if x > 0 else 0.0
    hi = float(sps.beta.ppf(1 - alpha / 2, x + 1, n_df - x)) if x < n_df else 1.0
    return lo, hi


def clustered_accuracy_ci(correct: np.ndarray, groups: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
    """Accuracy (mean of 0/1 correctness) with an interval over groups that holds its level with few groups.

    The union of two intervals, each failing where the other holds: Korn-Graubard's (CR1 variance,
    G − 1 df; about the clip-weighted accuracy, whatever the groups look like) and the beta-binomial
    posterior's (`beta_binomial`: it keeps the spread between groups uncertain, so it does not
    narrow when the sample happens to hold no weak group, which is where Korn-Graubard missed:
    91.0% at a mean of 0.9 with 10 groups). Simulated coverage: benchmarks/bench_coverage.py
    --proportion; docs/methods.md. Returns (estimate, lower, upper) inside [0, 1].
    """
    est, (lo, hi), (b_lo, b_hi) = interval_parts(correct, groups, None, alpha)
    return est, min(lo, b_lo), max(hi, b_hi)


def interval_parts(
    correct: np.ndarray, groups: np.ndarray, labels: np.ndarray | None = None, alpha: float = 0.05
) -> tuple[float, tuple[float, float], tuple[float, float]]:
    """(estimate, Korn-Graubard interval, beta-binomial interval) of an accuracy, or of a balanced
    accuracy when `labels` are given; the lab reports their union (the benchmark reads each).

    NaN bounds with one group (accuracy), or when a class is missing or has one group (balanced).
    """
    ok = np.asarray(correct, float)
    codes = np.unique(np.asarray(groups), return_inverse=True)[1]
    g, n = (int(codes.max()) + 1 if len(codes) else 0), len(ok)
    nan = (float("nan"), float("nan"))
    if labels is None:
        est = float(ok.mean()) if n else float("nan")
        if g < 2:
            return est, nan, nan
        sums, sizes = np.bincount(codes, weights=ok, minlength=g), np.bincount(codes, minlength=g)
        var = g / (g - 1) * float(np.sum((sums - est * sizes) ** 2)) / n**2
        return est, korn_graubard(est, var, n, g - 1, alpha), beta_binomial.mean_interval(sums, sizes, alpha)
    est, var, df = _balanced_linearised(labels, ok, groups)
    if not np.isfinite(var):
        return est, nan, nan
    speech = np.asarray(labels) == "speech"
    parts = [
        (np.bincount(codes, weights=ok * m, minlength=g), np.bincount(codes, weights=m * 1.0, minlength=g))
        for m in (speech, ~speech)
    ]
    return est, korn_graubard(est, var, n, df, alpha), beta_binomial.average_interval(parts[0], parts[1], alpha)


def clustered_mean_ci(values: np.ndarray, groups: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
    """Mean of per-clip values (e.g. correct_A − correct_B) with a cluster-robust t interval.

    The mean is Σ values / n. Its variance is the CR1 sandwich over groups: with S_g the sum and
    n_g the size of group g, residuals e_g = S_g − mean · n_g and V = G/(G − 1) · Σ e_g² / n²;
    the interval is mean ± t_{G−1} √V. Why not the percentile bootstrap over groups: with few
    groups it is too narrow (it covered ~91% at 20 groups where 95% was promised); the t quantile
    with G − 1 degrees of freedom and the G/(G − 1) factor hold the level down to ~10 groups
    (benchmarks/bench_coverage.py). Returns (mean, lower, upper); NaN bounds with one group.
    """
    v = np.asarray(values, float)
    codes = np.unique(np.asarray(groups), return_inverse=True)[1]
    g = int(codes.max()) + 1 if len(codes) else 0
    n = len(v)
    est = float(v.mean()) if n else float("nan")
    if g < 2:
        return est, float("nan"), float("nan")
    sums, sizes = np.bincount(codes, weights=v, minlength=g), np.bincount(codes, minlength=g)
    var = g / (g - 1) * float(np.sum((sums - est * sizes) ** 2)) / n**2
    half = float(sps.t.ppf(1 - alpha / 2, g - 1)) * np.sqrt(var)
    return est, est - half, est + half


def paired_clustered_diff(
    correct_a: np.ndarray, correct_b: np.ndarray, groups: np.ndarray, alpha: float = 0.05
) -> tuple[float, float, float]:
    """Accuracy difference A − B with a cluster-robust t interval over groups (`clustered_mean_ci`)."""
    d = np.asarray(correct_a, float) - np.asarray(correct_b, float)
    return clustered_mean_ci(d, groups, alpha)


def clustered_ratio_ci(
    num: np.ndarray, den: np.ndarray, groups: np.ndarray, alpha: float = 0.05
) -> tuple[float, float, float]:
    """Ratio Σ num / Σ den (e.g. missed + false-alarm seconds over reference speech seconds) with a
    cluster-robust t interval: the same CR1 sandwich and G − 1 degrees of freedom as
    `clustered_mean_ci`, on the linearised residuals num − ratio · den (the delta method for a
    ratio estimator; with den = 1 it is `clustered_mean_ci`). NaN bounds with one group."""
    y, x = np.asarray(num, float), np.asarray(den, float)
    codes = np.unique(np.asarray(groups), return_inverse=True)[1]
    g = int(codes.max()) + 1 if len(codes) else 0
    total = float(x.sum())
    est = float(y.sum()) / total if total > 0 else float("nan")
    if g < 2 or not total > 0:
        return est, float("nan"), float("nan")
    e = np.bincount(codes, weights=y - est * x, minlength=g)
    var = g / (g - 1) * float(np.sum(e**2)) / total**2
    half = float(sps.t.ppf(1 - alpha / 2, g - 1)) * np.sqrt(var)
    return est, est - half, est + half
