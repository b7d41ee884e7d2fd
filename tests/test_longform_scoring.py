"""Long-form sets imported and scored over time: fixtures made with pyannote.core and Lhotse, windowed
scoring against the clip path, the lab's error against pyannote.metrics from exported RTTM, intervals
with a known truth, the CLI flow and the Timeline page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from core.errors import LabError
from core.longform import curves as C
from core.longform import evaluation as E
from core.longform.dataset import import_longform, list_longform, load_longform, split_recordings
from core.longform.postprocess import Binarize
from tests.conftest import REPO

SR = 16_000


def _recordings(folder: Path, n: int = 6, seconds: float = 8.0) -> dict[str, float]:
    """Noise recordings (the importer checks references, not content) named rec0…; their durations."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = {}
    for i in range(n):
        sf.write(folder / f"rec{i}.wav", (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32), SR)
        out[f"rec{i}"] = seconds
    return out


def _turns() -> dict[str, list[tuple[str, float, float]]]:
    """Speakers shared across recordings: alice in rec0 and rec1, bob in rec1 and rec2; carol alone."""
    return {"rec0": [("alice", 0.5, 2.0), ("alice", 3.0, 4.5)], "rec1": [("alice", 1.0, 2.0), ("bob", 1.5, 3.0)],
            "rec2": [("bob", 0.0, 1.0)], "rec3": [("carol", 2.0, 6.0)], "rec4": [("dave", 1.0, 7.5)],
            "rec5": [("erin", 0.25, 0.75)]}  # fmt: skip


def test_rttm_written_by_pyannote_core_imports_with_its_turns_and_a_split_by_speaker(tmp_path, data_dir):
    from pyannote.core import Annotation, Segment

    _recordings(tmp_path / "audio")
    (tmp_path / "rttm").mkdir()
    for rec, turns in _turns().items():
        ann = Annotation(uri=rec)
        for spk, a, b in turns:
            ann[Segment(a, b)] = spk
        with open(tmp_path / "rttm" / f"{rec}.rttm", "w") as fh:
            ann.write_rttm(fh)
    import_longform("rttm", tmp_path / "audio", "lf-rttm", tmp_path / "rttm", seed=3)
    lf = load_longform("lf-rttm")
    assert len(lf.recordings) == 6
    np.testing.assert_allclose(lf.speech("rec1"), [[1.0, 3.0]])  # alice ∪ bob
    assert {tuple(map(tuple, t)) for t in lf.turns["rec0"].values()} == {((0.5, 2.0), (3.0, 4.5))}
    parts = dict(zip(lf.recordings["recording_id"], lf.recordings["part"]))
    assert parts["rec0"] == parts["rec1"] == parts["rec2"]  # alice and bob link them: one unit
    # one RTTM for all recordings works the same; a recording id with no audio is named
    (tmp_path / "all.rttm").write_text("".join((tmp_path / "rttm" / f"{r}.rttm").read_text() for r in _turns()))
    import_longform("rttm", tmp_path / "audio", "lf-rttm1", tmp_path / "all.rttm", group_by="recording")
    assert load_longform("lf-rttm1").turns.keys() == lf.turns.keys()
    (tmp_path / "bad.rttm").write_text("SPEAKER ghost 1 0.0 1.0 <NA> <NA> x <NA> <NA>\n")
    with pytest.raises(LabError, match=r"bad.rttm:1: unknown recording 'ghost'"):
        import_longform("rttm", tmp_path / "audio", "lf-bad", tmp_path / "bad.rttm")
    (tmp_path / "late.rttm").write_text("SPEAKER rec0 1 7.5 1.0 <NA> <NA> x <NA> <NA>\n")
    with pytest.raises(LabError, match=r"late.rttm:1: turn ends at 8.5 s, past the end of 'rec0'"):
        import_longform("rttm", tmp_path / "audio", "lf-bad", tmp_path / "late.rttm")
    assert "lf-bad" not in list_longform()  # nothing half-written


