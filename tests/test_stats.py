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


def test_mcnemar_mid_p_is_one_when_the_discordant_counts_tie_and_matches_its_definition():
    from scipy.stats import binom

    for b, c in [(3, 3), (0, 0), (7, 7), (2, 9), (9, 2), (0, 5)]:
        a = np.array([True] * b + [False] * c + [True] * 4)
        bb = np.array([False] * b + [True] * c + [True] * 4)
        k, n = min(b, c), b + c
        want = 1.0 if n == 0 else min(1.0, 2 * binom.cdf(k - 1, n, 0.5) + binom.pmf(k, n, 0.5))
        assert stats.mcnemar(a, bb, "midp").pvalue == pytest.approx(want)
    assert stats.mcnemar(np.array([True] * 3 + [False] * 3), np.array([False] * 3 + [True] * 3), "midp").pvalue == 1


def test_sigmoid_keeps_the_far_tails():
    from core.decision import sigmoid

    assert sigmoid(np.array([-40.0]))[0] == pytest.approx(np.exp(-40), rel=1e-12)
    assert sigmoid(np.array([-700.0]))[0] > 0 and sigmoid(np.array([40.0]))[0] == 1.0
    assert not np.isnan(sigmoid(np.array([-1e6, 1e6]))).any()


def test_clustered_accuracy_intervals_stay_inside_zero_one():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(10), 8)
    for ok in (np.ones(80, bool), rng.random(80) < 0.97, rng.random(80) < 0.03, np.zeros(80, bool)):
        est, lo, hi = stats.clustered_accuracy_ci(ok, groups)
        assert 0 <= lo <= est <= hi <= 1 and hi > lo
        labels = np.where(groups < 5, "speech", "nonspeech")
        est, lo, hi = stats.balanced_accuracy_ci(labels, ok, groups)
        assert 0 <= lo <= est <= hi <= 1 and hi > lo


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
    z = np.log(p) - np.log1p(-p)
    assert calibration.nll(y, z) == pytest.approx(log_loss(y, p))  # no extreme p here: sklearn's clip is idle


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
        before = calibration.nll(y[2000:], z[2000:])
        assert calibration.nll(y[2000:], cal) < before


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


# ---------------------------------------------------------------- exact at the edges (issue 18)


def test_probabilities_on_bin_edges_land_where_sklearn_puts_them():
    p = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0] * 3 + [0.15, 0.35, 0.65])
    y = (np.arange(len(p)) % 3 == 0).astype(int)
    for n_bins in (5, 10, 20):
        r = calibration.reliability(y, p, n_bins)
        frac, mean = calibration_curve(y, p, n_bins=n_bins)
        np.testing.assert_array_equal(r["fraction_positive"], frac)
        np.testing.assert_array_equal(r["mean_predicted"], mean)
    # ECE, too, as an independent count over sklearn's bins
    bins = np.searchsorted(np.linspace(0, 1, 11)[1:-1], p)
    ref = sum(abs(y[bins == b].mean() - p[bins == b].mean()) * (bins == b).sum() for b in np.unique(bins)) / len(p)
    assert calibration.ece(y, p) == pytest.approx(ref, abs=1e-15)


def test_nll_counts_a_confident_wrong_clip_in_full():
    import torch

    z = np.array([60.0, -45.0, 3.0, -700.0, 0.0])
    y = np.array([0, 1, 1, 1, 0])  # two clips wrong with |logit| 60 and 45, one with 700
    ref = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(z, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    ).item()
    assert calibration.nll(y, z) == pytest.approx(ref, rel=1e-12)
    assert calibration.nll(y, z) > (60 + 45 + 700) / 5 - 1e-9  # not capped at 27.6 nats per clip


