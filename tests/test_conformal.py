"""Decide or abstain: conformal sets equal crepes' on the same inputs; the selective rule's error among
decided clips and the sets' coverage hold their levels over 500 random dev/test draws of a known truth."""

import numpy as np
import pytest

from core.analysis import conformal
from core.errors import LabError


def _draw(rng, n, scale=3.0):
    """Calibrated scores: a clip's p(speech) is the chance it is speech."""
    z = rng.normal(0, scale, n)
    p = 1 / (1 + np.exp(-z))
    return rng.random(n) < p, p


@pytest.mark.parametrize("mondrian", [False, True])
def test_prediction_sets_equal_crepes(mondrian):
    from crepes import ConformalClassifier

    rng = np.random.default_rng(1)
    y, p = _draw(rng, 300, 1.5)
    _, q = _draw(rng, 200, 1.5)
    dev_scores = np.where(y, 1 - p, p)
    test_scores = np.column_stack([1 - q, q])
    for alpha in (0.05, 0.1, 0.2):
        ours = conformal.prediction_sets(y, p, q, alpha, mondrian=mondrian)
        cc = ConformalClassifier()
        if mondrian:
            cc.fit(dev_scores, bins=np.where(y, 0, 1))
            theirs = np.column_stack([cc.predict_set(test_scores, bins=np.full(len(q), k), confidence=1 - alpha,
                                                     smoothing=False)[:, k] for k in (0, 1)])  # fmt: skip
        else:
            cc.fit(dev_scores)
            theirs = cc.predict_set(test_scores, confidence=1 - alpha, smoothing=False)
        assert (ours == theirs.astype(bool)).all()


def test_coverage_and_selective_error_hold_their_levels_over_500_draws():
    rng = np.random.default_rng(0)
    for alpha in (0.01, 0.05, 0.1):
        covered, errors, decided = [], [], []
        for _ in range(500):
            y, p = _draw(rng, 2000, 6.0)
            yt, pt = _draw(rng, 2000, 6.0)
            sets = conformal.prediction_sets(y, p, pt, alpha)
            covered.append(np.mean(np.where(yt, sets[:, 0], sets[:, 1])))
            rule = conformal.fit_selective(y, p, alpha, delta=0.1)
            res = conformal.apply_selective(rule, yt, pt)
            decided.append(res["decided"])
            if res["n_decided"]:
                errors.append(res["error"])
        se = np.std(errors) / np.sqrt(len(errors))
        assert np.mean(covered) >= 1 - alpha - 0.003
        assert np.mean(errors) <= alpha + 2 * se and np.mean(decided) > 0.05
        assert np.mean(np.array(errors) > alpha) <= 0.2  # at most about δ of the draws above α


def test_risk_coverage_and_refusals_know_their_answers():
    y = np.array([1, 1, 0, 0, 1], bool)
    p = np.array([0.95, 0.9, 0.2, 0.6, 0.55])
    rc = conformal.risk_coverage(y, p)
    assert rc["coverage"].tolist() == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert rc["error"].round(3).tolist() == [0.0, 0.0, 0.0, 0.25, 0.2]
    assert conformal.fit_selective(y, p, 0.05).threshold == np.inf  # five clips prove nothing at δ = 0.1
    with pytest.raises(LabError, match="within"):
        conformal.fit_selective(y, p + 1, 0.05)
    with pytest.raises(LabError, match="α must"):
        conformal.prediction_sets(y, p, p, 0)


def test_groups_shrink_the_evidence():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(40), 50)
    hard = rng.random(40) < 0.3  # some speakers are hard: their clips fail together
    z = rng.normal(0, 3, 2000) * np.where(hard[groups], 0.3, 1)
    p = 1 / (1 + np.exp(-z))
    y = rng.random(2000) < p
    plain = conformal.fit_selective(y, p, 0.05)
    grouped = conformal.fit_selective(y, p, 0.05, groups=groups)
    assert grouped.effective_n < plain.effective_n and grouped.threshold >= plain.threshold


def test_cli_abstain_and_label_issues_on_simulated_tables(default_ds, capsys):
    from core.cli import main
    from core.scoring import predictions
    from tests import sim_tables

    sim_tables.make_tables(default_ds)
    assert (
        main(["abstain", "--dev", "sim-overconfident-dev", "--test", "sim-overconfident-test", "--alpha", "0.1"]) == 0
    )
    out = capsys.readouterr().out
    dev, _ = predictions.load(predictions.resolve("sim-overconfident-dev"))
    rule = conformal.fit_selective((dev["label"] == "speech").to_numpy(), dev["p_speech"].to_numpy(), 0.1)
    assert f">= {rule.threshold:.4f}" in out and "prediction sets at coverage 0.9" in out
    assert main(["label-issues", "sim-overconfident-test", "--top", "5"]) == 0
    captured = capsys.readouterr()
    assert "flagged (cleanlab" in captured.out and "not an out-of-fold table" in captured.err


def test_decide_and_label_issue_pages(default_ds):
    from streamlit.testing.v1 import AppTest

    from core.scoring import predictions
    from tests import sim_tables
    from tests.conftest import REPO

    sim_tables.make_tables(default_ds)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("views/decide.py").run()
    assert not at.exception
    at.selectbox(key="dec_test").set_value("sim-overconfident-test").run()
    at.number_input(key="dec_alpha").set_value(0.1).run()
    assert not at.exception
    dev, _ = predictions.load(predictions.resolve("sim-overconfident-dev"))
    test, _ = predictions.load(predictions.resolve("sim-overconfident-test"))
    rule = conformal.fit_selective((dev["label"] == "speech").to_numpy(), dev["p_speech"].to_numpy(), 0.1, 0.1)
    res = conformal.apply_selective(rule, (test["label"] == "speech").to_numpy(), test["p_speech"].to_numpy())
    shown = next(m.value for m in at.metric if m.label == "Decided on test")
    assert shown == f"{res['decided']:.1%}"
    at.switch_page("views/label_issues.py").run()
    assert not at.exception
    at.selectbox(key="li_table").set_value("sim-overconfident-test").run()
    flagged = next(m.value for m in at.metric if m.label == "Flagged clips")
    from core.analysis.label_issues import find_label_issues

    assert int(flagged) == int(find_label_issues(test)["flagged"].sum())
