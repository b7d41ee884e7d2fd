"""Per-clip error analysis, tags that persist and exclude clips, and the Errors page (AppTest)."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.analysis.error_analysis import clean_source, confident_errors, consistently_wrong, filter_clips, per_clip
from core.data import annotations
from core.data.splits import make_split, save_split, select_clips
from core.errors import LabError
from core.scoring import predictions
from tests.conftest import REPO

RUNS = [f"errseed{s}-test" for s in range(3)]


@pytest.fixture(scope="module")
def seed_tables(default_ds):
    """Three 'seeds' sharing a per-clip difficulty, so some clips are wrong in every seed."""
    save_split(default_ds, "errsplit", make_split(default_ds.manifest, seed=21), {"seed": 21})
    clips = select_clips(default_ds, "errsplit", "test")
    rng = np.random.default_rng(0)
    sign = np.where(clips["label"] == "speech", 1.0, -1.0)
    difficulty = rng.normal(1.5, 2.0, len(clips))
    for s, name in enumerate(RUNS):
        z = sign * (difficulty + rng.normal(0, 1.0, len(clips)))
        table = predictions.build_table(clips, np.stack([z / 2, -z / 2], 1), detector=f"errseed{s}", seed=s)
        predictions.save(
            table,
            {
                "dataset": default_ds.name,
                "split_name": "errsplit",
                "part": "test",
                "detector": f"errseed{s}",
                "seed": s,
            },
            name=name,
        )
    return {n: predictions.load(predictions.resolve(n))[0] for n in RUNS}


def _independent_ranking(tables, threshold):
    long = pd.concat([t.assign(run=n) for n, t in tables.items()])
    long["wrong"] = (long["logit"] > threshold) != (long["label"] == "speech")
    long["conf"] = np.where(long["wrong"], (long["logit"] - threshold).abs(), np.nan)
    agg = long.groupby("clip_id").agg(frac=("wrong", "mean"), conf=("conf", "mean")).reset_index()
    agg = agg[agg["frac"] >= 0.5].sort_values(["frac", "conf", "clip_id"], ascending=[False, False, True])
    return agg


def test_consistently_wrong_matches_an_independent_computation(seed_tables):
    wide = per_clip(seed_tables, threshold=0.5)
    ref = _independent_ranking(seed_tables, 0.5)
    got = consistently_wrong(wide, 0.5)
    assert list(got["clip_id"]) == list(ref["clip_id"])
    np.testing.assert_allclose(got["frac_wrong"], ref["frac"])
    assert (got["frac_wrong"] == 1.0).sum() > 0  # the planted shared difficulty makes systematic errors


def test_filters_and_confident_errors(seed_tables):
    wide = per_clip(seed_tables, threshold=0.0)
    t = seed_tables[RUNS[1]].set_index("clip_id").loc[wide["clip_id"]]
    wrong = (t["logit"] > 0) != (t["label"] == "speech")
    got = filter_clips(wide, misclassified_in=RUNS[1])
    assert set(got["clip_id"]) == set(wide["clip_id"][wrong.to_numpy()])
    speech_short = filter_clips(wide, labels=["speech"], ranges={"duration_ms": (0, 200)})
    assert (speech_short["label"] == "speech").all() and (speech_short["duration_ms"] <= 200).all()
    ce = confident_errors(wide, RUNS[0], 3.0)
    assert (ce["confidence"] >= 3).all() and (~ce[f"correct · {RUNS[0]}"]).all()
    assert list(ce["confidence"]) == sorted(ce["confidence"], reverse=True)
    # at T = 4 the same decisions are made on logit / 4: confidence is measured there too
    wide4 = per_clip(seed_tables, threshold=0.5, decision_temperature=4.0)
    ce4 = confident_errors(wide4, RUNS[0], 1.0, threshold=0.5, temperature=4.0)
    z = ce4[f"logit · {RUNS[0]}"]
    np.testing.assert_allclose(ce4["confidence"], (z / 4.0 - 0.5).abs())
    assert (ce4["confidence"] >= 1.0).all() and (~ce4[f"correct · {RUNS[0]}"]).all()
    assert len(ce4) < len(confident_errors(wide4, RUNS[0], 1.0, threshold=0.5))  # T = 1 would count more


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_a_tag_persists_and_excludes_the_clip_from_the_next_evaluation(default_ds, seed_tables):
    victim = seed_tables[RUNS[0]]["clip_id"].iloc[3]
    r = _cli("tag", "--dataset", "default", victim, "label wrong", "--note", "sounds like noise")
    assert r.returncode == 0, r.stderr
    assert annotations.tagged(default_ds, ["label wrong"]) == {victim}
    other = seed_tables[RUNS[0]]["clip_id"].iloc[4]
    annotations.set_tag(default_ds, other, "-odd")  # a tag that looks like an option (the page passes --x=TAG)
    with pytest.raises(LabError, match="cannot contain ','"):  # runs list their excluded tags comma-separated
        annotations.set_tag(default_ds, other, "noisy, maybe")
    args = ["--split", "errsplit", "--detector", "webrtc-vad", "--exclude-tags", "label wrong", "--exclude-tags=-odd"]
    r = _cli("evaluate", *args)
    annotations.remove_tag(default_ds, other, "-odd")
    assert r.returncode == 0, r.stderr[-2000:]
    path = r.stdout.strip().splitlines()[-1].removeprefix("predictions: ")
    table, meta = predictions.load(path)
    assert not {victim, other} & set(table["clip_id"]) and len(table) == len(seed_tables[RUNS[0]]) - 2
    assert sorted(meta["excluded_clips"]) == sorted([victim, other]) and meta["excluded_tags"] == [
        "label wrong",
        "-odd",
    ]
    r = _cli("errors", *RUNS, "--csv", str(REPO / ".pytest_cache" / "errors.csv"))
    assert r.returncode == 0 and "wrong in ≥ 50%" in r.stdout
    annotations.remove_tag(default_ds, victim, "label wrong")


def test_errors_page_filters_ranks_tags_and_the_tag_survives_a_restart(default_ds, seed_tables):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("views/errors.py").run()
    at.multiselect(key="err_tables").set_value(RUNS).run()
    at.number_input(key="err_threshold").set_value(0.5).run()
    assert not at.exception
    at.selectbox(key="err_mis").set_value(f"misclassified in {RUNS[2]}").run()
    assert not at.exception
    t = seed_tables[RUNS[2]]
    expected = set(t["clip_id"][(t["logit"] > 0.5) != (t["label"] == "speech")])
    shown = at.dataframe[0].value
    assert set(shown["clip_id"]) == expected and len(shown) == len(expected)
    ranking = at.dataframe[1].value
    assert list(ranking["clip_id"]) == list(_independent_ranking(seed_tables, 0.5)["clip_id"])[:200]
    assert len(at.get("audio")) >= 1 and not at.exception
    players = len(at.get("audio"))
    at.toggle(key="err_grid").set_value(True).run()  # the filtered clips as a grid: a thumbnail and player each
    assert not at.exception and len(at.get("audio")) == players + min(12, len(expected))
    assert len(at.get("image")) >= min(12, len(expected))
    selected = shown.iloc[0]["clip_id"]
    at.selectbox(key="err_tag_choice").set_value("ambiguous")
    at.text_input(key="err_tag_note").set_value("planted by the test")
    next(b for b in at.button if b.label == "Tag clip").click().run()
    assert not at.exception and any("tagged" in s.value for s in at.success)

    restarted = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    restarted.switch_page("views/errors.py").run()
    restarted.multiselect(key="err_tables").set_value(RUNS).run()
    table = restarted.dataframe[0].value.set_index("clip_id")
    assert table.loc[selected, "tags"] == "ambiguous"
    saved = annotations.load(default_ds)
    assert json.loads(saved.to_json(orient="records"))[-1]["note"] == "planted by the test"
    annotations.remove_tag(default_ds, selected, "ambiguous")


def test_clean_source_is_the_longest_clean_clip_of_the_family(default_ds):
    m = default_ds.manifest
    noisy = m[(m["duration_ms"] == 200) & (m["snr_db"] == 0)].iloc[0]
    family = m[m["base_clip_id"] == noisy["base_clip_id"]]
    longest_clean = family[family["snr_db"].isna() & (family["duration_ms"] == family["duration_ms"].max())]
    assert len(longest_clean) == 1
    assert clean_source(m, default_ds.info, noisy["clip_id"]) == (None, longest_clean.iloc[0]["clip_id"])
    assert clean_source(m, default_ds.info, longest_clean.iloc[0]["clip_id"]) == (None, None)
    with pytest.raises(LabError, match="no-such-clip"):
        clean_source(m, default_ds.info, "no-such-clip")


def test_clean_source_of_a_condition_set_points_into_its_source_dataset():
    m = pd.DataFrame(
        {
            "clip_id": ["v1", "v2"],
            "base_clip_id": ["b", "b"],
            "snr_db": [0.0, np.nan],
            "duration_ms": [200, 1000],
            "source_clip_id": ["orig-7", "orig-7"],
        }
    )
    info = {"source": {"dataset": "default", "split": "s", "part": "test"}}
    assert clean_source(m, info, "v1") == ("default", "orig-7")
    assert clean_source(m, {}, "v1") == (None, "v2")  # no recorded source: the family's clean member
