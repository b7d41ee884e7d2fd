"""Relabels and planted flips: a dated layer over the manifest (never an edit of it) that survives a
reload and that splits, runs and scoring use only when asked, recording which labels they used."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from core.data import relabels
from core.data.audit import audit_split
from core.data.datasets import load_dataset
from core.data.planted_flips import choose_flips, plant_flips, planted_truth
from core.data.splits import make_split, save_split, select_clips
from core.errors import LabError
from core.runs import registry
from core.runs.training import TrainConfig, train_run
from core.scoring import predictions
from tests.conftest import REPO

TINY = dict(max_train_clips=48, max_dev_clips=24, epochs=1, batch_size=16)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def flipped(default_ds):
    ds = plant_flips("default", "default-flips", share=0.08, seed=3)
    save_split(ds, "s", make_split(ds.manifest, seed=0), {"seed": 0})
    audit_split(ds, "s", content=False)
    return ds


@pytest.fixture(scope="module")
def oof_table(flipped):
    """An out-of-fold-like table of the flipped copy whose scores follow the true labels."""
    from tests.sim_tables import simulated_logits

    clips = select_clips(flipped, "s", "all", labels="original")
    truth = planted_truth(flipped).set_index("clip_id")["true_label"]
    true_labels = clips["clip_id"].map(truth).fillna(clips["label"]).to_numpy()
    z = simulated_logits(true_labels, 1.0, np.random.default_rng(0), sigma=3.0)
    table = predictions.build_table(clips, np.stack([z / 2, -z / 2], axis=1), detector="sim-oof")
    predictions.save(table, {"dataset": flipped.name, "split_name": "s", "part": "oof", "detector": "sim-oof"},
                     name="flips-oof")  # fmt: skip
    return table


def test_flips_are_planted_by_group_in_a_copy(default_ds, flipped):
    before = _sha(default_ds.root / "manifest.csv")
    truth = planted_truth(flipped)
    m, orig = flipped.manifest.set_index("clip_id"), default_ds.manifest.set_index("clip_id")
    changed = m.index[m["label"] != orig.loc[m.index, "label"]]
    assert sorted(changed) == sorted(truth["clip_id"])  # exactly the recorded clips, and their truth is the original
    assert (orig.loc[truth["clip_id"], "label"].to_numpy() == truth["true_label"].to_numpy()).all()
    assert len(truth) == round(0.08 * len(m))
    per_group = truth.groupby("group_id").size().reindex(m["group_id"].unique(), fill_value=0)
    sizes = m.groupby("group_id").size()
    assert (abs(per_group - 0.08 * sizes.loc[per_group.index]) < 1).all()  # the same share in every group
    assert _sha(default_ds.root / "manifest.csv") == before  # the source is untouched
    cid = truth["clip_id"].iloc[0]
    np.testing.assert_array_equal(flipped.load_clip(cid).samples, default_ds.load_clip(cid).samples)  # audio in place
    with pytest.raises(LabError, match="share"):
        choose_flips(m.reset_index(), 0.6)
    with pytest.raises(LabError, match="already exists"):
        plant_flips("default", "default-flips")


def test_relabels_are_dated_survive_a_reload_and_never_touch_the_manifest(flipped):
    truth = planted_truth(flipped)
    before = _sha(flipped.root / "manifest.csv")
    a, b, c = truth["clip_id"].iloc[:3]
    for cid in (a, b):
        relabels.decide(flipped, cid, "relabel", truth.set_index("clip_id").loc[cid, "true_label"], note="heard it")
    relabels.decide(flipped, c, "dismiss")
    relabels.decide(flipped, b, "dismiss", note="changed my mind")  # the last decision stands
    again = load_dataset(flipped.name)  # a reload: nothing held in memory
    assert _sha(again.root / "manifest.csv") == before
    assert len(relabels.log(again)) == 4 and list(relabels.current(again)["clip_id"]) == [a, c, b]
    assert relabels.corrected_labels(again).to_dict() == {a: truth.set_index("clip_id").loc[a, "true_label"]}
    assert all(relabels.log(again)["created"].str.match(r"\d{4}-\d\d-\d\dT"))
    all_clips = select_clips(again, "s", "all", labels="corrected")
    row = all_clips.set_index("clip_id").loc[a]
    assert row["label"] != row["original_label"] and all_clips.attrs["relabeled"] == [a]
    assert all_clips.attrs["label_provenance"]["labels"] == "corrected"
    assert (select_clips(again, "s", "all")["label"] == again.manifest["label"]).all()  # originals by default
    with pytest.raises(LabError, match="already labelled"):
        relabels.decide(again, a, "relabel", again.row(a)["label"])
    with pytest.raises(LabError, match="no clip"):
        relabels.decide(again, "no-such-clip", "dismiss")
    with pytest.raises(LabError, match="labels must be"):
        select_clips(again, "s", "all", labels="mine")


def test_a_run_trained_on_corrected_labels_records_them(flipped):
    truth = planted_truth(flipped).set_index("clip_id")["true_label"]
    split = select_clips(flipped, "s", "all")
    for cid in split.loc[split["split"].isin(["train", "test"]) & split["clip_id"].isin(truth.index), "clip_id"]:
        if relabels.current(flipped).set_index("clip_id").get("decision", pd.Series()).get(cid) != "relabel":
            relabels.decide(flipped, cid, "relabel", truth[cid])
    fixed = relabels.corrected_labels(flipped)
    run_id = registry.create_run(TrainConfig(dataset=flipped.name, split="s", labels="corrected", **TINY))
    train_run(registry.runs_dir() / run_id)
    cfg = registry.config(run_id)
    assert cfg["labels"] == "corrected"
    assert cfg["provenance"]["labels"] == "corrected"
    assert cfg["provenance"]["relabels_fingerprint"] == relabels.fingerprint(flipped)
    excluded = json.loads((registry.runs_dir() / run_id / "excluded.json").read_text())
    train_ids = set(select_clips(flipped, "s", "train")["clip_id"])
    assert set(excluded["relabeled"]["train"]) <= set(fixed.index) & train_ids and excluded["relabeled"]["train"]
    table, meta = predictions.load(predictions.resolve(f"run-{run_id}-test"))
    assert meta["labels"] == "corrected" and meta["relabeled_clips"] > 0
    hit = table["clip_id"].isin(fixed.index)
    assert (table.loc[hit, "label"].to_numpy() == table.loc[hit, "clip_id"].map(fixed).to_numpy()).all()
    plain = registry.create_run(TrainConfig(dataset=flipped.name, split="s", **TINY))
    assert registry.config(plain)["provenance"]["labels"] == "original"


def test_cli_relabels_and_lists(flipped, capsys):
    from core.cli import main

    cid = flipped.manifest["clip_id"].iloc[-1]
    to = "nonspeech" if flipped.row(cid)["label"] == "speech" else "speech"
    assert main(["relabel", "--dataset", flipped.name, cid, "--to", to, "--note", "cli"]) == 0
    assert cid in capsys.readouterr().out
    assert relabels.corrected_labels(flipped)[cid] == to
    assert main(["relabel", "--dataset", flipped.name, cid]) != 0  # neither --to nor --dismiss
    assert "--to speech|nonspeech" in capsys.readouterr().err


def test_label_issues_page_confirms_a_flag_and_the_data_page_shows_it(flipped, oof_table):
    from streamlit.testing.v1 import AppTest

    from core.analysis.label_issues import find_label_issues

    table = oof_table
    issues = find_label_issues(table)
    undecided = set(relabels.current(flipped)["clip_id"])
    first = issues[issues["flagged"] & ~issues["clip_id"].isin(undecided)].iloc[0]
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("views/label_issues.py").run()
    at.selectbox(key="li_table").set_value("flips-oof").run()
    assert not at.exception
    assert any("planted flips" in i.value for i in at.info)
    at.selectbox(key="li_list_pick").set_value(first["clip_id"]).run()
    at.text_input(key="li_verdict_note").input("voice in the background").run()
    next(b for b in at.button if b.label.startswith("Relabel")).click().run()
    assert not at.exception
    standing = relabels.current(load_dataset(flipped.name)).set_index("clip_id")
    assert standing.loc[first["clip_id"], "decision"] == "relabel"
    assert standing.loc[first["clip_id"], "label"] != first["label"]  # the other label
    at.switch_page("views/data.py").run()
    at.selectbox(key="dataset_picker").set_value(flipped.name).run()
    assert not at.exception
    assert any(e.label.startswith("Relabels:") for e in at.expander)


def test_the_report_lists_label_issues_from_the_out_of_fold_table(flipped, oof_table, tmp_path):
    from core.analysis.label_issues import find_label_issues
    from core.report.study import write_report

    path = write_report(flipped.name, "s", tmp_path / "rep")
    text = path.read_text()
    assert "<h2>Trust: decide or abstain, and label issues" in text and "planted flips" in text
    listed = pd.read_csv(tmp_path / "rep" / "tables" / "label_issues.csv")
    table, _ = predictions.load(predictions.resolve("flips-oof"))
    expected = find_label_issues(table)
    assert listed["clip_id"].tolist() == expected[expected["flagged"]]["clip_id"].head(15).tolist()
    assert "Relabels:" in text
