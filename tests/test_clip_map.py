"""The map of clips: embeddings that hear the difference between speech and non-speech, a cached map
reused only for its own table, region statistics with known answers, and the page."""

import numpy as np
import pandas as pd
import pytest

from core.analysis import clip_map
from core.errors import LabError
from core.scoring import predictions
from tests import sim_tables
from tests.conftest import REPO


@pytest.fixture(scope="module")
def mapped(default_ds) -> str:
    sim_tables.make_tables(default_ds, split_name="mapsplit", seed=9)
    from core.detectors import make_detector

    clip_map.build_map("sim-calibrated-test", make_detector("lab-base"), "lab-base")
    return "sim-calibrated-test"


def test_region_statistics_know_their_answers():
    rng = np.random.default_rng(0)
    n = 400
    label = np.where(rng.random(n) < 0.5, "speech", "nonspeech")
    region = np.arange(n) < 80
    wrong = np.where(region, rng.random(n) < 0.5, rng.random(n) < 0.05)  # a cluster of errors
    z = np.where((label == "speech") ^ wrong, 2.0, -2.0)
    t = pd.DataFrame({"clip_id": [f"c{i}" for i in range(n)], "label": label, "logit": z,
                      "group_id": [f"g{i % 20}" for i in range(n)]})  # fmt: skip
    r = clip_map.region_stats(t, region)
    assert r["n_inside"] == 80 and r["error_inside"] == pytest.approx(wrong[region].mean())
    assert r["error_outside"] == pytest.approx(wrong[~region].mean()) and r["p_value"] < 1e-6
    assert r["ci_inside"][0] < r["error_inside"] < r["ci_inside"][1]
    same = clip_map.region_stats(t, np.arange(n) % 2 == 0)  # a region that is no worse than the rest
    assert same["p_value"] > 0.01
    with pytest.raises(LabError, match="select some clips"):
        clip_map.region_stats(t, np.zeros(n, bool))


def test_the_map_hears_speech_and_is_reused_only_for_its_table(default_ds, mapped):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from core.detectors import make_detector

    clips = default_ds.manifest.sample(240, random_state=0)
    audio = [default_ds.load_clip(c).samples for c in clips["clip_id"]]
    det = make_detector("lab-base")
    emb = clip_map.audio_embeddings(det, audio)
    assert emb.shape == (240, 64) and np.isfinite(emb).all()
    alone = clip_map.audio_embeddings(det, audio[:5], batch_size=1)  # padding in a batch changes nothing
    np.testing.assert_allclose(emb[:5], alone, atol=1e-4)
    acc = cross_val_score(LogisticRegression(max_iter=2000), emb, clips["label"], cv=4).mean()
    assert acc > 0.65  # what the detector hears: speech vs not, far above chance (0.5) on synthetic clips
    xy = clip_map.reduce(emb, "pca")
    assert xy.shape == (240, 2) and abs(np.corrcoef(xy[:, 0], xy[:, 1])[0, 1]) < 1e-6  # PCs are uncorrelated
    assert clip_map.reduce(emb, "tsne").shape == (240, 2)
    with pytest.raises(LabError, match="method"):
        clip_map.reduce(emb, "umap")

    table, _ = predictions.load(predictions.resolve(mapped))
    coords, info = clip_map.load_map(mapped, table)
    assert sorted(coords["clip_id"]) == sorted(table["clip_id"]) and info["dims"] == 64
    changed = table.assign(p_speech=table["p_speech"][::-1].to_numpy())
    assert clip_map.load_map("sim-calibrated-test", changed)[0] is None  # another table: not reused


def test_map_page_draws_a_saved_map(mapped):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("views/clip_map.py").run()
    at.selectbox(key="map_table").set_value("sim-calibrated-test").run()
    assert not at.exception
    assert any("No region selected yet" in i.value for i in at.info)  # drawn, waiting for a lasso
    at.selectbox(key="map_colour").set_value("group_id").run()
    assert not at.exception
