"""Psychometric functions fitted by maximum likelihood, thresholds with bootstrap CIs, and a GLM.

ψ(x) = γ + (1 − γ − λ)·F((x − α)/β): guess rate γ = 0.5 for the balanced two-class task,
lapse rate λ fitted within [0, λ_max], F a logistic, cumulative normal or Gumbel (a Weibull
in log units — durations are fitted on log10 ms, so "weibull" is the classic Weibull there).
The likelihood is binomial over the counts at each level.

Why batched Fisher scoring rather than a generic optimiser per fit: a threshold's bootstrap
needs 1,000 refits, which must take well under 2 s; all replicates are solved together as
one array problem (Levenberg-damped Fisher scoring), warm-started from the point estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from core.analysis.psychometric_functions import (
    FUNCTIONS,
    GUESS,
    LAPSE_MAX,
    bca_quantiles,
    deviance,
    expanded_levels,
    fisher_scoring,
    psi,
    slope_floor,
    starts_of,
    thresholds_of,
    unpack,
)

# statsmodels is imported inside functions: importing this module stays cheap

AXES = {"duration_ms": "duration (ms)", "snr_db": "SNR (dB)"}
CI_METHODS = ("union", "expanded", "bca", "percentile")


@dataclass
class Fit:
    """One fitted curve, its threshold with a bootstrap CI, and goodness of fit."""

    function: str
    axis: str
    levels: np.ndarray  # in fit units (log10 ms for duration)
    k: np.ndarray
    n: np.ndarray
    alpha: float
    beta: float
    lapse: float
    guess: float
    loglik: float
    deviance: float
    df: int
    p_deviance: float
    target: float
    threshold: float  # natural units (ms, dB); NaN when it lies outside the tested range (see `bound`)
    ci: tuple[float, float]  # within the tested range; a side listed in `ci_open` extends beyond it
    bound: str | None  # "> 1000 ms (not reached in the tested range)" when the threshold lies outside it
    n_boot: int
    boot_method: str
    bound_side: str | None = None  # "above" / "below" the tested range
    bound_value: float | None = None  # the tested level it lies beyond
    ci_open: tuple[str, ...] = ()  # "lower" / "upper": that CI bound lies beyond the tested range
    step: bool = False  # the curve is a step between two levels: the slope is at its floor
    extra: dict[str, Any] = field(default_factory=dict)

    def curve(self, num: int = 200) -> tuple[np.ndarray, np.ndarray]:
        """The fitted ψ over the tested range (x in natural units)."""
        u = np.linspace(self.levels.min(), self.levels.max(), num)
        return to_natural(self.axis, u), psi(self.function, u, self.alpha, self.beta, self.lapse, self.guess)

    def label(self) -> str:
        unit = "ms" if self.axis == "duration_ms" else "dB"
        name = ("DT" if self.axis == "duration_ms" else "SNR-") + f"{self.target * 100:g}"
        if self.bound:
            return f"{name} {self.bound}"
        lo, hi = self.ci
        lo_s = f"< {_fmt(lo)}" if "lower" in self.ci_open else _fmt(lo)
        hi_s = f"> {_fmt(hi)}" if "upper" in self.ci_open else _fmt(hi)
        text = f"{name} = {self.threshold:.3g} {unit} [95% CI {lo_s}, {hi_s}]"
        if self.step:
            text += f" (a step between {_fmt(lo)} and {_fmt(hi)} {unit}: test levels in between to place it)"
        return text

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("levels", "k", "n")}
        d["levels"] = to_natural(self.axis, self.levels).tolist()
        d["k"], d["n"] = self.k.tolist(), self.n.tolist()
        # JSON has no NaN: a threshold outside the range (or an untestable p) is null, and `bound` says why
        nan_none = lambda v: None if isinstance(v, float) and not np.isfinite(v) else v  # noqa: E731
        d["ci"] = [nan_none(v) for v in self.ci]
        d["threshold"], d["p_deviance"] = nan_none(self.threshold), nan_none(self.p_deviance)
        d["ci_open"] = list(self.ci_open)
        return d


def _fmt(v: float) -> str:
    return f"{v:.3g}" if np.isfinite(v) else ("+∞" if v > 0 else "−∞")


def to_fit_units(axis: str, v: np.ndarray) -> np.ndarray:
    return np.log10(np.asarray(v, float)) if axis == "duration_ms" else np.asarray(v, float)


def to_natural(axis: str, u: np.ndarray) -> np.ndarray:
    if axis != "duration_ms":
        return np.asarray(u, float)
    with np.errstate(over="ignore"):
        return 10 ** np.asarray(u, float)


# long: one fit read as one recipe: starts, fit, bootstrap, then the bound and step cases it reports
def fit_counts(
    x: np.ndarray,
    k_units: np.ndarray,
    n_units: np.ndarray,
    axis: str,
    function: str = "logistic",
    target: float = 0.75,
    n_boot: int = 1000,
    boot: str = "nonparametric",
    guess: float = GUESS,
    lapse_max: float = LAPSE_MAX,
    seed: int = 0,
    ci_method: str = "union",
) -> Fit:
    """Fit ψ to counts per resampling unit (base clip) × level, with a bootstrap CI on the threshold.

    x: levels in natural units (ms or dB); k_units, n_units: (units, levels) correct and total
    counts. The nonparametric bootstrap resamples units (base clips: all conditions of one clip
    move together); the parametric one draws binomial counts from the fitted curve. The CI
    ("union") reaches as far on each side as either Hesterberg's expanded percentile interval
    (`expanded_levels`: the percentile bootstrap runs narrow with few base clips) or the BCa
    interval at the same expanded levels (`bca_quantiles`: corrects the estimate's median bias and
    skew, which the percentile ignores; its jackknife acceleration is noisy with few clips, which the
    union does not let shorten it). Why: each alone fell below 93% in some simulated design with 20
    base clips, the union in none (docs/methods.md). ci_method "expanded", "bca" (plain levels) or
    "percentile" give one; all are kept in `extra` (before the range rules).
    """
    if function not in FUNCTIONS:
        raise ValueError(f"function must be one of {FUNCTIONS}, got {function!r}")
    if not guess < target < 1:
        raise ValueError(f"target must lie between the guess rate {guess} and 1, got {target}")
    u = to_fit_units(axis, x)
    K, N = np.asarray(k_units, float), np.asarray(n_units, float)
    k, n = K.sum(0), N.sum(0)
    if len(u) < 3:
        raise ValueError(f"need at least 3 levels to fit a psychometric function, got {len(u)}")
    beta_min = slope_floor(u)
    fs = {"guess": guess, "lapse_max": lapse_max, "log_beta_min": np.log(beta_min)}
    starts = starts_of(u, beta_min)
    theta, ll = fisher_scoring(function, u, np.tile(k, (len(starts), 1)), np.tile(n, (len(starts), 1)), starts, **fs)
    best = theta[int(np.argmax(ll))][None, :]
    a, b, lam = (float(v[0, 0]) for v in unpack(best, lapse_max))
    p_hat = psi(function, u, a, b, lam, guess)
    dev = deviance(k, n, p_hat)
    df = len(u) - 3  # 3 levels: as many parameters as levels, a saturated fit with nothing left to test
    rng = np.random.default_rng(seed)
    if ci_method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {CI_METHODS}, got {ci_method!r}")
    if boot == "nonparametric":
        pick = rng.integers(0, len(K), size=(n_boot, len(K)))
        counts = np.zeros((n_boot, len(K)))
        np.add.at(counts, (np.arange(n_boot)[:, None], pick), 1.0)
        kb, nb = counts @ K, counts @ N
    elif boot == "parametric":
        nb = np.tile(n, (n_boot, 1))
        kb = rng.binomial(n.astype(int), p_hat, size=(n_boot, len(u))).astype(float)
    else:
        raise ValueError(f"boot must be 'nonparametric' or 'parametric', got {boot!r}")
    # every replicate from three starts (the point estimate, and the threshold near each end of the
    # range), keeping its best: on a flat likelihood one start would only show where it began
    span = float(np.ptp(u))
    shifted = [best.copy() for _ in range(2)]
    shifted[0][0, 0], shifted[1][0, 0] = u.min() + 0.25 * span, u.min() + 0.75 * span
    theta0 = np.concatenate([np.repeat(s, n_boot, axis=0) for s in (best, *shifted)])
    tb3, llb3 = fisher_scoring(function, u, np.tile(kb, (3, 1)), np.tile(nb, (3, 1)), theta0, **fs)
    pick = np.argmax(llb3.reshape(3, n_boot), axis=0)
    tb = tb3.reshape(3, n_boot, 3)[pick, np.arange(n_boot)]
    t_boot = thresholds_of(function, tb, target, guess, lapse_max)
    t_hat = float(thresholds_of(function, best, target, guess, lapse_max)[0])
    jack = None  # leave one unit out, for BCa's acceleration (units are what the bootstrap resamples)
    if boot == "nonparametric" and len(K) > 2:
        tj, _ = fisher_scoring(function, u, k - K, n - N, np.repeat(best, len(K), axis=0), **fs)
        jack = thresholds_of(function, tj, target, guess, lapse_max)
    # widened for few resampled units; the parametric bootstrap resamples none: its plain levels
    tails = expanded_levels(len(K)) if boot == "nonparametric" else np.array([0.025, 0.975])
    raw = {
        "bca": bca_quantiles(t_boot, t_hat, jack),
        "percentile": np.quantile(t_boot, [0.025, 0.975], method="inverted_cdf"),
        "expanded": np.quantile(t_boot, tails, method="inverted_cdf"),
        "expanded_bca": bca_quantiles(t_boot, t_hat, jack, tails=tails),
    }
    raw["union"] = (min(raw["expanded"][0], raw["expanded_bca"][0]), max(raw["expanded"][1], raw["expanded_bca"][1]))
    lo, hi = raw[ci_method]
    unit = "ms" if axis == "duration_ms" else "dB"
    bound = side = None
    step = b <= beta_min * 1.05
    ci_open: list[str] = []
    if t_hat > u.max():
        bound, side = f"> {to_natural(axis, u.max()):g} {unit} (not reached in the tested range)", "above"
    elif t_hat < u.min():
        bound, side = f"< {to_natural(axis, u.min()):g} {unit} (already above target at the lowest level)", "below"
    if bound:
        threshold, ci = float("nan"), (float("nan"), float("nan"))
    else:
        if step:  # the threshold lies somewhere in the gap between the two levels around it
            lo, hi = min(lo, u[u <= t_hat].max()), max(hi, u[u >= t_hat].min())
        if lo < u.min():
            lo, ci_open = u.min(), [*ci_open, "lower"]
        if hi > u.max():
            hi, ci_open = u.max(), [*ci_open, "upper"]
        threshold, ci = float(to_natural(axis, t_hat)), (float(to_natural(axis, lo)), float(to_natural(axis, hi)))
    return Fit(
        function=function,
        axis=axis,
        levels=u,
        k=k,
        n=n,
        alpha=a,
        beta=b,
        lapse=lam,
        guess=guess,
        loglik=float(ll.max()),
        deviance=dev,
        df=max(df, 0),
        # χ² survival (scipy.stats would load at CLI start-up); none for a saturated fit
        p_deviance=float(special.chdtrc(df, dev)) if df > 0 else float("nan"),
        target=target,
        threshold=threshold,
        ci=ci,
        bound=bound,
        n_boot=n_boot,
        boot_method=boot,
        bound_side=side,
        bound_value=float(to_natural(axis, u.max() if side == "above" else u.min())) if side else None,
        ci_open=tuple(ci_open),
        step=bool(step),
        extra={
            "boot_reached": float(np.mean(np.isfinite(t_boot))),
            "ci_method": ci_method,
            # every interval before the range and step rules below, in fit units (±inf: never reached)
            "ci_raw_fit_units": {m: [float(v) if np.isfinite(v) else None for v in b] for m, b in raw.items()},
            "slope_floor": float(beta_min),
            **({"saturated": "3 levels and 3 parameters: no goodness-of-fit test"} if df <= 0 else {}),
        },
    )


def scored(table: pd.DataFrame, threshold: float = 0.0, axis: str | None = None) -> pd.DataFrame:
    """The table with per-clip `correct` (`logit > threshold` vs the label), keeping only rows with a
    usable value on `axis` (clean clips have no SNR; durations must be positive for log units)."""
    from core.decision import correct

    t = table.assign(correct=correct(table["label"], table["logit"], threshold))
    if axis is None:
        return t
    v = t[axis].to_numpy(float)
    return t[np.isfinite(v) & (v > 0)] if axis == "duration_ms" else t[np.isfinite(v)]


def unit_counts(
    table: pd.DataFrame, axis: str, unit: str = "base_clip_id"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(levels, k, n) with k, n of shape (units, levels) from rows of `scored(table, …, axis)`."""
    k = table.pivot_table(index=unit, columns=axis, values="correct", aggfunc="sum", fill_value=0)
    n = table.pivot_table(index=unit, columns=axis, values="correct", aggfunc="size", fill_value=0)
    return k.columns.to_numpy(float), k.to_numpy(float), n.reindex_like(k).to_numpy(float)


