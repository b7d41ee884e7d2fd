"""Corpora as researchers keep them: Hugging Face datasets, Lhotse manifests, MUSAN; noise from a dataset;
Parquet and Hugging Face exports that come back whole. Fixtures are built with the libraries themselves."""

import io

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from core.data import annotations
from core.data.audit import audit_split, load_audit
from core.data.datasets import load_dataset
from core.data.export import export_dataset, read_parquet
from core.data.importers import import_dataset
from core.data.noise import check_noise, load_noises
from core.data.splits import make_split, save_split
from core.errors import AudioError, LabError, ManifestError
from core.scoring import predictions

SPEAKERS = ["ann", "bob", "cat", "dan", "eve", "fay"]
SOURCES = ["rain", "dog", "fan", "car"]


def _tone(seconds: float, sr: int, f0: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * f0 * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def _wav(x: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def hf_rows(n_per: int = 3):
    rows = []
    for k, who in enumerate(SPEAKERS + SOURCES):
        for j in range(n_per):
            sr = 22050 if j == 0 else 16000
            cat = "speech" if who in SPEAKERS else who
            rows.append({"audio": {"bytes": _wav(_tone(0.6 + 0.1 * j, sr, 150 + 40 * k, 10 * k + j), sr),
                                   "path": f"{who}-{j}.wav"},
                         "category": cat, "speaker": who, "note": f"take {j}"})  # fmt: skip
    return rows


def save_hf(folder, rows, splits: dict | None = None):
    """A datasets.Dataset with an Audio column saved with save_to_disk (built from Arrow: no torchcodec needed)."""
    import datasets
    import pyarrow as pa

    features = datasets.Features({"audio": datasets.Audio(), "category": datasets.Value("string"),
                                  "speaker": datasets.Value("string"), "note": datasets.Value("string")})  # fmt: skip

    def build(part):
        cols = {k: [r[k] for r in part] for k in features}
        cols["audio"] = pa.array(cols["audio"], type=features["audio"].pa_type)
        return datasets.Dataset(pa.table(cols), info=datasets.DatasetInfo(features=features))

    if splits:
        datasets.DatasetDict({name: build(part) for name, part in splits.items()}).save_to_disk(str(folder))
    else:
        build(rows).save_to_disk(str(folder))
    return folder


def test_hf_dataset_imports_with_a_label_mapping_and_groups(data_dir, tmp_path):
    src = save_hf(tmp_path / "hf", hf_rows())
    import_dataset("hf", src, "hfds", label_column="category", speech_values=["speech"], group_column="speaker")
    ds = load_dataset("hfds")
    m = ds.manifest
    assert len(m) == 30 and set(m["label"]) == {"speech", "nonspeech"}
    assert (m.loc[m["label"] == "speech", "group_id"].isin(SPEAKERS)).all() and m["group_id"].nunique() == 10
    assert set(m.loc[m["label"] == "nonspeech", "category"]) == set(SOURCES)  # every other column kept
    assert (m["path"].str.startswith("audio/")).all()  # embedded bytes written into the dataset, once
    clip = ds.load_clip(m.loc[m["clip_id"] == "hf-0000000", "clip_id"].iloc[0])
    assert clip.sr == 16000 and abs(clip.duration_ms - 600) < 1  # 22.05 kHz resampled at load
    assert ds.info["load_notes"]


def test_hf_mistakes_get_the_labs_messages(data_dir, tmp_path):
    src = save_hf(tmp_path / "hf", hf_rows(1))
    with pytest.raises(ManifestError, match="do not occur in column 'category'"):
        import_dataset("hf", src, "bad1", label_column="category", speech_values=["Speech"], group_column="speaker")
    with pytest.raises(ManifestError, match="no column 'kind'"):
        import_dataset("hf", src, "bad2", label_column="kind", speech_values=["speech"], group_column="speaker")
    with pytest.raises(ManifestError, match="--group-column.*--clip-groups"):
        import_dataset("hf", src, "bad3", label_column="category", speech_values=["speech"])
    with pytest.raises(ManifestError, match="say which values of 'category' mean speech"):
        import_dataset("hf", src, "bad4", label_column="category", group_column="speaker")
    with pytest.raises(LabError, match="neither a folder here nor in the local cache"):
        import_dataset("hf", "someone/not-a-cached-dataset", "bad5", label_column="category", speech_values=["x"])
    rows = hf_rows(1)
    rows[2]["audio"] = {"bytes": b"RIFF....not audio at all", "path": "broken.wav"}
    broken = save_hf(tmp_path / "broken", rows)
    with pytest.raises(AudioError, match="clip hf-0000002"):
        import_dataset("hf", broken, "bad6", label_column="category", speech_values=["speech"], group_column="speaker")
    assert not (data_dir / "datasets" / "bad6").exists()  # nothing half-written
    import_dataset("hf", broken, "ok6", label_column="category", speech_values=["speech"], group_column="speaker",
                   skip_bad=True)  # fmt: skip
    assert len(load_dataset("ok6").manifest) == 9 and "hf-0000002" in load_dataset("ok6").info["skipped"][0]


def test_hf_splits_join_and_clip_level_groups_are_a_stated_limit(data_dir, tmp_path):
    rows = hf_rows(2)
    src = save_hf(tmp_path / "dd", None, splits={"train": rows[:12], "test": rows[12:]})
    import_dataset("hf", src, "hfclip", label_column="category", speech_values=["speech"], clip_groups=True)
    ds = load_dataset("hfclip")
    assert set(ds.manifest["hf_split"]) == {"train", "test"} and ds.manifest["group_id"].is_unique
    save_split(ds, "s", make_split(ds.manifest, seed=0), {"seed": 0})
    report = audit_split(ds, "s", content=False)
    assert "speaker" in report.settings["limits"][0] and load_audit(ds, "s")["settings"]["limits"]


def test_an_imported_hf_dataset_goes_through_split_audit_evaluate_and_calibration(data_dir, tmp_path):
    from core.analysis.calibration import TemperatureScaling
    from core.detectors import make_detector
    from core.scoring.evaluate import evaluate

    src = save_hf(tmp_path / "hf", hf_rows(4))
    import_dataset("hf", src, "hfflow", label_column="category", speech_values=["speech"], group_column="speaker")
    ds = load_dataset("hfflow")
    save_split(
        ds, "s", make_split(ds.manifest, fractions={"train": 0.5, "dev": 0.25, "test": 0.25}, seed=0), {"seed": 0}
    )
    assert not audit_split(ds, "s").leaky
    det = make_detector("webrtc-vad")
    dev, _ = predictions.load(evaluate(ds, "s", "dev", det, name="hfflow-dev"))
    test, _ = predictions.load(evaluate(ds, "s", "test", det, name="hfflow-test"))
    assert set(dev["group_id"]).isdisjoint(test["group_id"])
    cal = TemperatureScaling().fit(dev["logit"].to_numpy(), (dev["label"] == "speech").to_numpy())
    assert np.isfinite(cal.transform(test["logit"].to_numpy())).all()


def _lhotse(tmp_path, overrun: bool = False):
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet

    recs, sups = [], []
    for r in range(2):
        path = tmp_path / f"meeting{r}.wav"
        sf.write(path, _tone(30.0, 16000, 120 + 30 * r, r), 16000)
        recs.append(Recording.from_file(path, recording_id=f"m{r}"))
        for k, (start, dur, spk) in enumerate([(1.0, 4.0, "ann"), (7.0, 14.0, "bob"), (24.0, 3.0, "ann")]):
            if overrun and r == 1 and k == 2:
                dur = 10.0
            sups.append(SupervisionSegment(id=f"m{r}-{k}", recording_id=f"m{r}", start=start, duration=dur,
                                           speaker=f"{spk}{r}"))  # fmt: skip
    RecordingSet.from_recordings(recs).to_file(tmp_path / "recordings.jsonl.gz")
    SupervisionSet.from_segments(sups).to_file(tmp_path / "supervisions.jsonl.gz")
    return tmp_path / "recordings.jsonl.gz", str(tmp_path / "supervisions.jsonl.gz")


def test_lhotse_segments_become_speaker_grouped_clips_and_gaps_non_speech(data_dir, tmp_path):
    recs, sups = _lhotse(tmp_path)
    import_dataset("lhotse", recs, "lh", supervisions=sups, include_gaps=True, max_seconds=5.0)
    m = load_dataset("lh").manifest
    speech = m[m["label"] == "speech"]
    assert set(speech["group_id"]) == {"ann0", "bob0", "ann1", "bob1"}
    assert len(speech) == 2 * (1 + 3 + 1)  # the 14 s turn is cut into 5 + 5 + 4 s pieces
    assert (m["end_s"] - m["start_s"]).max() <= 5.0 + 1e-6
    gaps = m[m["label"] == "nonspeech"]
    assert set(gaps["group_id"]) == {"m0-background", "m1-background"} and len(gaps) >= 4
    assert not ((gaps["start_s"] < 5.0) & (gaps["end_s"] > 1.0)).any()  # no gap overlaps a turn
    (tmp_path / "x").mkdir()
    recs2, sups2 = _lhotse(tmp_path / "x", overrun=True)
    with pytest.raises(ManifestError, match="supervision m1-2: 24.000–34.000 s lies outside m1"):
        import_dataset("lhotse", recs2, "lhbad", supervisions=sups2)


def _musan(root):
    for category, sub, n in (
        ("speech", "librivox", 3),
        ("speech", "us-gov", 2),
        ("music", "fma", 4),
        ("noise", "free-sound", 3),
    ):
        folder = root / "musan" / category / sub
        folder.mkdir(parents=True)
        for i in range(n):
            sf.write(folder / f"{category}-{sub}-{i:04d}.wav", _tone(0.8, 16000, 200 + 50 * i, i), 16000)
    (root / "musan" / "music" / "fma" / "ANNOTATIONS").write_text(
        "music-fma-0000 rock Y Artist1\nmusic-fma-0001 classical N Artist2\n"
        "music-fma-0002 pop Y Artist3\nmusic-fma-0003 jazz N Artist4\n"
    )
    return root


def test_musan_sub_corpora_are_groups_and_music_with_vocals_is_flagged(data_dir, tmp_path):
    import_dataset("musan", _musan(tmp_path), "musan")
    ds = load_dataset("musan")
    m = ds.manifest
    assert m.groupby("group_id")["label"].first().to_dict() == {
        "musan-music-fma": "nonspeech", "musan-noise-free-sound": "nonspeech",
        "musan-speech-librivox": "speech", "musan-speech-us-gov": "speech",
    }  # fmt: skip
    vocal = set(m.loc[m["vocals"] == "yes", "clip_id"])
    assert vocal == {"musan-music-fma-music-fma-0000", "musan-music-fma-music-fma-0002"}
    assert annotations.tagged(ds, ["music with vocals"]) == vocal  # flagged, not silently labelled
    assert ds.info["summary"]["music_with_vocals"] == 2
    # noise from the imported dataset: its non-speech clips, music with vocals left out
    assert check_noise("dataset:musan") == 2 + 3
    noises = load_noises("dataset:musan")
    assert len(noises) == 5 and all(len(x) == 12800 for x in noises)


def test_musan_says_which_folders_it_does_not_know(data_dir, tmp_path):
    root = _musan(tmp_path)
    extra = root / "musan" / "sfx" / "bbc"
    extra.mkdir(parents=True)
    sf.write(extra / "boom.wav", _tone(0.8, 16000, 300, 0), 16000)
    import_dataset("musan", root, "musan-extra")
    skipped = load_dataset("musan-extra").info["skipped"]
    assert any("sfx: not a MUSAN category (speech, music, noise): passed over" in s for s in skipped), skipped
    import_dataset("folder", _speech_only(tmp_path / "sp"), "onlyspeech")
    with pytest.raises(LabError, match="no non-speech clips"):
        check_noise("dataset:onlyspeech")


def _speech_only(root):
    (root / "speech" / "g1").mkdir(parents=True)
    sf.write(root / "speech" / "g1" / "a.wav", _tone(0.5, 16000, 200, 0), 16000)
    return root


def test_training_and_condition_sets_take_noise_from_a_dataset(default_ds, tmp_path):
    from core.data.conditions import ConditionSpec, generate
    from core.runs.registry import check_config
    from core.runs.train_config import TrainConfig

    import_dataset("musan", _musan(tmp_path), "musan2", force=True)
    check_config(TrainConfig(noise_dir="dataset:musan2"))  # accepted before any run is registered
    with pytest.raises(LabError, match="no dataset 'nope'"):
        check_config(TrainConfig(noise_dir="dataset:nope"))
    save_split(default_ds, "corpnoise", make_split(default_ds.manifest, seed=3), {"seed": 3})
    spec = ConditionSpec(durations_ms=[200], snrs_db=[0.0], include_clean=False, noise="folder",
                         noise_folder="dataset:musan2", bases_per_label=2)  # fmt: skip
    generate(default_ds, "corpnoise", "test", "cond-musan", spec)
    assert len(load_dataset("cond-musan").manifest) == 4


def test_parquet_is_the_table_store_and_old_csv_tables_still_read(default_ds, tmp_path):
    from core.detectors import make_detector
    from core.scoring.evaluate import evaluate

    save_split(default_ds, "pq", make_split(default_ds.manifest, seed=4), {"seed": 4})
    path = evaluate(default_ds, "pq", "dev", make_detector("webrtc-vad"), name="pq-dev")
    assert path.suffix == ".parquet" and predictions.resolve("pq-dev") == path
    table, meta = predictions.load(path)
    legacy = predictions.write_table(path.with_name("legacy-dev.csv"), table)
    path.with_name("legacy-dev.json").write_text(path.with_suffix(".json").read_text())
    again, _ = predictions.load(predictions.resolve("legacy-dev"))
    pd.testing.assert_frame_equal(again, table, check_dtype=False)
    assert {"pq-dev", "legacy-dev"} <= set(predictions.describe_tables()["table"]) and legacy.exists()


def test_exports_come_back_with_every_column(default_ds, tmp_path):
    import datasets

    from core.detectors import make_detector
    from core.scoring.evaluate import evaluate
    from core.scoring.export import export_table

    save_split(default_ds, "ex", make_split(default_ds.manifest, seed=5), {"seed": 5})
    path = evaluate(default_ds, "ex", "dev", make_detector("webrtc-vad"), name="ex-dev")
    table, meta = predictions.load(path)
    back, back_meta = read_parquet(export_table("ex-dev", tmp_path / "t.parquet"))
    pd.testing.assert_frame_equal(back, table)
    assert back_meta["detector"] == "webrtc-vad" and back_meta["table"] == "ex-dev"
    hf = datasets.load_from_disk(str(export_table("ex-dev", tmp_path / "t-hf", "hf")))
    assert hf.column_names == list(table.columns) and len(hf) == len(table)
    # a dataset: out as a Hugging Face dataset with its audio, back in through `data import hf`
    src = save_hf(tmp_path / "hf", hf_rows(2))
    import_dataset("hf", src, "exsrc", label_column="category", speech_values=["speech"], group_column="speaker")
    original = load_dataset("exsrc").manifest
    export_dataset("exsrc", tmp_path / "ds-hf", "hf")
    import_dataset("hf", tmp_path / "ds-hf", "exback", label_column="label", speech_values=["speech"],
                   group_column="group_id")  # fmt: skip
    again = load_dataset("exback").manifest
    assert set(original.columns) <= set(again.columns)
    cols = [c for c in original.columns if c != "path"]
    pd.testing.assert_frame_equal(again[cols].reset_index(drop=True), original[cols].reset_index(drop=True),
                                  check_dtype=False)  # fmt: skip
    manifest, dmeta = read_parquet(export_dataset("exsrc", tmp_path / "ds.parquet"))
    assert dmeta["lab_export"] == "dataset" and dmeta["name"] == "exsrc" and len(manifest) == len(original)


def test_the_data_page_previews_the_mapping_then_imports(data_dir, tmp_path):
    from streamlit.testing.v1 import AppTest

    from core.runs import jobs
    from tests.conftest import REPO, wait_for

    src = save_hf(tmp_path / "hf", hf_rows(1))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("views/data.py").run()
    at.selectbox(key="imp_kind").set_value("hf").run()
    at.text_input(key="imp_src").input(str(src))
    at.text_input(key="imp_label").input("category")
    at.text_input(key="imp_group").input("speaker")
    at.text_input(key="imp_speech").input("speech")
    at.text_input(key="imp_name").input("pagehf")
    at.number_input(key="imp_cut").set_value(30.0)  # cut nothing here (short clips), but passed on
    at.button(key="imp_preview").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("values of 'category'" in c.value for c in at.caption)
    assert not (data_dir / "datasets" / "pagehf").exists()  # a preview writes nothing
    at.button(key="imp_go").click().run()
    job = at.session_state["import_job"]
    assert wait_for(jobs.status, job, timeout=300)["state"] == "finished", jobs.log_tail(job)
    assert len(load_dataset("pagehf").manifest) == 10
    assert (
        "--cut-seconds=30" in jobs.status(job)["args"] and load_dataset("pagehf").info["options"]["cut_seconds"] == 30
    )
