"""Calibration, Thresholds and Compare: the pages (AppTest) and their CLI mirrors on simulated tables."""

import json
import subprocess
import sys

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.analysis import metrics
from core.analysis.calibration import TemperatureScaling
from core.scoring import predictions
from tests import sim_tables
from tests.conftest import REPO

APP = str(REPO / "app.py")


@pytest.fixture(scope="module")
def tables(default_ds):
    return sim_tables.make_tables(default_ds)


def _page(path):
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(path).run()
    assert not at.exception
    return at


def _metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_threshold_slider_changes_accuracy_to_the_independent_value(tables):
    at = _page("views/thresholds.py")
    at.selectbox(key="thr_test").set_value("sim-overconfident-test").run()
    assert not at.exception
    assert at.selectbox(key="thr_dev_sim-overconfident-test").value == "sim-overconfident-dev"  # paired
    test = sim_tables.load("sim-overconfident-test")
    y, z = test["label"].to_numpy(), test["logit"].to_numpy()
    assert float(_metric(at, "Accuracy")) == pytest.approx(metrics.summary(y, z)["accuracy"], abs=5e-5)
    for t in (2.5, -4.0):
        at.slider(key="thr_t").set_value(t).run()
        expected = np.mean((z > t) == (y == "speech"))
        assert float(_metric(at, "Accuracy")) == pytest.approx(expected, abs=5e-5)
        assert at.number_input(key="thr_t_num").value == pytest.approx(t)  # the typed field follows
    at.number_input(key="thr_t_num").set_value(-3.25).run()  # a typed value moves the decision too
    assert float(_metric(at, "Accuracy")) == pytest.approx(np.mean((z > -3.25) == (y == "speech")), abs=5e-5)
    # the clips that flip between the default rule and this one: exactly those whose decision differs
    flips = next(d.value for d in at.dataframe if "flip" in d.value.columns)
    changed = (z > 0) != (z > -3.25)
    assert len(flips) == min(300, int(changed.sum())) and set(flips["clip_id"]) <= set(test["clip_id"][changed])
    fixed = ((z > -3.25) == (y == "speech")) & changed
    assert any(f"{int(changed.sum())} clips flip: {int(fixed.sum())} now right" in c.value for c in at.caption)
    # the dev-fitted temperature: the field moves to it, the decision is logit / T > threshold
    at.button(key="thr_fit_t").click().run()
    dev = sim_tables.load("sim-overconfident-dev")
    t_dev = TemperatureScaling().fit(dev["logit"], dev["label"] == "speech").temperature
    temperature = at.number_input(key="thr_temperature").value
    assert temperature == pytest.approx(t_dev, abs=0.006)
    assert 4.5 < t_dev < 7.5  # planted over-confidence T = 6
    expected = np.mean((z / temperature > -3.25) == (y == "speech"))
    assert float(_metric(at, "Accuracy")) == pytest.approx(expected, abs=5e-5)
    # "apply dev threshold" moves the threshold to the best balanced accuracy on dev at this T
    at.button(key="thr_apply_dev").click().run()
    from core.analysis.thresholds import ThresholdIndex

    best = ThresholdIndex.build(dev["label"].to_numpy() == "speech", dev["logit"].to_numpy()).best(
        "balanced_accuracy", temperature
    )
    assert at.number_input(key="thr_t_num").value == pytest.approx(round(best, 2))
    transfer = next(d.value for d in at.dataframe if "chosen on" in d.value.columns)
    assert list(transfer["chosen on"]) == ["-", "dev", "dev", "test (optimistic)"]
    assert not at.exception


def test_calibration_page_fits_on_dev_and_warns_when_judged_on_it(tables):
    at = _page("views/calibration.py")
    at.selectbox(key="cal_test").set_value("sim-overconfident-test").run()
    assert not at.exception
    assert at.selectbox(key="cal_dev_sim-overconfident-test").value == "sim-overconfident-dev"
    text = " ".join(m.value for m in at.markdown)
    assert "temperature = " in text
    shown = at.dataframe[0].value.set_index(["split", "stage"])
    assert shown.loc[("test", "after"), "ece"] < shown.loc[("test", "before"), "ece"]
    assert len(at.get("plotly_chart")) == 2
    assert not any("judged on" in w.value for w in at.warning)
    at.selectbox(key="cal_dev_sim-overconfident-test").set_value("sim-overconfident-test").run()  # test itself
    assert any("fitted on clips it is judged on" in w.value for w in at.warning)
    at.slider(key="cal_bins").set_value(30).run()
    assert any("fewer than 20 clips" in w.value for w in at.warning)


