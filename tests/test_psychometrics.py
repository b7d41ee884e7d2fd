"""Psychometric fits against a reference optimiser and simulations with planted truth; the GLM; CLI and page."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.optimize import minimize
from statsmodels.stats.proportion import proportion_confint
from streamlit.testing.v1 import AppTest

from core.analysis import psychometric_functions as pf
from core.analysis import psychometrics as pm
from tests.conftest import REPO

SNR = np.array([-10.0, -5.0, 0.0, 5.0, 10.0, 20.0])


def _simulate(rng, kind="logistic", alpha=0.0, beta=3.0, lapse=0.04, units=40, x=SNR, axis="snr_db"):
    p = pm.psi(kind, pm.to_fit_units(axis, x), alpha, beta, lapse)
    k = (rng.random((units, len(x))) < p).astype(float)
    return k, np.ones_like(k)


def true_threshold(kind, alpha, beta, lapse, target=0.75):
    return alpha + beta * pf.ppf(kind, (target - 0.5) / (0.5 - lapse))


@pytest.mark.parametrize("kind", pm.FUNCTIONS)
def test_fit_is_the_maximum_likelihood_of_a_reference_optimiser(kind):
    rng = np.random.default_rng(3)
    k, n = _simulate(rng, kind, alpha=2.0, beta=4.0)
    fit = pm.fit_counts(SNR, k, n, "snr_db", function=kind, n_boot=50)
    kk, nn = k.sum(0), n.sum(0)

    def nll(t):
        a, b, lam = t[0], np.exp(t[1]), t[2]
        if not 0 <= lam <= pm.LAPSE_MAX:
            return np.inf
        p = np.clip(pm.psi(kind, SNR, a, b, lam), 1e-12, 1 - 1e-12)
        return -np.sum(kk * np.log(p) + (nn - kk) * np.log1p(-p))

    starts = [(a, np.log(b), lam) for a in (-5, 0, 5, 10) for b in (1, 4, 10) for lam in (0.001, 0.05)]
    ref = min(
        (
            minimize(nll, s, method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 40000})
            for s in starts
        ),
        key=lambda r: r.fun,
    )
    assert fit.loglik == pytest.approx(-ref.fun, abs=1e-5)
    # deviance = 2 (saturated log-likelihood − fitted log-likelihood)
    with np.errstate(divide="ignore", invalid="ignore"):
        ph = kk / nn
        sat = np.nansum(kk * np.log(ph)) + np.nansum((nn - kk) * np.log1p(-ph))
    assert fit.deviance == pytest.approx(2 * (sat - fit.loglik), abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("units", [20, 60])
@pytest.mark.parametrize("axis", ["snr_db", "duration_ms"])
def test_threshold_ci_covers_the_planted_threshold(axis, units):
    """20 and 60 base clips at the lab's default levels (300 simulations each, 2026-12-07): at its
    level, and not so wide that it always covers."""
    from benchmarks.bench_psychometrics import threshold_coverage

    c = threshold_coverage(sims=300, units=units, axis=axis, workers=2)
    assert 0.93 <= c["union"] <= 0.985, c  # the default interval
    assert c["reported"] >= c["union"], c  # the range and step rules only widen it


def test_bca_bounds_match_scipy_bootstrap():
    """Known answer: BCa of a skewed sample's mean from our replicates = scipy.stats.bootstrap's BCa."""
    from scipy.stats import bootstrap

    from core.analysis.psychometric_functions import bca_quantiles

    rng = np.random.default_rng(2)
    x = rng.exponential(1.0, 40)
    boot = x[rng.integers(0, len(x), (40_000, len(x)))].mean(axis=1)
    jack = (x.sum() - x) / (len(x) - 1)
    ours = bca_quantiles(boot, float(x.mean()), jack)
    sd = boot.std()
    ref = bootstrap((x,), np.mean, method="BCa", n_resamples=40_000, random_state=3).confidence_interval
    assert ours == pytest.approx((ref.low, ref.high), abs=0.06 * sd)  # scipy's own replicates: Monte Carlo apart
    try:  # the same replicates through scipy's BCa step (private, so only where its signature is this one)
        from scipy.stats._resampling import _bca_interval

        a1, a2, _ = _bca_interval((x,), np.mean, axis=-1, alpha=0.025, theta_hat_b=boot, batch=None, xp=np)
    except (ImportError, TypeError):
        pass
    else:
        assert ours == pytest.approx(tuple(np.quantile(boot, [a1, a2])), abs=0.002 * sd)
        tails = np.array([0.016, 0.984])  # BCa at other nominal levels (the expanded ones) = scipy's at that level
        a1, a2, _ = _bca_interval((x,), np.mean, axis=-1, alpha=0.016, theta_hat_b=boot, batch=None, xp=np)
        wider = bca_quantiles(boot, float(x.mean()), jack, tails=tails)
        assert wider == pytest.approx(tuple(np.quantile(boot, [a1, a2])), abs=0.002 * sd)
        assert wider[0] < ours[0] and ours[1] < wider[1]
    pct = np.quantile(boot, [0.025, 0.975])
    assert ours[0] - pct[0] > 0.03 * sd and ours[1] - pct[1] > 0.03 * sd  # skewed right: BCa moves both up


def test_duration_thresholds_are_fitted_on_log_duration():
    rng = np.random.default_rng(5)
    ms = np.array([20, 40, 80, 160, 200, 400, 500, 800, 1000.0])
    k, n = _simulate(rng, "weibull", alpha=np.log10(150), beta=0.2, lapse=0.02, units=200, x=ms, axis="duration_ms")
    fit = pm.fit_counts(ms, k, n, "duration_ms", function="weibull", n_boot=300)
    truth = 10 ** true_threshold("weibull", np.log10(150), 0.2, 0.02)
    assert fit.ci[0] <= truth <= fit.ci[1] and fit.label().startswith("DT75 = ")
    x, y = fit.curve()
    assert x[0] == pytest.approx(20) and x[-1] == pytest.approx(1000) and np.all(np.diff(y) >= 0)


def test_thresholds_outside_the_range_are_bounds_not_extrapolations():
    flat = np.tile([0, 1, 1, 0, 1, 0], (20, 1)).astype(float)  # ~50% everywhere: never reaches 75%
    fit = pm.fit_counts(SNR, flat, np.ones_like(flat), "snr_db", n_boot=100)
    assert fit.bound is not None and fit.bound.startswith("> 20 dB") and "> 20 dB" in fit.label()
    easy = np.ones((20, 6))
    easy[:, 0] = np.random.default_rng(0).random(20) < 0.9
    fit = pm.fit_counts(SNR, easy, np.ones_like(easy), "snr_db", n_boot=100)
    assert fit.bound is not None and fit.bound.startswith("< -10 dB")


def test_a_step_like_curve_is_flagged_not_fitted_with_a_collapsed_ci():
    """Chance up to 0 dB, ceiling from 5 dB: the threshold is somewhere in (0, 5) and the fit must say so."""
    step = np.zeros((40, 6))
    step[:20, :3] = 1.0  # 50% at -10, -5, 0 dB
    step[:, 3:] = 1.0  # 100% at 5, 10, 20 dB
    fit = pm.fit_counts(SNR, step, np.ones_like(step), "snr_db", n_boot=300)
    assert fit.step and fit.beta >= pm.slope_floor(SNR) * 0.999
    assert fit.ci[0] <= 0.0 and fit.ci[1] >= 5.0  # the CI spans the gap the data cannot divide
    assert "a step between" in fit.label()
    smooth = pm.fit_counts(SNR, *_simulate(np.random.default_rng(4), beta=4.0, units=60), "snr_db", n_boot=300)
    assert not smooth.step


def test_a_threshold_outside_the_range_is_a_bound_in_the_numbers_too(tmp_path):
    import json

    flat = np.tile([0, 1, 1, 0, 1, 0], (20, 1)).astype(float)
    fit = pm.fit_counts(SNR, flat, np.ones_like(flat), "snr_db", n_boot=100)
    assert np.isnan(fit.threshold) and fit.bound_side == "above" and fit.bound_value == 20.0
    d = json.loads(json.dumps(fit.as_dict(), allow_nan=False))  # strict JSON: no NaN, no Infinity
    assert d["threshold"] is None and d["ci"] == [None, None] and d["bound"].startswith("> 20 dB")
    row = pm.summary_rows([({}, fit, "")]).iloc[0]
    assert np.isnan(row["threshold"]) and row["bound"].startswith("> 20 dB")


def test_a_saturated_fit_reports_no_goodness_of_fit_p():
    x = np.array([-5.0, 0.0, 5.0])
    k, n = _simulate(np.random.default_rng(6), x=x, units=50)
    fit = pm.fit_counts(x, k, n, "snr_db", n_boot=100)
    assert fit.df == 0 and np.isnan(fit.p_deviance) and "saturated" in fit.extra
    assert pm.fit_counts(SNR, *_simulate(np.random.default_rng(6)), "snr_db", n_boot=50).df == 3


def test_bootstrap_resamples_base_clips():
    # two kinds of base clip: all easy ones move together; the clip bootstrap CI must be wider
    # than the parametric one that treats each response as independent
    rng = np.random.default_rng(8)
    hard = rng.random(30) < 0.5
    p = np.where(hard[:, None], pm.psi("logistic", SNR, 8.0, 2.0, 0.0), pm.psi("logistic", SNR, -6.0, 2.0, 0.0))
    k = (rng.random((30, 6)) < p).astype(float)
    clip = pm.fit_counts(SNR, k, np.ones_like(k), "snr_db", n_boot=1000, boot="nonparametric")
    param = pm.fit_counts(SNR, k, np.ones_like(k), "snr_db", n_boot=1000, boot="parametric")
    assert clip.ci[1] - clip.ci[0] > param.ci[1] - param.ci[0]


def test_observed_points_carry_wilson_intervals():
    rng = np.random.default_rng(1)
    t = pd.DataFrame(
        {
            "label": np.where(rng.random(300) < 0.5, "speech", "nonspeech"),
            "logit": rng.normal(size=300),
            "snr_db": rng.choice([0.0, 10.0, np.nan], 300),
        }
    )
    obs = pm.observed(t, "snr_db")
    assert list(obs["snr_db"]) == [0.0, 10.0]
    for r in obs.itertuples():
        lo, hi = proportion_confint(r.correct, r.n, method="wilson")
        assert (r.ci_lower, r.ci_upper) == pytest.approx((lo, hi))


def test_glm_recovers_a_planted_interaction():
    rng = np.random.default_rng(2)
    rows = []
    for b in range(120):
        u = rng.normal(0, 0.5)
        for d in (20, 80, 200, 500, 1000):
            for snr in (-10.0, 0.0, 10.0, 20.0):
                eta = -1.0 + 0.3 * np.log2(d) + 0.05 * snr + 0.04 * np.log2(d) * snr + u
                ok = rng.random() < 1 / (1 + np.exp(-eta))
                label = "speech" if b % 2 else "nonspeech"
                logit = (1.0 if ok else -1.0) * (1 if label == "speech" else -1)
                rows.append({"label": label, "logit": logit, "duration_ms": d, "snr_db": snr, "base_clip_id": f"b{b}"})
    t = pd.DataFrame(rows)
    g = pm.interaction_glm(t)
    c = g["coefficients"].set_index("term")
    assert c.loc["log2_duration:snr_db", "ci_lower"] < 0.04 < c.loc["log2_duration:snr_db", "ci_upper"]
    assert g["interaction_p"] < 1e-3 and g["n_clusters"] == 120
    t["correct"] = ((t["logit"] > 0) == (t["label"] == "speech")).astype(float)
    t["log2_duration"] = np.log2(t["duration_ms"])
    ref = sm.GLM.from_formula("correct ~ log2_duration * snr_db", t, family=sm.families.Binomial()).fit()
    assert g["mcfadden_r2"] == pytest.approx(ref.pseudo_rsquared(kind="mcf"))


@pytest.fixture(scope="module")
def scored_conditions(default_ds):
    from core.data import conditions as cond
    from core.data.datasets import load_dataset
    from core.data.splits import make_split, save_split
    from core.detectors import make_detector
    from core.scoring.evaluate import evaluate

    save_split(default_ds, "psysplit", make_split(default_ds.manifest, seed=12), {"seed": 12})
    spec = cond.ConditionSpec(
        durations_ms=(20, 80, 200, 500, 1000), snrs_db=(-10.0, 0.0, 10.0, 20.0), bases_per_label=4
    )
    cond.generate(default_ds, "psysplit", "test", "psytest", spec, force=True)
    ds = load_dataset("psytest")
    return [
        evaluate(ds, "conditions", "test", make_detector(name), batch_size=64).stem
        for name in ("silero-vad", "webrtc-vad")
    ]


def test_psychometrics_page_draws_curves_for_two_detectors(scored_conditions):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180).run()
    at.switch_page("views/psychometrics.py").run()
    assert not at.exception
    at.multiselect(key="psy_tables").set_value(scored_conditions).run()
    assert not at.exception
    fig = at.get("plotly_chart")[0].proto.spec
    assert "silero-vad" in fig and "webrtc-vad" in fig
    table = at.dataframe[0].value
    assert set(table["detector"]) == {"silero-vad", "webrtc-vad"}
    assert len(table) == 2 * 5  # one SNR curve per duration per detector
    at.radio(key="psy_axis").set_value("duration_ms").run()
    assert not at.exception
    # one panel per SNR in numeric order, the clean clips' panel last; the log axis bounded to the tested range
    import json

    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    titles = [a["text"] for a in spec["layout"]["annotations"]]  # the subplot titles
    numeric = [float(t) for t in titles if t != "clean"]
    assert titles[-1] == "clean" and numeric == sorted(numeric) and len(numeric) >= 3
    lo, hi = spec["layout"]["xaxis"]["range"]
    assert 10**lo > 10 and 10**hi < 10000, (lo, hi)  # not down to 0.01 ms
    at.checkbox(key="psy_glm").check().run()
    assert not at.exception and any("interaction p" in m.value for m in at.markdown)


def test_cli_psychometric_writes_fits_next_to_the_predictions(scored_conditions):
    from core.scoring import predictions

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "psychometric",
            scored_conditions[0],
            "--axis",
            "duration_ms",
            "--glm",
            "--n-boot",
            "200",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "DT75" in r.stdout and "interaction p" in r.stdout
    out = predictions.analysis_dir(predictions.resolve(scored_conditions[0]))
    assert (out / "psychometric-duration_ms.json").exists() and (out / "observed-duration_ms.csv").exists()


@pytest.mark.slow
def test_the_glm_interval_holds_its_level_with_few_clusters():
    from benchmarks.bench_psychometrics import gee_coverage

    assert gee_coverage(sims=300, clusters=20) >= 0.93


def test_expanded_percentile_widens_for_few_base_clips():
    """Hesterberg's levels Φ(−√(n/(n−1))·t_{n−1}) by hand, and the intervals of one fit nest as they should."""
    from scipy.stats import norm, t

    from core.analysis import psychometrics as pm
    from core.analysis.psychometric_functions import expanded_levels

    for n in (5, 20, 200):
        tail = norm.cdf(-np.sqrt(n / (n - 1)) * t.ppf(0.975, n - 1))
        assert expanded_levels(n) == pytest.approx([tail, 1 - tail])
    assert expanded_levels(10_000)[0] == pytest.approx(0.025, abs=1e-4)
    rng = np.random.default_rng(8)
    snr = np.array([-10, -5, 0, 5, 10, 20.0])
    k = (rng.random((20, 6)) < pm.psi("logistic", snr, 0.0, 3.0, 0.04)).astype(float)
    fits = {m: pm.fit_counts(snr, k, np.ones_like(k), "snr_db", n_boot=400, ci_method=m) for m in pm.CI_METHODS}
    raw = fits["percentile"].extra["ci_raw_fit_units"]
    assert raw["expanded"][0] < raw["percentile"][0] and raw["percentile"][1] < raw["expanded"][1]
    assert raw["expanded_bca"][0] < raw["bca"][0] and raw["bca"][1] < raw["expanded_bca"][1]
    for side, pick in ((0, min), (1, max)):  # the default reaches as far as either expanded interval, no further
        assert raw["union"][side] == pick(raw["expanded"][side], raw["expanded_bca"][side])
    assert pm.fit_counts(snr, k, np.ones_like(k), "snr_db", n_boot=400).extra["ci_method"] == "union"
    for m, fit in fits.items():  # same replicates: each method's CI is its raw interval
        assert fit.ci == pytest.approx(tuple(raw[m])) and fit.threshold == fits["percentile"].threshold
    with pytest.raises(ValueError, match="ci_method"):
        pm.fit_counts(snr, k, np.ones_like(k), "snr_db", ci_method="studentized")


def test_a_fit_over_one_or_two_base_clips_still_gives_its_intervals():
    """Expanded levels for 2 units round to 1.0 in floating point (z = ∞): every interval stays a finite pair."""
    from core.analysis import psychometrics as pm

    snr = np.array([-10, -5, 0, 5, 10, 20.0])
    p = pm.psi("logistic", snr, 0.0, 3.0, 0.04)
    for units in (1, 2):
        n = np.full((units, 6), 50.0)
        k = np.round(p * n)
        fit = pm.fit_counts(snr, k, n, "snr_db", n_boot=200)
        assert all(np.isfinite(fit.ci)) and fit.ci[0] <= fit.threshold <= fit.ci[1], fit.ci
        assert all(v is not None for b in fit.extra["ci_raw_fit_units"].values() for v in b)
