import numpy as np
import pandas as pd
import pytest

from core.data import audio, default_dataset, nonspeech
from core.data.datasets import REQUIRED_COLUMNS, load_dataset
from core.data.speech import VOICES, sentences_for
from core.data.tts import Voice, synthesize


def test_group_and_condition_coverage(default_ds):
    m = default_ds.manifest
    assert set(REQUIRED_COLUMNS) <= set(m.columns)
    groups = m.groupby("label")["group_id"].nunique()
    assert groups["speech"] >= 12 and groups["nonspeech"] >= 12
    assert m.groupby("group_id")["label"].nunique().max() == 1
    assert {200.0, 500.0, 1000.0} <= set(m["duration_ms"])
    assert m["snr_db"].isna().any() and m["snr_db"].nunique() >= 3
    assert set(m.loc[m["snr_db"].notna(), "noise_type"]) == {"white", "pink"}
    assert set(m.loc[m["snr_db"].isna(), "noise_type"]) == {"none"}
    assert m["clip_id"].is_unique and m["content_hash"].is_unique
    counts = m["label"].value_counts()
    assert 0.8 < counts["speech"] / counts["nonspeech"] < 1.25


def test_clips_are_peak_normalised_and_hashes_match(default_ds):
    m = default_ds.manifest.sample(40, random_state=0)
    for row in m.itertuples():
        clip = default_ds.load_clip(row.clip_id)
        assert clip.notes == []
        assert len(clip.samples) == int(16 * row.duration_ms)
        assert np.max(np.abs(clip.samples)) == pytest.approx(audio.PEAK_LEVEL, abs=2e-4)
        assert audio.content_hash(clip.samples) == row.content_hash


def test_speech_crops_contain_speech(default_ds):
    m = default_ds.manifest
    for row in m[(m["label"] == "speech") & m["snr_db"].isna()].sample(30, random_state=1).itertuples():
        x = default_ds.load_clip(row.clip_id).samples
        assert audio.active_mask(x, 16000, threshold_db=-30).mean() > 0.4, row.clip_id


def test_build_is_deterministic(data_dir):
    recipe = default_dataset.Recipe(
        speech_groups=("en-m1", "fr-f3"),
        procedural_groups=("rain", "chords"),
        recording_groups=("boom.wav",),
        speech_bases_per_group=2,
        nonspeech_bases_per_group=1,
        durations_ms=(200, 1000),
        snrs_db=(None, 0.0),
    )
    a = default_dataset.build_default("det-a", recipe)
    b = default_dataset.build_default("det-b", recipe)
    ma, mb = load_dataset("det-a").manifest, load_dataset("det-b").manifest
    pd.testing.assert_frame_equal(ma, mb)
    assert len(ma) == (2 * 2 + 2 + 1) * 2 * 2
    assert (a / "audio").is_dir() and (b / "dataset.json").exists()


def test_existing_dataset_is_kept_without_force(default_ds):
    before = (default_ds.root / "manifest.csv").stat().st_mtime_ns
    default_dataset.build_default()
    assert (default_ds.root / "manifest.csv").stat().st_mtime_ns == before


def test_recipe_names_every_generator():
    assert set(default_dataset.PROCEDURAL_GROUPS) == set(nonspeech.PROCEDURAL)
    assert nonspeech.packaged_recordings_dir() is not None
    for name in default_dataset.RECORDING_GROUPS:
        assert (nonspeech.packaged_recordings_dir() / name).exists()


def test_sentences_are_not_shared_between_groups():
    said = [s for g in VOICES for s in sentences_for(g, 5)]
    assert len(said) == len(set(said))


def test_tts_is_real_speech_and_voices_differ():
    a, sr = synthesize("Hello, this is a test.", Voice("en", "m1"))
    b, _ = synthesize("Hello, this is a test.", Voice("en", "f3", pitch=80))
    assert sr == 22050 and 0.8 < len(a) / sr < 3.0
    assert np.max(np.abs(a)) > 0.1
    assert audio.active_mask(a, sr, -30).mean() > 0.3
    n = min(len(a), len(b))
    assert np.abs(a[:n] - b[:n]).mean() > 0.01