def fit_table(
    table: pd.DataFrame,
    axis: str,
    by: list[str] | None = None,
    threshold: float = 0.0,
    **kw,
) -> list[tuple[dict[str, Any], Fit | None, str]]:
    """One fit per stratum of `by` (e.g. SNR curves per duration): [(stratum, fit or None, note)].

    Correctness is `logit > threshold` vs the label. Rows without a value on `axis` (clean
    clips have no SNR) are left out of that axis' curves.
    """
    if axis not in AXES:
        raise ValueError(f"axis must be one of {sorted(AXES)}, got {axis!r}")
    t = scored(table, threshold, axis)
    groups = t.groupby(by, dropna=False) if by else [((), t)]
    out = []
    for key, sub in groups:
        key = key if isinstance(key, tuple) else (key,)
        stratum = dict(zip(by or [], key))
        levels, k, n = unit_counts(sub, axis)
        if len(levels) < 3:
            out.append((stratum, None, f"{len(levels)} levels of {axis}: too few to fit"))
            continue
        out.append((stratum, fit_counts(levels, k, n, axis, **kw), ""))
    return out


def observed(table: pd.DataFrame, axis: str, by: list[str] | None = None, threshold: float = 0.0) -> pd.DataFrame:
    """Observed proportion correct per level (and stratum) with Wilson 95% intervals."""
    from core.analysis.stats import wilson

    t = scored(table, threshold, axis)
    g = t.groupby([*(by or []), axis], dropna=False)["correct"].agg(["sum", "size"]).reset_index()
    ci = [wilson(int(s), int(n)) for s, n in zip(g["sum"], g["size"])]
    return g.assign(accuracy=g["sum"] / g["size"], ci_lower=[c[0] for c in ci], ci_upper=[c[1] for c in ci]).rename(
        columns={"sum": "correct", "size": "n"}
    )


