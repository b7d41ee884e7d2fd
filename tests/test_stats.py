"""Statistics and calibration against reference implementations and simulations with known truth."""

import numpy as np
import pytest
from scipy.stats import chi2
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.proportion import proportion_confint

from core.analysis import calibration, stats


@pytest.mark.parametrize("seed", range(5))
def test_mcnemar_matches_statsmodels(seed):
    rng = np.random.default_rng(seed)
    a = rng.random(200) < 0.8
    b = np.where(rng.random(200) < 0.85, a, ~a)
    table = stats.contingency(a, b)
    ex = stats.mcnemar(a, b, "exact")
    assert ex.pvalue == pytest.approx(sm_mcnemar(table, exact=True).pvalue, rel=1e-10)
    ch = stats.mcnemar(a, b, "chi2")
    ref = sm_mcnemar(table, exact=False, correction=True)
    assert ch.statistic == pytest.approx(ref.statistic) and ch.pvalue == pytest.approx(ref.pvalue)
    mid = stats.mcnemar(a, b, "midp").pvalue
    assert mid <= ex.pvalue


def test_seed_mcnemar_case_is_p_one():
    # 24 clips: model A right on 19, model B on 20, one discordant clip
    a = np.array([True] * 19 + [False] * 5)
    b = a.copy()
    b[19] = True
    assert a.sum() == 19 and b.sum() == 20
    assert stats.mcnemar(a, b, "exact").pvalue == 1.0


def test_wilson_matches_statsmodels():
    for k, n in [(0, 10), (3, 10), (19, 24), (950, 1000)]:
        lo, hi = proportion_confint(k, n, method="wilson")
        assert stats.wilson(k, n) == pytest.approx((lo, hi), abs=1e-12)


def test_reliability_and_scores_match_sklearn():
    rng = np.random.default_rng(3)
    p = rng.random(5000)
    y = (rng.random(5000) < p**1.3).astype(int)
    for strategy in ("uniform", "quantile"):
        r = calibration.reliability(y, p, 10, strategy)
        frac, mean = calibration_curve(y, p, n_bins=10, strategy=strategy)
        np.testing.assert_allclose(r["fraction_positive"], frac, atol=1e-12)
        np.testing.assert_allclose(r["mean_predicted"], mean, atol=1e-12)
    assert calibration.brier(y, p) == pytest.approx(brier_score_loss(y, p))
    assert calibration.nll(y, p) == pytest.approx(log_loss(y, p))


def test_ece_against_an_independent_implementation():
    rng = np.random.default_rng(4)
    p = rng.random(3000)
    y = rng.random(3000) < np.clip(p + 0.1, 0, 1)
    total = 0.0
    for lo in np.arange(10) / 10:  # plain loop, bins [lo, lo + 0.1), last one closed
        sel = (p >= lo) & ((p < lo + 0.1) if lo < 0.85 else (p <= 1.0))
        if sel.any():
            total += sel.sum() / len(p) * abs(y[sel].mean() - p[sel].mean())
    assert calibration.ece(y, p) == pytest.approx(total, abs=1e-12)
    assert calibration.mce(y, p) >= calibration.ece(y, p)


@pytest.mark.parametrize("true_t", [0.5, 3.0, 10.0])
def test_temperature_scaling_recovers_a_planted_temperature(true_t):
    rng = np.random.default_rng(int(true_t * 10))
    true_logits = rng.normal(0, 3, 20000)
    y = rng.random(20000) < 1 / (1 + np.exp(-true_logits))
    observed = true_logits * true_t  # an over-confident (T > 1) or under-confident model
    t = calibration.TemperatureScaling().fit(observed, y).temperature
    assert t == pytest.approx(true_t, rel=0.05)


def test_platt_and_isotonic_improve_nll_of_a_miscalibrated_model():
    rng = np.random.default_rng(5)
    z = rng.normal(0, 2, 4000)
    y = rng.random(4000) < 1 / (1 + np.exp(-(0.5 * z + 1)))
    for method in (calibration.PlattScaling(), calibration.IsotonicCalibration(), calibration.TemperatureScaling()):
        cal = method.fit(z[:2000], y[:2000]).transform(z[2000:])
        before = calibration.nll(y[2000:], 1 / (1 + np.exp(-z[2000:])))
        assert calibration.nll(y[2000:], 1 / (1 + np.exp(-cal))) < before


def test_clustered_bootstrap_is_wider_than_naive_under_group_effects():
    rng = np.random.default_rng(6)
    groups = np.repeat(np.arange(20), 30)
    effect = rng.normal(0, 1.5, 20)[groups]  # clips of a group share difficulty
    a = rng.random(600) < 1 / (1 + np.exp(-(1 + effect)))
    b = rng.random(600) < 1 / (1 + np.exp(-(0.8 + effect)))
    d, lo_n, hi_n = stats.paired_bootstrap_diff(a, b, n_boot=3000)
    d2, lo_c, hi_c = stats.paired_bootstrap_diff(a, b, groups, n_boot=3000)
    assert d == d2 and lo_n <= d <= hi_n and lo_c <= d <= hi_c
    assert hi_c - lo_c > hi_n - lo_n


def test_sample_size_gives_the_promised_power():
    n = stats.mcnemar_sample_size(p_discordant=0.2, delta=0.1)
    rng = np.random.default_rng(7)
    hits = 0
    sims = 1500
    for _ in range(sims):
        u = rng.random(n)  # discordant A-only with prob 0.15, B-only with 0.05: delta 0.1, psi 0.2
        a = u < 0.15
        b = (u >= 0.15) & (u < 0.20)
        both = u >= 0.20
        table = stats.contingency(a | both, b | both)
        disc = table[0, 1] + table[1, 0]  # Connor's formula is for the uncorrected statistic
        hits += disc > 0 and chi2.sf((table[0, 1] - table[1, 0]) ** 2 / disc, 1) < 0.05
    assert abs(hits / sims - 0.8) < 0.04, (n, hits / sims)