def test_lhotse_manifests_made_by_lhotse_keep_their_segments(tmp_path, data_dir):
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet

    _recordings(tmp_path / "audio", n=3)
    recs = RecordingSet.from_recordings(Recording.from_file(tmp_path / "audio" / f"rec{i}.wav") for i in range(3))
    sups = SupervisionSet.from_segments(
        SupervisionSegment(id=f"s{k}", recording_id=rec, start=a, duration=b - a, speaker=spk)
        for k, (rec, spk, a, b) in enumerate((r, *t) for r in ("rec0", "rec1", "rec2") for t in _turns()[r])
    )
    recs.to_file(tmp_path / "recs.jsonl.gz")
    sups.to_file(tmp_path / "sups.jsonl.gz")
    import_longform("lhotse", tmp_path / "recs.jsonl.gz", "lf-lhotse", tmp_path / "sups.jsonl.gz")
    lf = load_longform("lf-lhotse")
    np.testing.assert_allclose(lf.speech("rec1"), [[1.0, 3.0]])
    np.testing.assert_allclose(lf.speech("rec0"), [[0.5, 2.0], [3.0, 4.5]])
    assert lf.duration("rec2") == pytest.approx(8.0)


def test_csv_references_drop_non_speech_rows_and_name_a_bad_line(tmp_path, data_dir):
    _recordings(tmp_path / "audio", n=2)
    (tmp_path / "ref.csv").write_text("recording,start,end,label\nrec0,0.5,2.0,speech\nrec0,2.0,5.0,music\n"
                                      "rec1,1.0,3.0,speech\n")  # fmt: skip
    import_longform("csv", tmp_path / "audio", "lf-csv", tmp_path / "ref.csv")
    np.testing.assert_allclose(load_longform("lf-csv").speech("rec0"), [[0.5, 2.0]])
    (tmp_path / "neg.csv").write_text("recording,start,end,label\nrec0,-1,2.0,speech\n")
    with pytest.raises(LabError, match=r"neg.csv:2: negative start"):
        import_longform("csv", tmp_path / "audio", "lf-neg", tmp_path / "neg.csv")


def test_recordings_split_by_group_never_share_a_group_across_parts():
    rng = np.random.default_rng(0)
    groups = {f"r{i}": list({f"g{rng.integers(30)}" for _ in range(rng.integers(1, 3))}) for i in range(80)}
    parts = split_recordings(groups, {r: float(rng.uniform(30, 90)) for r in groups}, seed=1)
    where: dict[str, set] = {}
    for r, gs in groups.items():
        for g in gs:
            where.setdefault(g, set()).add(parts[r])
    assert max(len(v) for v in where.values()) == 1 and set(parts.values()) == {"train", "dev", "test"}


def test_windows_cover_the_recording_and_frames_average_the_windows_over_them():
    b = C.window_bounds(10.5, 2.0, 1.0)
    assert b[0].tolist() == [0.0, 2.0] and b[-1].tolist() == [8.5, 10.5] and np.allclose(b[:, 1] - b[:, 0], 2.0)
    assert C.window_bounds(1.2, 2.0, 1.0).tolist() == [[0.0, 1.2]]
    with pytest.raises(LabError, match="leave audio unscored"):
        C.window_bounds(10, 1.0, 2.0)
    p = np.arange(len(b), dtype=float)
    v = C.frames_from_windows(b, p, 1.0, 10.5)
    # frame k (centre k + 0.5) lies in windows starting at k − 1 and k (and the moved last one)
    assert v[0] == 0 and v[3] == pytest.approx((2 + 3) / 2) and len(v) == 11
    assert v[9] == pytest.approx((p[8] + p[9]) / 2)  # windows [8,10] and [8.5,10.5] hold centre 9.5


def test_clustered_ratio_interval_holds_its_level_on_a_known_truth():
    from core.analysis.stats import clustered_ratio_ci

    rng = np.random.default_rng(0)
    truth, hits, reps = 0.2, 0, 1000
    for _ in range(reps):
        total = rng.uniform(20, 200, 25)  # speech seconds per recording
        rate = np.clip(truth + rng.normal(0, 0.08, 25), 0, None)  # recordings differ in difficulty
        err = rng.poisson(rate * total * 4) / 4
        _, lo, hi = clustered_ratio_ci(err, total, np.arange(25))
        hits += lo <= truth <= hi
    assert 0.93 <= hits / reps <= 0.975
    est, lo, hi = clustered_ratio_ci(np.array([1.0, 2.0]), np.array([10.0, 10.0]), np.array([0, 0]))
    assert est == pytest.approx(0.15) and np.isnan(lo)


