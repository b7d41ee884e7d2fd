"""Study gates (pass / fail / undecided from intervals) and the recipe that rebuilds a report's tables."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from core.errors import LabError
from core.report import gates as G
from core.scoring import predictions
from tests import sim_tables
from tests.conftest import REPO


def test_verdicts_follow_the_interval_not_the_estimate():
    assert G.verdict(">=", 0.5, 0.55, 0.7) == "pass"
    assert G.verdict(">=", 0.5, 0.3, 0.45) == "fail"
    assert G.verdict(">=", 0.5, 0.45, 0.6) == "undecided"  # straddles: more groups would tell
    assert G.verdict("<=", 0.2, 0.05, 0.15) == "pass"
    assert G.verdict("<=", 0.2, 0.25, 0.3) == "fail"
    assert G.verdict("<=", 0.2, 0.1, 0.3) == "undecided"
    assert G.verdict(">=", 0.5, float("nan"), 0.9) == "undecided"
    with pytest.raises(LabError, match="metric"):
        G.Gate("accuracy", ">=", 0.5).check()
    with pytest.raises(LabError, match="comparison"):
        G.Gate("ece", "<", 0.2).check()


def test_gates_are_judged_on_the_study_tables_with_their_intervals(default_ds):
    from core.analysis.stats import balanced_accuracy_ci, clustered_accuracy_ci
    from core.data.audit import audit_split
    from core.decision import correct

    sim_tables.make_tables(default_ds, split_name="gatesplit", seed=4)
    test, _ = predictions.load(predictions.resolve("sim-calibrated-test"))
    ok = np.asarray(correct(test["label"], test["logit"]), bool)
    est, lo, hi = balanced_accuracy_ci(test["label"].to_numpy(), ok, test["group_id"].to_numpy())
    sp = test["label"].to_numpy() == "speech"
    r_est, r_lo, r_hi = clustered_accuracy_ci(ok[sp], test["group_id"].to_numpy()[sp])
    gates = [
        G.Gate("balanced_accuracy", ">=", lo - 0.01, "sim-calibrated"),  # the whole interval above: pass
        G.Gate("balanced_accuracy", ">=", hi + 0.01, "sim-calibrated"),  # the whole interval below: fail
        G.Gate("balanced_accuracy", ">=", est, "sim-calibrated"),  # at the estimate: undecided
        G.Gate("recall_speech", ">=", 0.5, "sim-calibrated"),
        G.Gate("ece", "<=", 0.2),
        G.Gate("leakage", "<=", 0),
        G.Gate("seed_spread", "<=", 0.03),
    ]
    G.save_gates(default_ds.name, "gatesplit", gates)
    assert G.load_gates(default_ds.name, "gatesplit") == gates  # saved with the study, read back whole
    t = G.judge(default_ds.name, "gatesplit")
    bacc = t[t["gate"].str.startswith("balanced accuracy")]
    assert bacc["verdict"].tolist() == ["pass", "fail", "undecided"]
    assert bacc["estimate"].iloc[0] == pytest.approx(est) and bacc["lower"].iloc[0] == pytest.approx(lo)
    rec = t[t["gate"].str.startswith("speech recall")].iloc[0]
    assert (rec["estimate"], rec["lower"], rec["upper"]) == pytest.approx((r_est, r_lo, r_hi))
    ece = t[t["gate"].str.startswith("ECE")]
    from core.analysis.calibration import ece as ece_of

    mine = ece[ece["detector"].str.startswith("sim-calibrated")].iloc[0]
    assert len(ece) == 2 and mine["estimate"] == pytest.approx(
        ece_of((test["label"] == "speech").astype(float), test["p_speech"])
    )
    assert (ece["lower"] >= 0).all() and (ece["lower"] < ece["upper"]).all() and (ece["upper"] <= 1).all()
    assert t[t["gate"].str.startswith("leakage")]["verdict"].tolist() == ["undecided"]  # not audited yet
    audit_split(default_ds, "gatesplit", content=False)
    t = G.judge(default_ds.name, "gatesplit")
    assert t[t["gate"].str.startswith("leakage")]["verdict"].tolist() == ["pass"]
    G.gates_path(default_ds.name, "gatesplit").write_text('{"gates": [{"metric": "ece"}]}')
    with pytest.raises(LabError, match="gates.json"):
        G.load_gates(default_ds.name, "gatesplit")
    G.save_gates(default_ds.name, "gatesplit", gates)


def test_report_opens_with_its_gates_and_ends_with_its_recipe(default_ds, tmp_path):
    from core.report.study import write_report

    if not G.load_gates(default_ds.name, "gatesplit"):
        sim_tables.make_tables(default_ds, split_name="gatesplit", seed=4)
        G.save_gates(default_ds.name, "gatesplit", [G.Gate("ece", "<=", 0.2)])
    path = write_report(default_ds.name, "gatesplit", tmp_path / "rep")
    text = path.read_text()
    assert text.index("<h2>Study gates") < text.index("<h2>Dataset and split") < text.index("<h2>Recipe")
    assert "undecided" in text or "pass" in text or "fail" in text
    recipe = (tmp_path / "rep" / "recipe.sh").read_text()
    assert "python -m core data build-default --name default" in recipe
    assert "python -m core report --dataset default --split gatesplit" in recipe
    assert pd.read_csv(tmp_path / "rep" / "tables" / "gates.csv")["verdict"].isin(["pass", "fail", "undecided"]).all()


def _cli(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO, env=env, check=True, capture_output=True)


def test_the_recipe_rebuilds_the_same_tables_on_a_fresh_data_folder(tmp_path):
    from core.report.recipe import recipe, script

    first = {**os.environ, "LAB_DATA_DIR": str(tmp_path / "a" / "data")}
    _cli(first, "data", "build-default")
    _cli(first, "data", "split", "--name", "s", "--seed", "3")
    _cli(first, "evaluate", "--split", "s", "--part", "test", "--detector", "silero-vad")
    old = os.environ.get("LAB_DATA_DIR")
    os.environ["LAB_DATA_DIR"] = first["LAB_DATA_DIR"]
    try:
        steps = recipe("default", "s")
        before = {r.table: predictions.load(r.path)[0] for r in predictions.describe_tables().itertuples()}
    finally:
        if old is None:
            os.environ.pop("LAB_DATA_DIR")
        else:
            os.environ["LAB_DATA_DIR"] = old
    assert [w.split()[0] for w, _ in steps] == ["dataset", "split", "table", "this"]
    sh = tmp_path / "recipe.sh"
    sh.write_text(script(steps[:-1]))  # everything but the report itself
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"  # `python` = this venv's
    fresh = {**os.environ, "LAB_DATA_DIR": str(tmp_path / "b" / "data"), "PATH": path}
    done = subprocess.run(["bash", str(sh)], cwd=REPO, env=fresh, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    os.environ["LAB_DATA_DIR"] = fresh["LAB_DATA_DIR"]
    try:
        after = [predictions.load(r.path)[0] for r in predictions.describe_tables().itertuples()]
    finally:
        if old is None:
            os.environ.pop("LAB_DATA_DIR")
        else:
            os.environ["LAB_DATA_DIR"] = old
    (a,) = before.values()
    (b,) = after
    pd.testing.assert_frame_equal(
        a[["clip_id", "label", "split"]].reset_index(drop=True), b[["clip_id", "label", "split"]].reset_index(drop=True)
    )
    np.testing.assert_allclose(a["logit"].to_numpy(), b["logit"].to_numpy(), atol=1e-5)


def test_report_page_writes_a_gate_and_the_runs_page_judges_it(default_ds):
    from streamlit.testing.v1 import AppTest

    sim_tables.make_tables(default_ds, split_name="gatesplit", seed=4)
    G.save_gates(default_ds.name, "gatesplit", [])
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("views/report.py").run()
    at.selectbox(key="dataset_picker").set_value(default_ds.name).run()
    at.selectbox(key="rep_split").set_value("gatesplit").run()
    at.selectbox(key="gate_metric").set_value("recall_nonspeech")
    at.number_input(key="gate_bound").set_value(0.95)
    next(b for b in at.button if b.label == "Add gate").click().run()
    assert not at.exception
    assert G.load_gates(default_ds.name, "gatesplit") == [G.Gate("recall_nonspeech", ">=", 0.95)]
    judged = next(d.value for d in at.dataframe if "verdict" in d.value)
    assert set(judged["verdict"].str.split().str[-1]) <= {"pass", "fail", "undecided"} and len(judged) == 2
    at.switch_page("views/runs.py").run()
    assert not at.exception
