"""Cross-validation by group: folds, out-of-fold tables, zero-shot pairing, the shuffled twin, resume, the page."""

import json
import os
import signal
import time

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.data.splits import load_split
from core.runs import cv, registry
from core.runs.train_config import TrainConfig
from core.scoring import predictions
from tests.conftest import REPO, wait_for

TINY = {"epochs": 1, "max_train_clips": 32, "max_dev_clips": 24, "batch_size": 16}


def test_group_folds_hold_out_whole_groups_once(default_ds):
    m = default_ds.manifest
    fold = cv.fold_assignment(m, cv.CVConfig(folds="4"))
    assert sorted(fold.unique()) == [0, 1, 2, 3]
    assert (m.assign(fold=fold).groupby("group_id")["fold"].nunique() == 1).all()  # a group never split
    assert (m.assign(fold=fold).groupby("base_clip_id")["fold"].nunique() == 1).all()
    assert (m.assign(fold=fold).groupby("fold")["label"].nunique() == 2).all()  # label-stratified
    loso = cv.fold_assignment(m, cv.CVConfig(folds="loso"))
    speakers = m.loc[m["label"] == "speech", "group_id"].unique()
    assert loso.nunique() == len(speakers)
    held = m.assign(fold=loso)
    assert (held[held["label"] == "speech"].groupby("fold")["group_id"].nunique() == 1).all()  # one speaker each
    assert (held.groupby("group_id")["fold"].nunique() == 1).all()  # every source held out exactly once too
    shuffled = cv.fold_assignment(m, cv.CVConfig(folds="4", shuffled=True))
    assert (m.assign(fold=shuffled).groupby("group_id")["fold"].nunique() > 1).any()  # rows, not groups


def test_fold_splits_carve_dev_from_the_training_groups(default_ds):
    m = default_ds.manifest
    cfg = cv.CVConfig(folds="4")
    fold = cv.fold_assignment(m, cfg)
    for k in range(4):
        split = cv.fold_split(m, fold, k, cfg)
        assert set(split[fold == k]) == {"test"} and set(split[fold != k]) == {"train", "dev"}
        parts = m.assign(split=split.to_numpy()).groupby("group_id")["split"].nunique()
        assert (parts == 1).all()
    with pytest.raises(Exception, match="at least 20 groups|use fewer folds"):
        cv.fold_assignment(m, cv.CVConfig(folds="20"))


@pytest.fixture(scope="module")
def finished_cv(default_ds):
    cv_id = cv.create(TrainConfig(**TINY), cv.CVConfig(folds="4", parallel=2))
    t0 = time.time()
    while time.time() - t0 < 900:  # a poller at 10 ms never sees finished before the out-of-fold table
        if cv.status(cv_id)["state"] in ("finished", "failed", "cancelled"):
            break
        time.sleep(0.01)
    assert cv.status(cv_id)["state"] == "finished", cv.status(cv_id)
    predictions.load(predictions.resolve(f"{cv_id}-oof-s0"))  # there, whole, the moment finished shows
    return cv_id


def test_out_of_fold_scores_every_clip_once_by_the_fold_that_held_it_out(default_ds, finished_cv):
    info = cv.info(finished_cv)
    name = f"{finished_cv}-oof-s0"
    table, meta = predictions.load(predictions.resolve(name))
    assert sorted(table["clip_id"]) == sorted(default_ds.manifest["clip_id"])  # every clip exactly once
    assert meta["split_name"] == f"cv:{finished_cv}" and meta["part"] == "oof"
    for run_id, where in info["run_fold"].items():
        cfg = registry.config(run_id)
        split = load_split(default_ds, cfg["split"])
        m = default_ds.manifest.assign(split=split.to_numpy())
        train_groups = set(m.loc[m["split"].isin(["train", "dev"]), "group_id"])
        test_groups = set(m.loc[m["split"] == "test", "group_id"])
        assert not train_groups & test_groups  # no fold trains on a group it tests
        assert cfg["provenance"]["split_status"] == "clean"  # the fold's audit, recorded with its run
        fold_rows = table[table["fold"] == where["fold"]]
        assert set(fold_rows["clip_id"]) == set(m.loc[m["split"] == "test", "clip_id"])
        assert set(fold_rows["run"]) == {run_id}


def test_zero_shot_pairs_with_the_fine_tuned_table(finished_cv):
    from core.analysis.compare import compare
    from core.analysis.groups import per_fold, per_group

    path = cv.zero_shot(finished_cv, "silero-vad")
    zs, meta = predictions.load(path)
    ft, _ = predictions.load(predictions.resolve(f"{finished_cv}-oof-s0"))
    assert meta["zero_shot"] and set(zs["clip_id"]) == set(ft["clip_id"])
    assert (zs.set_index("clip_id")["fold"].sort_index() == ft.set_index("clip_id")["fold"].sort_index()).all()
    c = compare(ft, zs)
    assert c.n_clips == len(ft) and c.n_groups == ft["group_id"].nunique()
    assert len(per_fold(zs)) == 4 and per_group(zs)["accuracy"].is_monotonic_increasing
    assert set(cv.tables(finished_cv)) >= {path.stem, f"{finished_cv}-oof-s0"}


