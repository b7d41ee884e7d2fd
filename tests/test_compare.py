"""Comparison, power, aggregation, threshold transfer and calibration reports against known answers."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.proportion import proportion_confint

from core.analysis import calibration, calibration_report, compare, metrics, stats, thresholds


def _table(n=400, groups=20, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random(n) < 0.5, "speech", "nonspeech")
    logit = rng.normal(np.where(labels == "speech", 1.5, -1.5) + shift, 2.0)
    return pd.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(n)],
            "label": labels,
            "group_id": [f"g{i % groups}" for i in range(n)],
            "logit": logit,
            "seed": seed,
        }
    )


def test_summary_scores_match_sklearn():
    t = _table()
    s = metrics.summary(t["label"], t["logit"])
    y = t["label"] == "speech"
    assert s["roc_auc"] == pytest.approx(roc_auc_score(y, t["logit"]))
    assert s["pr_auc"] == pytest.approx(average_precision_score(y, t["logit"]))
    one_class = metrics.summary(np.array(["speech"] * 5), np.arange(5.0))
    assert np.isnan(one_class["roc_auc"])


def test_roc_curve_and_its_area_match_sklearn():
    t = _table(seed=3)
    t.loc[:50, "logit"] = np.round(t.loc[:50, "logit"])  # ties
    idx = thresholds.ThresholdIndex.build(t["label"] == "speech", t["logit"])
    roc = thresholds.roc_curve(idx)
    fpr, tpr, _ = roc_curve(t["label"] == "speech", t["logit"])
    ours = set(zip(np.round(roc["fpr"], 12), np.round(roc["tpr"], 12)))
    assert set(zip(np.round(fpr, 12), np.round(tpr, 12))) <= ours
    area = np.trapezoid(roc["tpr"][::-1], roc["fpr"][::-1])
    assert area == pytest.approx(roc_auc_score(t["label"] == "speech", t["logit"]))
    assert roc["auc"] == pytest.approx(roc_auc_score(t["label"] == "speech", t["logit"]), abs=1e-14)


@pytest.mark.parametrize("temperature", [1.0, 0.3, 2.0, 7.0, 1 / 3])
def test_thresholds_with_a_temperature_decide_exactly_logit_over_t(temperature):
    """Counts equal `logit / T > t` evaluated clip by clip, boundary ties included, at any T."""
    from core.decision import decide

    rng = np.random.default_rng(int(temperature * 100))
    z = np.concatenate([np.round(rng.normal(0, 3, 3000), 1), [0.3, 0.6, 0.9, 1.0, 2.1, -0.7]])
    y = rng.random(len(z)) < 0.5
    idx = thresholds.ThresholdIndex.build(y, z)
    # thresholds exactly on values of logit / T (ties), and values between them
    ts = np.concatenate([np.unique(z / temperature)[::37], [0.1, 0.3, 1.0 / 3, -0.2, 0.0]])
    for t in ts:
        speech = decide(z, t, temperature)
        m = idx.confusion(t, temperature)
        assert m["tp"] == np.sum(speech & y) and m["fp"] == np.sum(speech & ~y), (t, temperature)
    # and the naive form `logit > t · T` is not always the same rule
    assert any(np.any((z / 3.0 > t) != (z > t * 3.0)) for t in np.unique(z / 3.0))


def test_roc_and_auc_do_not_depend_on_the_temperature():
    t = _table(seed=8)
    idx = thresholds.ThresholdIndex.build(t["label"] == "speech", t["logit"])
    for temperature in (0.5, 1.0, 4.0):
        idx.scaled(temperature)  # moving T must leave the curve as it was
        roc = thresholds.roc_curve(idx)
        assert roc["auc"] == pytest.approx(roc_auc_score(t["label"] == "speech", t["logit"]), abs=1e-14)


def test_compare_matches_references_and_pairs_by_clip():
    a, b = _table(seed=1), _table(seed=1, shift=0.4)
    b["logit"] = b["logit"] + np.random.default_rng(9).normal(0, 1, len(b))
    b = b.sample(frac=1, random_state=0).iloc[:-10]  # shuffled, 10 clips missing
    c = compare.compare(a, b, n_boot=500)
    assert c.n_clips == 390 and c.only_in_a == 10 and c.n_groups == 20
    paired = a.set_index("clip_id").loc[b["clip_id"]]
    ca = metrics.correct(paired["label"], paired["logit"])
    cb = metrics.correct(b["label"], b["logit"])
    table = stats.contingency(ca, cb)
    np.testing.assert_array_equal(c.table, table)
    assert c.mcnemar["exact"] == pytest.approx(sm_mcnemar(table, exact=True).pvalue)
    assert c.mcnemar["chi2"] == pytest.approx(sm_mcnemar(table, exact=False, correction=True).pvalue)
    assert c.wilson["a"] == pytest.approx(proportion_confint(ca.sum(), len(ca), method="wilson"))
    assert c.diff == pytest.approx(ca.mean() - cb.mean())
    assert c.ci_clustered[0] <= c.diff <= c.ci_clustered[1]


def test_compare_refuses_unpaired_or_contradicting_tables():
    a = _table()
    b = a.assign(clip_id=[f"x{i}" for i in range(len(a))])
    with pytest.raises(compare.CompareError, match="share no clip_id"):
        compare.compare(a, b)
    b = a.copy()
    b.loc[7, "label"] = "speech" if a.loc[7, "label"] != "speech" else "nonspeech"
    with pytest.raises(compare.CompareError, match="'c7'"):
        compare.compare(a, b)


def test_icc_recovers_a_planted_intra_class_correlation():
    rng = np.random.default_rng(0)
    k, m, icc = 400, 10, 0.3
    g = np.repeat(np.arange(k), m)
    v = rng.normal(0, np.sqrt(icc), k)[g] + rng.normal(0, np.sqrt(1 - icc), k * m)
    assert stats.icc_oneway(v, g) == pytest.approx(icc, abs=0.04)
    assert stats.icc_oneway(rng.normal(size=k * m), g) < 0.03
    assert stats.groups_needed(100, 10, 0.0) == (100, 10)
    assert stats.groups_needed(100, 10, 0.5) == (550, 55)


def test_power_plan_is_more_demanding_when_errors_cluster():
    rng = np.random.default_rng(1)
    n_groups, m = 40, 25
    g = np.repeat(np.arange(n_groups), m)
    p_a = 0.8 + rng.normal(0, 0.12, n_groups)[g]  # A's advantage varies by group
    u = rng.random(len(g))
    paired = pd.DataFrame({"group_id": g, "correct_a": u < np.clip(p_a, 0, 1), "correct_b": u < 0.75})
    plan = compare.power_plan(paired, delta=0.05)
    assert plan["clips_if_independent"] == stats.mcnemar_sample_size(max(plan["discordant_rate"], 0.05), 0.05)
    assert plan["icc"] > 0.02 and plan["clips"] > plan["clips_if_independent"]
    assert plan["groups"] == int(np.ceil(plan["clips"] / m))


def test_aggregate_is_mean_and_std_over_seeds():
    tables = {f"s{s}": _table(seed=s) for s in range(3)}
    per, summary = compare.aggregate(tables)
    accs = [metrics.summary(t["label"], t["logit"])["accuracy"] for t in tables.values()]
    row = summary.set_index("metric").loc["accuracy"]
    assert row["mean"] == pytest.approx(np.mean(accs)) and row["std"] == pytest.approx(np.std(accs, ddof=1))
    assert list(per["seed"]) == [0, 1, 2] and row["seeds"] == 3


def test_threshold_chosen_on_test_is_optimistic_and_dev_choice_is_honest():
    dev, test = _table(seed=4), _table(seed=5)
    rows = {
        (r["rule"], r["chosen on"]): r
        for r in thresholds.dev_to_test(dev["label"], dev["logit"], test["label"], test["logit"])
    }
    on_dev = rows[("max balanced accuracy", "dev")]
    on_test = rows[("max balanced accuracy", "test (optimistic)")]
    assert on_test["test balanced accuracy"] >= on_dev["test balanced accuracy"]
    idx = thresholds.ThresholdIndex.build(dev["label"] == "speech", dev["logit"])
    assert on_dev["threshold (log-odds)"] == pytest.approx(idx.best("balanced_accuracy"))
    assert on_dev["dev balanced accuracy"] == pytest.approx(
        metrics.summary(dev["label"], dev["logit"], threshold=on_dev["threshold (log-odds)"])["balanced_accuracy"]
    )


def test_reliability_bands_flag_small_bins_and_cover_the_observed_rate():
    rng = np.random.default_rng(2)
    p = rng.random(600) ** 4  # few clips in the upper bins
    y = rng.random(600) < p
    r = calibration.reliability_bands(y, p, 10, min_count=30)
    assert ((r["ci_lower"] <= r["fraction_positive"]) & (r["fraction_positive"] <= r["ci_upper"])).all()
    np.testing.assert_array_equal(r["few"], r["count"] < 30)
    assert r["few"].iloc[-1] and not r["few"].iloc[0]
    big = r.iloc[0]
    width = big["ci_upper"] - big["ci_lower"]
    f = big["fraction_positive"]
    assert width == pytest.approx(2 * 1.96 * np.sqrt(f * (1 - f) / big["count"]), rel=0.25)  # Wilson ~ Wald here


def test_reliability_bands_are_wilson_and_never_zero_width_at_all_or_none():
    from statsmodels.stats.proportion import proportion_confint

    p = np.r_[np.full(5, 0.05), np.full(4, 0.95), np.linspace(0.4, 0.6, 30)]
    y = np.r_[np.zeros(5), np.ones(4), np.arange(30) % 2].astype(bool)  # the end bins are all 0 and all 1
    r = calibration.reliability_bands(y, p, 10)
    assert (r["ci_upper"] - r["ci_lower"] > 0.1).all()
    for row in r.itertuples():
        k = round(row.fraction_positive * row.count)
        assert (row.ci_lower, row.ci_upper) == pytest.approx(proportion_confint(k, row.count, method="wilson"))


def test_platt_says_when_dev_is_separable():
    cal = calibration.PlattScaling().fit(
        np.r_[np.linspace(-3, -1, 20), np.linspace(1, 3, 20)], np.r_[np.zeros(20), np.ones(20)]
    )
    assert "perfectly separated" in cal.bound_note
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 200)
    assert calibration.PlattScaling().fit(z, rng.random(200) < 1 / (1 + np.exp(-z))).bound_note == ""


def test_calibration_report_fits_on_dev_and_warns_on_the_same_split():
    dev, test = _table(seed=6), _table(seed=7)
    test["clip_id"] = "t" + test["clip_id"]
    dev["logit"] *= 5
    test["logit"] *= 5
    rep, dev_c, test_c = calibration_report.report(dev, test, "temperature")
    t = calibration.TemperatureScaling().fit(dev["logit"], dev["label"] == "speech").temperature
    assert rep.params["temperature"] == pytest.approx(t)
    np.testing.assert_allclose(test_c["logit_calibrated"], test["logit"] / t)
    after = rep.table.set_index(["split", "stage"])
    assert after.loc[("test", "after"), "nll"] < after.loc[("test", "before"), "nll"]
    assert not any("fitted on clips" in w for w in rep.warnings)
    rep2, *_ = calibration_report.report(dev, dev, "temperature")
    assert any("fitted on clips it is judged on" in w for w in rep2.warnings)


@pytest.mark.slow
def test_clustered_bootstrap_ci_covers_at_nominal_rate():
    from benchmarks.bench_coverage import coverage

    c = coverage(sims=1000, n_groups=60, per_group=20, icc=0.3, n_boot=1000)
    assert 0.93 <= c["cluster_t"] <= 0.975, c
    assert c["naive"] < 0.85, c  # the naive interval ignores the group effects and under-covers


@pytest.mark.slow
def test_the_power_plan_delivers_its_power_in_simulation():
    from benchmarks.bench_coverage import planned_power

    c = planned_power(sims=600, icc=0.3, per_group=20)
    assert 0.76 <= c["power"] <= 0.9, c  # 80% promised; 600 simulations: ±3.3% at 2 SE