def test_events_and_error_stretches_know_their_answers():
    ref = np.array([[1.0, 3.0], [5.0, 6.0], [8.0, 9.0]])
    hyp = np.array([[1.2, 1.8], [2.0, 3.1], [4.5, 9.5]])
    ev = E.events(ref, hyp)
    assert ev["pieces"].tolist() == [2, 1, 1] and ev["merged"].tolist() == [False, True, True]
    assert ev["onset_error"].round(3).tolist() == [0.2, -0.5, -3.5]
    errs = E.misses_and_false_alarms(ref, hyp, 10.0)
    assert errs.iloc[0].tolist() == ["false alarm", 6.0, 8.0, 2.0]
    assert sorted(errs[errs["kind"] == "miss"][["start", "end"]].round(3).itertuples(index=False)) == [
        (1.0, 1.2), (1.8, 2.0)]  # fmt: skip
    assert errs["seconds"].sum() == pytest.approx(0.4 + 0.1 + 0.5 + 2.0 + 0.5)


# ---------------------------------------------------------------- on the embedded long-form set


@pytest.fixture(scope="module")
def embedded(default_ds):
    from core.longform.assemble import build_longform

    build_longform(default_ds, None, "lf-embedded", seconds=40.0, seed=2)
    return load_longform("lf-embedded")


def _parse_rttm(path: Path):
    from pyannote.core import Annotation, Segment

    out: dict[str, Annotation] = {}
    for line in Path(path).read_text().splitlines():
        f = line.split()
        ann = out.setdefault(f[1], Annotation(uri=f[1]))
        ann[Segment(float(f[3]), float(f[3]) + float(f[4])), len(ann)] = f[7]
    return out


@pytest.fixture(scope="module")
def scored(embedded):
    """Silero's native curves over the dev and test parts, scored by the command line."""
    _cli("longform", "score", "--set=lf-embedded", "--part=dev", "--detector=silero-vad", "--name=lfe-sv-dev")
    _cli("longform", "score", "--set=lf-embedded", "--part=test", "--detector=silero-vad", "--name=lfe-sv-test")
    return "lfe-sv-dev", "lfe-sv-test"