def interaction_glm(table: pd.DataFrame, threshold: float = 0.0) -> dict[str, Any]:
    """Binomial GEE of correctness on log2(duration) × SNR (+ band, reverb when varied), clustered by base clip.

    Clean clips (no SNR) are left out. Coefficients from the GEE (exchangeable working
    correlation) with the small-sample sandwich of Mancl and DeRouen (statsmodels' "bias_reduced")
    and t intervals and p-values with G − 1 degrees of freedom (G base clips): the plain sandwich
    with normal quantiles covered 93% where 95% was promised at 20–40 clusters, this 96%
    (simulated with a Gaussian-copula exchangeable correlation of 0.4; docs/methods.md).
    McFadden's pseudo-R² = 1 − LL/LL_null from the same model fitted as an ordinary binomial GLM
    (GEE has no likelihood).
    """
    import statsmodels.api as sm
    import statsmodels.formula.api as smf
    from scipy import stats as sps

    t = scored(table, threshold, "snr_db")
    t = t[t["duration_ms"] > 0].assign(correct=lambda d: d["correct"].astype(float))
    if t["snr_db"].nunique() < 2 or t["duration_ms"].nunique() < 2:
        raise ValueError("the GLM needs at least two durations and two SNRs (noisy clips)")
    t["log2_duration"] = np.log2(t["duration_ms"])
    terms = ["log2_duration * snr_db"]
    for col in ("band", "reverb"):
        if col in t and t[col].nunique() > 1:
            terms.append(f"C({col})")
    formula = "correct ~ " + " + ".join(terms)
    gee = smf.gee(
        formula, groups="base_clip_id", data=t, family=sm.families.Binomial(), cov_struct=sm.cov_struct.Exchangeable()
    ).fit(cov_type="bias_reduced")
    glm = smf.glm(formula, data=t, family=sm.families.Binomial()).fit()
    df = max(int(t["base_clip_id"].nunique()) - 1, 1)
    coef, se = gee.params.to_numpy(), gee.bse.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):  # a coefficient the data pin exactly: no p-value
        stat = np.where(se > 0, np.abs(coef) / np.where(se > 0, se, 1.0), np.nan)
    half, p = sps.t.ppf(0.975, df) * se, 2 * sps.t.sf(stat, df)
    coefs = pd.DataFrame(
        {
            "term": gee.params.index,
            "coef": coef,
            "robust_se": se,
            "ci_lower": coef - half,
            "ci_upper": coef + half,
            "p": p,
        }
    )
    return {
        "formula": formula,
        "coefficients": coefs,
        "interaction_p": float(coefs.set_index("term")["p"].get("log2_duration:snr_db", np.nan)),
        "mcfadden_r2": float(1 - glm.llf / glm.llnull),
        "n_clips": int(len(t)),
        "n_clusters": int(t["base_clip_id"].nunique()),
    }


def summary_rows(fits: list[tuple[dict[str, Any], Fit | None, str]], detector: str = "") -> pd.DataFrame:
    """One row per fitted stratum: threshold (or bound) with CI, lapse, slope and goodness of fit."""
    rows = []
    for stratum, fit, note in fits:
        row: dict[str, Any] = {"detector": detector, **stratum}
        if fit is None:
            rows.append({**row, "result": note})
            continue
        rows.append(
            {
                **row,
                "result": fit.label(),
                "threshold": fit.threshold,  # NaN when outside the tested range: see bound
                "bound": fit.bound or "",
                "ci_lower": fit.ci[0],
                "ci_upper": fit.ci[1],
                "ci_open": ", ".join(fit.ci_open),
                "step": fit.step,
                "lapse": fit.lapse,
                "slope_beta": fit.beta,
                "deviance": fit.deviance,
                "df": fit.df,
                "p_deviance": fit.p_deviance,
                "clips": int(fit.n.sum()),
            }
        )
    return pd.DataFrame(rows)
