"""Long-form basics (#33): references read and checked, curves turned into segments by the
onset/offset rule, and detection error equal to pyannote.metrics computed independently."""

import numpy as np
import pytest

from core.longform import metrics, postprocess, segments
from core.longform.postprocess import Binarize


def _random_turns(rng, duration=60.0, speakers=3, turns=12):
    out = []
    for _ in range(speakers):
        starts = np.sort(rng.uniform(0, duration - 2, turns))
        lengths = rng.uniform(0.1, 3.0, turns)
        t = segments.union(np.column_stack([starts, np.minimum(starts + lengths, duration)]))
        out.append(t)
    return out


@pytest.mark.parametrize("collar, skip_overlap", [(0.0, False), (0.5, False), (0.25, True), (0.0, True)])
def test_detection_metrics_equal_pyannote_metrics(collar, skip_overlap):
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.detection import DetectionErrorRate, DetectionPrecision, DetectionRecall

    rng = np.random.default_rng(int(collar * 100) + skip_overlap)
    for trial in range(20):
        duration = 60.0
        turns = _random_turns(rng, duration)
        hyp = segments.union(np.column_stack([s := np.sort(rng.uniform(0, 58, 15)), s + rng.uniform(0.05, 4, 15)]))
        ref_ann, hyp_ann = Annotation(), Annotation()
        for k, t in enumerate(turns):
            for a, b in t:
                ref_ann[Segment(a, b), f"t{k}"] = f"spk{k}"
        for i, (a, b) in enumerate(hyp):
            hyp_ann[Segment(a, b), f"h{i}"] = "speech"
        uem = Timeline([Segment(0, duration)])
        mine = metrics.detection(turns, hyp, duration, collar=collar, skip_overlap=skip_overlap)
        der = DetectionErrorRate(collar=collar, skip_overlap=skip_overlap)(ref_ann, hyp_ann, uem=uem, detailed=True)
        assert mine.miss == pytest.approx(der["miss"], abs=1e-9), trial
        assert mine.false_alarm == pytest.approx(der["false alarm"], abs=1e-9), trial
        assert mine.total == pytest.approx(der["total"], abs=1e-9), trial
        assert mine.error_rate == pytest.approx(der["detection error rate"], abs=1e-9), trial
        p = DetectionPrecision(collar=collar, skip_overlap=skip_overlap)(ref_ann, hyp_ann, uem=uem)
        r = DetectionRecall(collar=collar, skip_overlap=skip_overlap)(ref_ann, hyp_ann, uem=uem)
        assert mine.precision == pytest.approx(p, abs=1e-9) and mine.recall == pytest.approx(r, abs=1e-9), trial


def _scan(v, onset, offset):
    """The textbook state machine, one frame at a time."""
    out, active, start = [], False, 0
    for i, x in enumerate(v):
        if not active and x >= onset:
            active, start = True, i
        elif active and x < offset:
            out.append((start, i))
            active = False
    if active:
        out.append((start, len(v)))
    return np.array(out, int).reshape(-1, 2)


def test_a_curve_that_never_reaches_the_onset_has_no_speech():
    assert postprocess.hysteresis(np.array([0.4, 0.45, 0.42]), 0.5, 0.35).shape == (0, 2)
    assert postprocess.binarize(np.zeros(5), 0.1, Binarize(0.5, 0.0)).shape == (0, 2)


def test_hysteresis_equals_the_state_machine():
    rng = np.random.default_rng(0)
    for _ in range(200):
        v = np.clip(np.cumsum(rng.normal(0, 0.15, 300)) % 1.0, 0, 1)
        onset = rng.uniform(0.3, 0.9)
        offset = rng.uniform(0.05, onset)
        assert np.array_equal(postprocess.hysteresis(v, onset, offset), _scan(v, onset, offset))


def test_a_planted_curve_gives_back_its_segments():
    step = 0.01
    truth = np.array([[1.0, 2.5], [3.0, 3.2], [5.0, 8.0]])
    t = np.arange(1000) * step
    inside = ((t[:, None] >= truth[:, 0] - 1e-9) & (t[:, None] < truth[:, 1] - 1e-9)).any(1)
    curve = np.where(inside, 0.9, 0.1)
    curve[int(6.0 / step)] = 0.4  # a dip above offset does not split the last segment
    got = postprocess.binarize(curve, step, Binarize(onset=0.7, offset=0.3))
    assert np.allclose(got, truth)
    # minimum durations and padding, in pyannote's order: pad, fill short gaps, drop short speech
    got = postprocess.binarize(curve, step, Binarize(onset=0.7, offset=0.3, min_silence=0.6, min_speech=0.5,
                                                      pad_onset=0.1, pad_offset=0.1))  # fmt: skip
    assert np.allclose(got, [[0.9, 3.3], [4.9, 8.1]])
    assert metrics.detection(truth, postprocess.binarize(curve, step, Binarize(0.7, 0.3)), 10.0).error_rate == 0