def test_the_shuffled_twin_is_leaky_by_construction(default_ds, finished_cv):
    twin = cv.create_twin(finished_cv, launch_worker=False)
    info = cv.info(twin)
    assert info["twin_of"] == finished_cv and cv.twin(finished_cv) == twin
    assert all(f["audit"] != "clean" and "group_overlap" in f["audit"] for f in info["folds"])
    assert all(registry.config(r)["provenance"]["leaky_override"] for r in info["runs"])  # recorded with every run


def test_a_planted_group_cue_is_rewarded_by_shuffled_folds_only(tmp_path, data_dir):
    """Noise with one tone per group, labels drawn per group: only recognising a group predicts its label.

    Grouped folds never test a group they trained on, so the lab base model must stay near
    chance; the shuffled twin tests groups it trained on, and recognising their tones is enough.
    """
    from sklearn.metrics import roc_auc_score

    from core.analysis.stats import clustered_mean_ci
    from core.data.importers import import_dataset
    from core.data.planted import write_planted_corpus

    import_dataset("csv", write_planted_corpus(tmp_path / "planted"), "planted-cue")
    grouped = cv.create(TrainConfig(dataset="planted-cue", epochs=40), cv.CVConfig(folds="4", parallel=2))
    assert wait_for(cv.status, grouped, timeout=1200)["state"] == "finished", cv.status(grouped)
    shuffled = cv.create_twin(grouped)
    assert wait_for(cv.status, shuffled, timeout=1200)["state"] == "finished", cv.status(shuffled)
    scores = {}
    for name, cv_id in (("grouped", grouped), ("shuffled", shuffled)):
        t, _ = predictions.load(cv.out_of_fold(cv_id, 0))
        assert t["clip_id"].is_unique and len(t) == 16 * 24
        speech = t["label"] == "speech"
        right = ((t["p_speech"] >= 0.5) == speech).to_numpy(dtype=float)
        # accuracy with its 95% CI clustered by group (a held-out group tends to be all right or all wrong)
        scores[name] = (*clustered_mean_ci(right, t["group_id"].to_numpy()), roc_auc_score(speech, t["logit"]))
    # groups it trained on: ranked near perfectly, and its accuracy's lower bound well above chance (the
    # real-voice base model starts further from noise and tones than the synthetic one did: 0.80, was 0.85)
    assert scores["shuffled"][1] >= 0.75 and scores["shuffled"][3] >= 0.95, scores
    assert scores["grouped"][1] < 0.5 < scores["grouped"][2], scores  # new groups: chance, as it must be
    assert scores["shuffled"][0] - scores["grouped"][0] >= 0.25, scores


def test_a_killed_fold_resumes_to_the_result_it_would_have_had(default_ds):
    cv_id = cv.create(TrainConfig(**{**TINY, "max_train_clips": 64, "checkpoint_every": 1}), cv.CVConfig(folds="2"))
    info = cv.info(cv_id)
    first = info["runs"][0]
    folder = registry.runs_dir() / first
    t0 = time.time()
    while (
        not (folder / "checkpoint.pt").exists() or registry.status(first)["state"] != "running"
    ) and time.time() - t0 < 300:
        time.sleep(0.05)
    pid = json.loads((folder / "pid.json").read_text())["pid"]
    os.killpg(pid, signal.SIGKILL)  # the fold's trainer dies mid-run
    assert wait_for(cv.status, cv_id, timeout=600)["state"] == "failed"
    assert registry.status(first)["state"] == "failed"
    cv.resume(cv_id)
    assert wait_for(cv.status, cv_id, timeout=600)["state"] == "finished"
    # the same fold trained without interruption gives the same predictions
    clean = registry.create_run(
        TrainConfig.from_dict({k: v for k, v in registry.config(first).items() if k != "provenance"})
    )
    registry.launch(clean)
    assert wait_for(registry.status, clean)["state"] == "finished"
    a = pd.read_csv(folder / "predictions" / "test.csv")
    b = pd.read_csv(registry.runs_dir() / clean / "predictions" / "test.csv")
    np.testing.assert_allclose(a["logit"], b["logit"], atol=1e-5)


def test_the_cross_validate_tab_launches_folds_and_draws_the_forest(default_ds, finished_cv):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("views/runs.py").run()
    assert not at.exception
    at.selectbox(key="cv_zero").set_value("webrtc-vad")  # zero-shot: the folds are scored, nothing trained
    next(b for b in at.button if b.label == "Cross-validate").click().run()
    assert not at.exception, at.exception
    new = at.session_state["cv_pick"]
    assert new != finished_cv and any("webrtc" in t for t in cv.tables(new))
    at.selectbox(key="cv_pick").set_value(finished_cv).run()
    assert not at.exception
    assert any("Accuracy over folds" in m.label for m in at.metric)
    assert len(at.get("plotly_chart")) >= 1  # the forest plot
    assert at.selectbox(key=f"cv_table_{finished_cv}").value.startswith(finished_cv)