def test_peers_are_the_tables_scored_on_the_same_clips(tables):
    peers = predictions.peers("sim-calibrated-test")
    assert "sim-overconfident-test" in peers
    assert not {"sim-calibrated-test", "sim-calibrated-dev", "sim-overconfident-dev"} & set(peers)
    assert predictions.peers("no-such-table") == []


def test_compare_page_shows_mcnemar_clustered_ci_and_power(tables, default_ds):
    # the newest test table is of other clips: B must still default to one of A's clips
    other = sim_tables.load("sim-calibrated-test").assign(clip_id=lambda t: "other-" + t["clip_id"])
    path = predictions.save(other, {"dataset": "other", "split_name": "s", "part": "test", "detector": "x"}, name="zz")
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["cmp_a"] = "sim-calibrated-test"
    try:
        at.run()
        at.switch_page("views/compare.py").run()
    finally:  # other tests' pages must not meet a table of a dataset that does not exist
        path.unlink()
        path.with_suffix(".json").unlink()
    assert at.selectbox(key="cmp_b").value == "sim-overconfident-test"  # defaults to a table of the same clips
    assert not at.exception and not at.error
    assert not at.exception
    assert float(_metric(at, "Accuracy A")) == pytest.approx(
        metrics.summary(*sim_tables.load("sim-calibrated-test")[["label", "logit"]].T.to_numpy())["accuracy"],
        abs=5e-5,
    )
    assert any("groups" in m.value and "clips" in m.value for m in at.markdown)
    # the verdict line and the discordant clips behind McNemar's test, one list per side
    assert any(i.value.startswith("**Verdict.**") for i in at.info)
    from core.analysis.compare import pair

    p = pair(sim_tables.load("sim-calibrated-test"), sim_tables.load("sim-overconfident-test"))
    lists = [d.value for d in at.dataframe if {"logit_a", "logit_b"} <= set(d.value.columns)]
    assert [len(x) for x in lists] == [
        min(300, int((p["correct_a"] & ~p["correct_b"]).sum())),
        min(300, int((~p["correct_a"] & p["correct_b"]).sum())),
    ]
    at.multiselect(key="agg_tables").set_value(["sim-calibrated-test", "sim-overconfident-test"]).run()
    assert not at.exception
    summary = next(d.value for d in at.dataframe if "metric" in d.value.columns).set_index("metric")
    assert summary.loc["accuracy", "seeds"] == 2


def _cli(*args):
    r = subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def test_cli_calibrate_compare_aggregate_write_next_to_the_predictions(tables):
    test_path = predictions.resolve("sim-overconfident-test")
    out = predictions.analysis_dir(test_path)
    _cli("calibrate", "--dev", "sim-overconfident-dev", "--test", "sim-overconfident-test")
    report = json.loads((out / "calibration-temperature.json").read_text())
    assert (
        report["fitted_on"] == predictions.resolve("sim-overconfident-dev").name
        and 4.5 < report["params"]["temperature"] < 7.5
    )
    calibrated = predictions.load(out / "calibrated-temperature.csv")[0]
    np.testing.assert_allclose(calibrated["logit_calibrated"], calibrated["logit"] / report["params"]["temperature"])
    assert test_path not in [p for p in predictions.list_tables() if p.parent == out]

    r = _cli("compare", "sim-calibrated-test", "sim-overconfident-test", "--n-boot", "500")
    assert "McNemar p" in r.stdout and "clustered by group" in r.stdout
    saved = json.loads(
        (
            predictions.analysis_dir(predictions.resolve("sim-calibrated-test")) / "compare-sim-overconfident-test.json"
        ).read_text()
    )
    assert sum(map(sum, saved["table"])) == saved["n_clips"]

    _cli("aggregate", "sim-calibrated-test", "sim-calibrated-dev", "--name", "simagg")
    assert (predictions.results_root() / "aggregates" / "simagg.csv").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "core", "compare", "no-such-table", "sim-calibrated-test"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "no predictions table 'no-such-table'" in bad.stderr