def test_bad_settings_and_curves_are_refused():
    with pytest.raises(Exception, match="must not exceed onset"):
        Binarize(onset=0.3, offset=0.6)
    with pytest.raises(Exception, match="NaN"):
        postprocess.binarize(np.array([0.1, np.nan]), 0.01)


def test_union_and_overlap_know_their_answers():
    assert np.allclose(segments.union(np.array([[3, 4], [0, 1], [0.5, 2], [2, 2.5]])), [[0, 2.5], [3, 4]])
    a, b = np.array([[0.0, 2.0], [5.0, 6.0]]), np.array([[1.0, 3.0], [6.0, 7.0]])
    assert np.allclose(segments.overlap_regions([a, b]), [[1.0, 2.0]])  # touching at 6 s is no overlap


BAD_RTTM = [
    ("SPEAKER r1 1 -1.0 2.0 <NA> <NA> a <NA> <NA>", "negative start"),
    ("SPEAKER r1 1 1.0 0.0 <NA> <NA> a <NA> <NA>", "empty or negative duration"),
    ("SPEAKER r1 1 1.0 x <NA> <NA> a <NA> <NA>", "must be numbers"),
    ("SPEAKER r1 1 1.0 2.0 <NA> <NA>", "at least 8 fields"),
    ("SPEAKER r9 1 1.0 2.0 <NA> <NA> a <NA> <NA>", "unknown recording 'r9'"),
    ("SPEAKER r1 1 9.0 2.0 <NA> <NA> a <NA> <NA>", "past the end"),
]


@pytest.mark.parametrize("line, message", BAD_RTTM)
def test_a_bad_rttm_line_is_named_by_file_and_line(tmp_path, line, message):
    path = tmp_path / "ref.rttm"
    path.write_text("SPEAKER r1 1 0.0 0.5 <NA> <NA> a <NA> <NA>\n" + line + "\n")
    with pytest.raises(segments.SegmentError, match=f"ref.rttm:2: .*{message}"):
        segments.read_rttm(path, {"r1": 10.0})


def test_unsorted_and_self_overlapping_turns_are_refused_and_a_written_file_reads_back(tmp_path):
    path = tmp_path / "ref.rttm"
    path.write_text("SPEAKER r1 1 5.0 1.0 <NA> <NA> a <NA> <NA>\nSPEAKER r1 1 1.0 1.0 <NA> <NA> b <NA> <NA>\n")
    with pytest.raises(segments.SegmentError, match="ref.rttm:2: lines are not in time order"):
        segments.read_rttm(path)
    path.write_text("SPEAKER r1 1 1.0 3.0 <NA> <NA> a <NA> <NA>\nSPEAKER r1 1 2.0 1.0 <NA> <NA> a <NA> <NA>\n")
    with pytest.raises(segments.SegmentError, match="ref.rttm:2: speaker 'a' overlaps their own"):
        segments.read_rttm(path)
    two = {"r1": np.array([[0.5, 1.25], [2.0, 4.0]]), "r2": np.array([[0.0, 0.75]])}
    back = segments.read_rttm(segments.write_rttm(tmp_path / "out.rttm", two))
    assert set(back) == {"r1", "r2"} and np.allclose(back["r1"]["speech"], two["r1"])


def _planted(rng, n_rec=4, duration=30.0, step=0.01, speech_level=0.65, noise=0.12):
    """Recordings whose curve sits at `speech_level` in reference speech and 0.2 elsewhere, with noise:
    a threshold just under the speech level recovers the reference best."""
    from core.longform.tuning import Curve

    curves, refs = {}, {}
    for k in range(n_rec):
        starts = np.sort(rng.uniform(0, duration - 3, 6))
        turns = segments.union(np.column_stack([starts, starts + rng.uniform(0.5, 2.5, 6)]))
        t = np.arange(int(duration / step)) * step
        inside = ((t[:, None] >= turns[:, 0]) & (t[:, None] < turns[:, 1])).any(1)
        values = np.clip(np.where(inside, speech_level, 0.2) + rng.normal(0, noise, len(t)), 0, 1)
        curves[f"r{k}"] = Curve(values, step, duration)
        refs[f"r{k}"] = [turns]
    return curves, refs