def test_temperature_fit_widens_its_bounds_or_says_so():
    rng = np.random.default_rng(11)
    true = rng.normal(0, 2, 4000)
    y = rng.random(4000) < 1 / (1 + np.exp(-true))
    t = calibration.TemperatureScaling().fit(300 * true, y)  # over-confident by 300x: T beyond the first range
    assert t.temperature == pytest.approx(300, rel=0.1) and not t.bound_note  # widened, then found
    noise = rng.normal(0, 3, 4000)  # logits unrelated to the labels: the best T is as large as allowed
    t = calibration.TemperatureScaling().fit(noise, y)
    assert t.bound_note.startswith("T reached the search bound") and "no usable calibration signal" in t.bound_note
    assert calibration.describe(t)["bound_note"] == t.bound_note
    sep = np.where(y, 1.0, -1.0) * (1 + rng.random(4000))  # perfectly separated: NLL falls as T -> 0
    assert "perfectly separated" in calibration.TemperatureScaling().fit(sep, y).bound_note


def test_balanced_accuracy_ci_matches_the_linearised_formula():
    """Known answer on a hand-sized case: two groups per class, values worked through by hand."""
    labels = np.array(["speech"] * 4 + ["nonspeech"] * 4)
    ok = np.array([1, 1, 0, 1, 1, 0, 0, 0], bool)
    groups = np.array(["s1", "s1", "s2", "s2", "n1", "n1", "n2", "n2"])
    est, lo, hi = stats.balanced_accuracy_ci(labels, ok, groups)
    assert est == pytest.approx((0.75 + 0.25) / 2)
    # influence e_g: s1 = 2(1 − .75)/8 = .0625, s2 = (−.75 + .25)/8 = −.0625; n1 = (.75 − .25)/8, n2 = −.0625
    vs = vn = 2 / 1 * (2 * 0.0625**2)
    df = (vs + vn) ** 2 / (vs**2 + vn**2)
    from scipy.stats import beta
    from scipy.stats import t as student

    n_df = min(8, est * (1 - est) / (vs + vn)) * (student.ppf(0.975, 7) / student.ppf(0.975, df)) ** 2
    x = est * n_df  # Korn-Graubard: Clopper-Pearson at the effective, df-adjusted size
    _, kg, bb = stats.interval_parts(ok, groups, labels)
    assert kg == pytest.approx((beta.ppf(0.025, x, n_df - x + 1), beta.ppf(0.975, x + 1, n_df - x)))
    assert (lo, hi) == (min(kg[0], bb[0]), max(kg[1], bb[1]))  # the lab reports the union
    assert np.isnan(stats.balanced_accuracy_ci(labels, ok, np.where(labels == "speech", "s", groups))[1])


@pytest.mark.slow
@pytest.mark.parametrize("n_groups", [10, 20, 50])
def test_clustered_difference_ci_holds_its_level_with_few_groups(n_groups):
    from benchmarks.bench_coverage import coverage

    c = coverage(sims=1000, n_groups=n_groups, per_group=20, icc=0.3, n_boot=0)
    assert c["cluster_t"] >= 0.93, c


@pytest.mark.slow
def test_balanced_accuracy_ci_covers_the_planted_value():
    from scipy.special import expit

    rng = np.random.default_rng(12)
    x, w = np.polynomial.hermite_e.hermegauss(81)
    w = w / w.sum()
    truth = (np.sum(w * expit(1.0 + 1.2 * x)) + np.sum(w * expit(0.3 + 1.2 * x))) / 2
    hits, sims = 0, 1000
    for _ in range(sims):
        groups = np.repeat(np.arange(24), 15)  # 12 speech groups, 12 non-speech groups
        speech = groups < 12
        base = np.where(speech, 1.0, 0.3) + rng.normal(0, 1.2, 24)[groups]
        ok = rng.random(len(groups)) < expit(base)
        _, lo, hi = stats.balanced_accuracy_ci(np.where(speech, "speech", "nonspeech"), ok, groups)
        hits += lo <= truth <= hi
    assert hits / sims >= 0.93, hits / sims


