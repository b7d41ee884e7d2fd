"""Importers on real recordings (FSDD from ../shared, read in place) and on bad input."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from core.data.datasets import load_dataset
from core.data.importers import import_dataset, parse_rttm
from core.errors import AudioError, LabError, ManifestError


def _noise(seconds: float, sr: int, seed: int, channels: int = 1) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((int(sr * seconds), channels)) * 0.1
    return x[:, 0] if channels == 1 else x


def test_fsdd_import_groups_by_speaker_and_resamples(data_dir, fsdd_dir):
    import_dataset("fsdd", fsdd_dir, "fsdd", force=True)
    ds = load_dataset("fsdd")
    m = ds.manifest
    assert len(m) == 3000 and m["group_id"].nunique() == 6
    assert (m["label"] == "speech").all()
    assert ds.info["load_notes"] == {"resampled from 8000 Hz to 16000 Hz": 3000}
    assert m["duration_ms"].between(100, 2500).all()
    assert str(fsdd_dir) in m["path"].iloc[0]  # read in place, nothing copied
    clip = ds.load_clip(m["clip_id"].iloc[0])
    assert clip.sr == 16000 and "resampled from 8000 Hz to 16000 Hz" in clip.notes


def test_plain_folder_with_real_speech_stereo_and_other_rates(data_dir, fsdd_dir, tmp_path):
    root = tmp_path / "plain"
    for spk in ("jackson", "theo"):
        d = root / "speech" / spk
        d.mkdir(parents=True)
        for f in sorted((fsdd_dir / "recordings").glob(f"*_{spk}_0.wav"))[:3]:
            (d / f.name).symlink_to(f)
    d = root / "nonspeech" / "fan"
    d.mkdir(parents=True)
    sf.write(d / "fan1.wav", _noise(0.5, 44100, 1, channels=2), 44100)
    sf.write(d / "fan2.flac", _noise(0.5, 22050, 2), 22050)
    import_dataset("folder", root, "plain", force=True)
    ds = load_dataset("plain")
    assert ds.manifest.groupby("label").size().to_dict() == {"nonspeech": 2, "speech": 6}
    notes = ds.info["load_notes"]
    assert notes["downmixed 2 channels to mono"] == 1
    assert notes["resampled from 44100 Hz to 16000 Hz"] == 1 and notes["resampled from 8000 Hz to 16000 Hz"] == 6


def test_folder_with_bad_files_fails_or_skips_naming_them(data_dir, tmp_path):
    root = tmp_path / "bad"
    (root / "speech" / "g").mkdir(parents=True)
    sf.write(root / "speech" / "g" / "ok.wav", _noise(0.3, 16000, 3), 16000)
    sf.write(root / "speech" / "g" / "zero.wav", np.zeros(4000), 16000)
    (root / "speech" / "g" / "corrupt.wav").write_bytes(b"RIFF1234WAVEjunk")
    with pytest.raises(AudioError) as err:
        import_dataset("folder", root, "bad")
    assert "corrupt.wav" in str(err.value) and "zero.wav" in str(err.value) and "silent" in str(err.value)
    assert not (data_dir / "datasets" / "bad").exists()  # nothing half-written
    import_dataset("folder", root, "bad", skip_bad=True)
    ds = load_dataset("bad")
    assert list(ds.manifest["clip_id"]) == ["speech-g-ok"] and len(ds.info["skipped"]) == 2


def test_wrong_label_folder_is_named(data_dir, tmp_path):
    (tmp_path / "music" / "g").mkdir(parents=True)
    with pytest.raises(ManifestError, match="label folder must be one of"):
        import_dataset("folder", tmp_path, "x")


def test_esc50_folder(data_dir, tmp_path):
    (tmp_path / "meta").mkdir()
    (tmp_path / "audio").mkdir()
    meta = []
    for i, (cat, src) in enumerate([("rain", "100"), ("rain", "100"), ("dog", "200")]):
        name = f"1-{src}-{chr(65 + i)}-0.wav"
        sf.write(tmp_path / "audio" / name, _noise(1.0, 44100, i), 44100)
        meta.append(
            {
                "filename": name,
                "fold": 1,
                "target": 0,
                "category": cat,
                "esc10": False,
                "src_file": src,
                "take": chr(65 + i),
            }
        )
    pd.DataFrame(meta).to_csv(tmp_path / "meta" / "esc50.csv", index=False)
    import_dataset("esc50", tmp_path, "esc", force=True)
    m = load_dataset("esc").manifest
    assert (m["label"] == "nonspeech").all() and m["group_id"].nunique() == 2
    assert set(m["category"]) == {"rain", "dog"}
    pd.DataFrame(meta).drop(columns="src_file").to_csv(tmp_path / "meta" / "esc50.csv", index=False)
    with pytest.raises(ManifestError, match=r"esc50.csv: missing column\(s\) \['src_file'\]"):
        import_dataset("esc50", tmp_path, "esc2")


def test_voxconverse_turns_and_gaps(data_dir, fsdd_dir, tmp_path):
    rec = fsdd_dir / "recordings"
    a = sf.read(rec / "0_jackson_0.wav")[0]
    b = sf.read(rec / "1_theo_0.wav")[0]
    gap = _noise(0.8, 8000, 5) * 0.05
    audio = np.concatenate([gap, a, gap, b, gap])
    sf.write(tmp_path / "conv1.wav", audio, 8000)
    t = [len(gap) / 8000]
    t.append(t[0] + len(a) / 8000)
    t.append(t[1] + len(gap) / 8000)
    t.append(t[2] + len(b) / 8000)
    (tmp_path / "conv1.rttm").write_text(
        f"SPEAKER conv1 1 {t[0]:.3f} {t[1] - t[0]:.3f} <NA> <NA> spk00 <NA> <NA>\n"
        f"SPEAKER conv1 1 {t[2]:.3f} {t[3] - t[2]:.3f} <NA> <NA> spk01 <NA> <NA>\n"
    )
    import_dataset("voxconverse", tmp_path, "vox", force=True, include_gaps=True)
    m = load_dataset("vox").manifest
    speech = m[m["label"] == "speech"]
    assert sorted(speech["group_id"]) == ["vox-conv1-spk00", "vox-conv1-spk01"]
    assert speech["duration_ms"].tolist() == pytest.approx([1000 * (t[1] - t[0]), 1000 * (t[3] - t[2])], abs=1)
    assert (m["label"] == "nonspeech").sum() == 3 and set(m[m["label"] == "nonspeech"]["group_id"]) == {
        "vox-conv1-background"
    }
    (tmp_path / "conv1.rttm").write_text("SPEAKER conv1 1 zero 1.0 <NA> <NA> spk00\n")
    with pytest.raises(ManifestError, match="line 1"):
        parse_rttm(tmp_path / "conv1.rttm")


def test_csv_manifest_relative_paths_and_errors(data_dir, tmp_path):
    sf.write(tmp_path / "a.wav", _noise(0.3, 16000, 7), 16000)
    sf.write(tmp_path / "b.wav", _noise(0.3, 16000, 8), 16000)
    rows = "clip_id,path,label,group_id,base_clip_id\na,a.wav,speech,g1,a\nb,b.wav,nonspeech,g2,b\n"
    (tmp_path / "m.csv").write_text(rows)
    import_dataset("csv", tmp_path / "m.csv", "csvds", force=True)
    assert len(load_dataset("csvds").manifest) == 2
    (tmp_path / "dup.csv").write_text(rows + "a,b.wav,speech,g1,a\n")
    with pytest.raises(ManifestError, match="duplicate clip_id 'a' on lines 2, 4"):
        import_dataset("csv", tmp_path / "dup.csv", "dup")
    with pytest.raises(LabError, match="already exists"):
        import_dataset("csv", tmp_path / "m.csv", "csvds")


def test_long_recordings_are_cut_into_pieces_that_stay_together(data_dir, tmp_path):
    """A 65 s recording cut at 30 s: pieces 0–30, 30–60, 60–65 of the same file, each decoded and hashed alone."""
    from core.detectors import make_detector
    from core.scoring.evaluate import score_clips

    rng = np.random.default_rng(0)
    for label, group, name, seconds in (("speech", "s1", "talk", 65.0), ("speech", "s2", "short", 2.0),
                                        ("nonspeech", "n1", "rain", 3.0), ("nonspeech", "n2", "hum", 31.5)):  # fmt: skip
        d = tmp_path / "long" / label / group
        d.mkdir(parents=True)
        sf.write(d / f"{name}.wav", (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32), 16000)
    with pytest.raises(LabError, match="cut length must be at least 1 s"):
        import_dataset("folder", tmp_path / "long", "cut-bad", cut_seconds=0.5)
    import_dataset("folder", tmp_path / "long", "cut-long", cut_seconds=30)
    ds = load_dataset("cut-long")
    m = ds.manifest.set_index("clip_id")
    talk = m[m["base_clip_id"] == "speech-s1-talk"].sort_values("start_s")
    assert talk.index.tolist() == ["speech-s1-talk-0", "speech-s1-talk-1", "speech-s1-talk-2"]
    assert talk[["start_s", "end_s"]].to_numpy().tolist() == [[0, 30], [30, 60], [60, 65]]
    np.testing.assert_allclose(talk["duration_ms"], [30000, 30000, 5000], atol=1)
    assert talk["content_hash"].nunique() == 3 and (talk["group_id"] == "s1").all()
    hum = m[m["base_clip_id"] == "nonspeech-n2-hum"]
    assert len(hum) == 2 and hum["duration_ms"].max() <= 30000  # the last 1.5 s is a piece too
    assert m.loc["speech-s2-short", "duration_ms"] == pytest.approx(2000, abs=1) and pd.isna(
        m.loc["speech-s2-short", "start_s"]
    )
    assert "cut into pieces" in ds.info["summary"] and ds.info["options"]["cut_seconds"] == 30
    # every piece now fits the audio LLM's window: the lab base model scores them all
    scores = score_clips(ds, ds.manifest, make_detector("lab-base"))
    assert np.isfinite(scores).all() and len(scores) == 7