def _cli(*args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_cli_flow_and_the_labs_error_equals_pyannote_metrics_from_the_exported_rttm(embedded, scored, tmp_path):
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.detection import DetectionErrorRate, DetectionPrecision, DetectionRecall

    out = _cli("longform", "tune", "--curves=lfe-sv-dev", "--collar=0.25")
    assert "rule (tuned on lfe-sv-dev" in out
    rule_file = C.curves_dir() / "lfe-sv-dev.rule.json"
    out = _cli("longform", "evaluate", "--curves=lfe-sv-test", f"--rule={rule_file}", f"--rttm={tmp_path / 'h.rttm'}",
               "--per-recording")  # fmt: skip
    assert "detection error rate" in out
    hyp = _parse_rttm(tmp_path / "h.rttm")
    ref = _parse_rttm(embedded.root / "reference.rttm")
    import json

    rule = Binarize(**json.loads(rule_file.read_text())["rule"])
    table, meta = C.load_curves("lfe-sv-test")
    curves = C.curves_of(table, meta, {r: embedded.duration(r) for r in embedded.ids()})
    per = E.per_recording(embedded, E.hypotheses(curves, rule), collar=0.25)
    for skip in (False, True):
        der = DetectionErrorRate(collar=0.25, skip_overlap=skip)
        prec, rec = DetectionPrecision(collar=0.25, skip_overlap=skip), DetectionRecall(collar=0.25, skip_overlap=skip)
        for r in embedded.ids("test"):
            uem = Timeline([Segment(0, embedded.duration(r))])
            h, rf = hyp.get(r, Annotation(uri=r)), ref.get(r, Annotation(uri=r))
            der(rf, h, uem=uem), prec(rf, h, uem=uem), rec(rf, h, uem=uem)
        lab = E.summarise(E.per_recording(embedded, E.hypotheses(curves, rule), collar=0.25, skip_overlap=skip))
        assert lab.error_rate[0] == pytest.approx(abs(der), abs=2e-3)  # the RTTM rounds to 1 ms
        assert lab.precision[0] == pytest.approx(abs(prec), abs=2e-3)
        assert lab.recall[0] == pytest.approx(abs(rec), abs=2e-3)
    assert set(per["recording_id"]) == set(embedded.ids("test"))
    # two detectors on the same recordings: a paired difference; a table compared with itself differs by 0
    d = E.paired_difference(per, per)
    assert d.diff == 0 and d.lo == pytest.approx(0) and "no difference" in d.verdict()
    out = _cli("longform", "compare", "--a=lfe-sv-test", "--b=lfe-sv-test", "--onset=0.5")
    assert "difference silero-vad − silero-vad: +0.000" in out


def test_tuning_on_dev_does_not_move_when_test_labels_change(embedded, scored):
    from core.longform.tuning import tune

    table, meta = C.load_curves(scored[0])
    dev = C.curves_of(table, meta, {r: embedded.duration(r) for r in embedded.ids()})
    refs = {r: embedded.reference(r) for r in embedded.ids()}
    rule_a, _ = tune(dev, refs, collar=0.25)
    flipped = {
        r: ([np.array([[0.0, embedded.duration(r)]])] if r in embedded.ids("test") else t) for r, t in refs.items()
    }
    rule_b, _ = tune(dev, flipped, collar=0.25)
    assert rule_a == rule_b


def test_windowed_scoring_equals_scoring_the_same_windows_as_clips(embedded, tmp_path):
    """The lab base model over a recording in 2 s windows, hop 1 s, against the clip path (a dataset whose
    clips are those windows of the same file, scored by core.scoring.evaluate): fp32, 1e-4."""
    from core.data.datasets import load_dataset
    from core.data.importers import import_dataset
    from core.detectors import make_detector
    from core.scoring.evaluate import score_clips

    rec = embedded.ids("test")[0]
    det = make_detector("lab-base")
    x = embedded.load(rec)
    rows = C.score_recording(det, x, window=2.0, hop=1.0)
    path = embedded.path(rec)
    manifest = pd.DataFrame({"clip_id": [f"w{i:04d}" for i in range(len(rows))], "path": str(path), "label": "speech",
                             "group_id": rec, "base_clip_id": rec, "start_s": rows["start"], "end_s": rows["end"]})  # fmt: skip
    manifest.to_csv(tmp_path / "windows.csv", index=False)
    import_dataset("csv", tmp_path / "windows.csv", "lf-windows", skip_bad=True, paths_outside_ok=True, force=True)
    ds = load_dataset("lf-windows")
    logits = score_clips(ds, ds.manifest, det, batch_size=7)
    kept = manifest["clip_id"].isin(ds.manifest["clip_id"]).to_numpy()
    assert kept.sum() >= len(manifest) - 2  # only windows of pure digital silence may be left out
    order = ds.manifest.set_index("clip_id").index.get_indexer(manifest["clip_id"][kept])
    np.testing.assert_allclose(rows[["logit_A", "logit_B"]].to_numpy()[kept], logits[order], atol=1e-4)


def test_native_curves_and_a_bad_table_are_told_apart(embedded, tmp_path):
    from core.detectors import make_detector

    x = embedded.load(embedded.ids("dev")[0])
    rows = C.score_recording(make_detector("webrtc-vad"), x)
    assert np.allclose(rows["end"] - rows["start"], 0.03, atol=1e-9) or rows["end"].iloc[-1] <= len(x) / SR
    assert set(np.unique(rows["p_speech"])) <= {0, 0.25, 0.5, 0.75, 1.0}
    with pytest.raises(LabError, match="no native frames"):
        C.score_recording(make_detector("lab-base"), x)
    bad = rows.assign(recording_id="r", logit=np.nan)
    with pytest.raises(LabError, match="NaN"):
        C.validate(bad, "t.parquet")


# ---------------------------------------------------------------- the Timeline page


def test_timeline_page_moves_the_rule_live_and_plays_a_miss(embedded, scored):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("views/timeline.py").run()
    assert not at.exception
    at.selectbox(key="tl_set").set_value("lf-embedded").run()
    at.multiselect(key="tl_tables").set_value(["lfe-sv-test"]).run()
    at.number_input(key="tl_collar").set_value(0.0).run()
    table, meta = C.load_curves("lfe-sv-test")
    curves = C.curves_of(table, meta, {r: embedded.duration(r) for r in embedded.ids()})
    for onset in (0.3, 0.8):
        at.slider(key="tl_onset").set_value(onset).run()
        assert not at.exception
        expected = E.summarise(E.per_recording(embedded, E.hypotheses(curves, Binarize(onset, min(0.5, onset)))))
        shown = next(m.value for m in at.metric if m.label == "Detection error rate")
        assert float(shown) == pytest.approx(expected.error_rate[0], abs=5e-4)
    at.button(key="tl_tune").click().run()  # the rule tuned on the dev table moves the sliders
    assert not at.exception and "Rule tuned on lfe-sv-dev" in " ".join(c.value for c in at.caption)
    assert len(at.get("audio")) >= 1 or "No miss and no false alarm" in " ".join(s.value for s in at.success)


def test_the_study_report_gets_a_long_form_section_tuned_on_dev(embedded, scored):
    from core.longform.tuning import tune
    from core.report.longform import longform_section

    s = longform_section(collar=0.25)
    rows = s.tables[0][2]
    row = rows[(rows["set"] == "lf-embedded") & (rows["detector"] == "silero-vad")].iloc[0]
    durations = {r: embedded.duration(r) for r in embedded.ids()}
    dev = C.curves_of(*C.load_curves(scored[0]), durations)
    rule, _ = tune(dev, {r: embedded.reference(r) for r in dev}, collar=0.25)
    test = C.curves_of(*C.load_curves(scored[1]), durations)
    expected = E.summarise(E.per_recording(embedded, E.hypotheses(test, rule), collar=0.25))
    assert row["error_rate"] == pytest.approx(expected.error_rate[0]) and row["onset"] == rule.onset


def test_fsdd_voices_become_a_long_form_set_whose_error_equals_pyannote_metrics(fsdd_dir, default_ds, tmp_path):
    """Recordings the lab did not make (FSDD's speakers) laid out with the embedded set's non-speech:
    parts by speaker, and the lab's error from its exported RTTM equal to pyannote.metrics."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.detection import DetectionErrorRate

    from core.data.datasets import load_dataset
    from core.data.importers import import_dataset
    from core.detectors import make_detector
    from core.longform.assemble import build_longform
    from core.longform.segments import write_rttm

    files = sorted((fsdd_dir / "recordings").glob("*.wav"))[::10]  # 300 clips, every speaker
    rows = pd.DataFrame({"clip_id": [f.stem for f in files], "path": [str(f) for f in files], "label": "speech",
                         "group_id": [f.stem.split("_")[1] for f in files], "base_clip_id": [f.stem for f in files]})  # fmt: skip
    rows.to_csv(tmp_path / "fsdd.csv", index=False)
    import_dataset("csv", tmp_path / "fsdd.csv", "fsdd-sub", paths_outside_ok=True, force=True)
    build_longform(load_dataset("fsdd-sub"), None, "fsdd-long", seconds=30.0, nonspeech=default_ds)
    lf = load_longform("fsdd-long")
    speakers = lf.recordings.assign(g=lf.recordings["groups"].str.split(";")).explode("g")
    assert speakers.groupby("g")["part"].nunique().max() == 1 and lf.info["nonspeech_from"] == "default"
    det = make_detector("silero-vad")
    test = lf.ids("test")
    hyp = {}
    for r in test:
        t = C.score_recording(det, lf.load(r))
        hyp[r] = E.hypotheses({r: C.Curve(t["p_speech"].to_numpy(), 0.032, lf.duration(r))}, Binarize(0.5, 0.35))[r]
    write_rttm(tmp_path / "hyp.rttm", hyp)
    parsed, ref = _parse_rttm(tmp_path / "hyp.rttm"), _parse_rttm(lf.root / "reference.rttm")
    der = DetectionErrorRate(collar=0.1)
    for r in test:
        der(ref.get(r, Annotation(uri=r)), parsed.get(r, Annotation(uri=r)), uem=Timeline([Segment(0, lf.duration(r))]))
    lab = E.summarise(E.per_recording(lf, hyp, collar=0.1))
    assert lab.error_rate[0] == pytest.approx(abs(der), abs=2e-3) and lab.recall[0] > 0.3


def test_event_summary_counts_regions_over_recordings():
    class Two:
        def speech(self, rec):
            return np.array([[1.0, 3.0], [5.0, 6.0]]) if rec == "a" else np.array([[0.0, 1.0]])

    ev = E.all_events(Two(), {"a": np.array([[1.1, 2.0], [2.2, 3.0]]), "b": np.zeros((0, 2))})
    s = E.event_summary(ev)
    assert s["regions"] == 3 and s["detected"] == pytest.approx(1 / 3) and s["split"] == pytest.approx(1 / 3)
    assert s["median_abs_onset_error_s"] == pytest.approx(0.1) and "3 speech regions: 33% detected" in E.event_line(s)