def test_tuning_on_dev_beats_the_plain_threshold_and_never_reads_test():
    from core.longform.tuning import evaluate, tune

    rng = np.random.default_rng(3)
    dev, dev_ref = _planted(rng)
    test, test_ref = _planted(rng)
    rule, table = tune(dev, dev_ref, "error_rate")
    assert table[0]["error_rate"] == min(r["error_rate"] for r in table)
    plain = evaluate(Binarize(), test, test_ref)  # 0.5 lies between the levels but noise makes it chatter
    tuned = evaluate(rule, test, test_ref)
    assert tuned.error_rate < 0.5 * plain.error_rate
    # test references do not reach the choice: scramble them and tune again on dev
    scrambled = {r: [np.array([[0.0, 1.0]])] for r in test_ref}
    assert tune(dev, dev_ref, "error_rate")[0] == rule and evaluate(rule, test, scrambled) != tuned
    f1_rule, _ = tune(dev, dev_ref, "f1")
    assert evaluate(f1_rule, dev, dev_ref).f1 >= evaluate(rule, dev, dev_ref).f1
    budget_rule, rows = tune(dev, dev_ref, "miss_at_fa", fa_budget=0.02)
    d = evaluate(budget_rule, dev, dev_ref)
    assert d.false_alarm / d.total <= 0.02


def test_tuning_refuses_what_it_cannot_do():
    from core.longform.tuning import tune

    curves, refs = _planted(np.random.default_rng(0), n_rec=1)
    with pytest.raises(Exception, match="objective must be one of"):
        tune(curves, refs, "accuracy")
    with pytest.raises(Exception, match="unknown post-processing setting"):
        tune(curves, refs, grid={"onsett": [0.5]})
    with pytest.raises(Exception, match="no reference for recording"):
        tune(curves, {})
    with pytest.raises(Exception, match="false-alarm rate within"):
        tune(curves, refs, "miss_at_fa", grid={"onset": [0.0], "offset": [0.0]}, fa_budget=0.0)


def test_an_assembled_recording_knows_where_its_speech_is():
    from core.longform.assemble import SR, assemble_one

    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    burst = np.zeros(SR, np.float32)
    burst[4000:12000] = 0.5 * np.sin(2 * np.pi * 200 * t[4000:12000])  # speech 0.25–0.75 s of its clip
    hum = (0.3 * np.sin(2 * np.pi * 60 * np.arange(2 * SR) / SR)).astype(np.float32)
    clips = [(hum, "nonspeech", "hum"), (burst, "speech", "spk1"), (burst, "speech", "spk2")]
    y, turns = assemble_one(clips, None, None, rng, overlap_prob=0.0)
    assert set(turns) == {"spk1", "spk2"}
    for segs in turns.values():
        assert len(segs) == 1 and segs[0, 1] - segs[0, 0] == pytest.approx(0.5, abs=0.011)
        a, b = (segs[0] * SR).astype(int)
        assert np.abs(y[a + 100 : b - 100]).min() >= 0 and np.sqrt(np.mean(y[a:b] ** 2)) > 0.1
    speech = np.zeros(len(y), bool)
    for segs in turns.values():
        for a, b in (segs * SR).astype(int):
            speech[a:b] = True
    loud = np.abs(y) > 1e-3
    assert (loud & ~speech).sum() / SR == pytest.approx(2.0, abs=0.02)  # only the hum sounds outside speech


def test_the_long_form_set_keeps_each_recording_in_one_part_and_its_reference_reads_clean(default_ds):
    import pandas as pd

    from core.data.splits import make_split, save_split
    from core.longform.assemble import build_longform

    save_split(default_ds, "lf-split", make_split(default_ds.manifest, seed=1), {"seed": 1})
    folder = build_longform(default_ds, "lf-split", "lf-test", seconds=30.0)
    recs = pd.read_csv(folder / "recordings.csv")
    assert set(recs["part"]) == {"train", "dev", "test"} and len(recs) >= 6
    by_group = recs.assign(group=recs["groups"].str.split(";")).explode("group").groupby("group")["part"].nunique()
    assert by_group.max() == 1  # no speaker or source in two parts
    ref = segments.read_rttm(folder / "reference.rttm", dict(zip(recs["recording_id"], recs["duration_s"])))
    assert set(ref) <= set(recs["recording_id"]) and len(ref) >= len(recs) - 1