def test_beta_binomial_interval_matches_direct_integration():
    """Known answer: the posterior of μ integrated by quadrature with scipy's beta-binomial pmf."""
    from scipy.integrate import cumulative_trapezoid, quad
    from scipy.stats import betabinom

    from core.analysis import beta_binomial

    k, n = np.array([5, 9, 12, 3, 7]), np.array([6, 10, 12, 8, 7])

    def density(mu: float) -> float:  # ∫ Π pmf dρ under a uniform prior on ρ, times Jeffreys' prior on μ
        def lik(rho: float) -> float:
            kappa = (1 - rho) / rho
            return float(np.prod(betabinom.pmf(k, n, mu * kappa, (1 - mu) * kappa)))

        return quad(lik, 0, 1, limit=200)[0] / np.sqrt(mu * (1 - mu))

    mu = np.linspace(1e-4, 1 - 1e-4, 801)
    cdf = cumulative_trapezoid([density(m) for m in mu], mu, initial=0)
    cdf /= cdf[-1]
    want = np.interp([0.025, 0.975], cdf, mu)
    assert beta_binomial.mean_interval(k, n) == pytest.approx(tuple(want), abs=3e-3)
    # a balanced accuracy's interval is that of the average of two independent posteriors
    lo, hi = beta_binomial.average_interval((k, n), (k, n))
    assert want[0] < lo < hi < want[1]  # averaging two draws narrows the interval of one


def test_accuracy_interval_is_the_union_of_its_parts():
    rng = np.random.default_rng(3)
    sizes = rng.integers(6, 19, 12)
    groups = np.repeat(np.arange(12), sizes)
    ok = rng.random(len(groups)) < np.repeat(rng.beta(2.1, 0.23, 12), sizes)
    est, lo, hi = stats.clustered_accuracy_ci(ok, groups)
    e2, kg, bb = stats.interval_parts(ok, groups)
    assert est == e2 == ok.mean() and (lo, hi) == (min(kg[0], bb[0]), max(kg[1], bb[1]))
    assert 0 <= lo <= est <= hi <= 1


@pytest.mark.slow
@pytest.mark.parametrize(("n_groups", "mean"), [(10, 0.7), (10, 0.9), (15, 0.9), (20, 0.9), (20, 0.95), (50, 0.9)])
def test_clustered_accuracy_interval_holds_its_level(n_groups, mean):
    """The issue's simulation (Beta group accuracies, ICC 0.3, 6–18 clips a group): ≥ 93% at 10–20
    groups, where Korn-Graubard alone gave 92.0% at a mean of 0.9 with 10 groups."""
    from benchmarks.bench_coverage import proportion_coverage

    c = proportion_coverage(1000, n_groups, mean)
    assert c["lab"] >= 0.93, c


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["beta", "logit-normal"])
def test_balanced_accuracy_interval_holds_its_level_with_ten_groups(shape):
    from benchmarks.bench_coverage import proportion_coverage

    c = proportion_coverage(1000, 10, 0.9, balanced=True, shape=shape)
    assert c["lab"] >= 0.93, c


def test_paired_balanced_accuracy_difference_is_the_difference_with_a_clustered_interval():
    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(20), 12)
    labels = np.where(groups < 10, "speech", "nonspeech")
    a, b = rng.random(240) < 0.85, rng.random(240) < 0.7
    d, lo, hi = stats.paired_balanced_accuracy_diff(labels, a, b, groups)
    ba = [stats.balanced_accuracy_ci(labels, x, groups)[0] for x in (a, b)]
    assert d == pytest.approx(ba[0] - ba[1]) and lo < d < hi
    assert stats.paired_balanced_accuracy_diff(labels, a, a, groups) == (0.0, 0.0, 0.0)


@pytest.mark.slow
def test_paired_balanced_accuracy_difference_covers_the_planted_gain():
    from scipy.special import expit

    rng = np.random.default_rng(21)
    x, w = np.polynomial.hermite_e.hermegauss(81)
    w = w / w.sum()
    base = {True: 1.0, False: 0.3}  # A is better by 0.6 logits for every group
    truth = np.mean([np.sum(w * (expit(b + 0.6 + 1.2 * x) - expit(b + 1.2 * x))) for b in base.values()])
    hits, sims = 0, 1000
    for _ in range(sims):
        groups = np.repeat(np.arange(24), 15)
        speech = groups < 12
        u = rng.normal(0, 1.2, 24)[groups] + np.where(speech, base[True], base[False])
        r = rng.random(len(groups))
        a, b = r < expit(u + 0.6), r < expit(u)
        _, lo, hi = stats.paired_balanced_accuracy_diff(np.where(speech, "speech", "nonspeech"), a, b, groups)
        hits += lo <= truth <= hi
    assert hits / sims >= 0.93, hits / sims
