"""The pieces a first-time user's study goes through: your own clips, flips, verdicts, tags, the report."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from streamlit.testing.v1 import AppTest

from core.analysis.compare import compare, disagreements, verdict
from core.analysis.thresholds import flipped
from core.errors import AudioError, LabError
from tests import sim_tables
from tests.conftest import REPO

APP = str(REPO / "app.py")


def _wav(x: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _tone(seconds: float = 1.0, sr: int = 16000, f: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)


# --- flips and verdicts against known answers ------------------------------------------------


def test_flipped_lists_exactly_the_clips_whose_decision_changes():
    table = pd.DataFrame(
        {
            "clip_id": list("abcdef"),
            "label": ["speech", "speech", "nonspeech", "nonspeech", "speech", "nonspeech"],
            "group_id": ["g"] * 6,
            "logit": [-1.5, 0.5, 0.8, -3.0, 2.5, 1.2],
        }  # fmt: skip
    )
    f = flipped(table, 0.0, 1.0)  # threshold 0 -> 1: clips with logit in (0, 1] flip to non-speech
    assert f["clip_id"].tolist() == ["c", "b"]  # closest to the new threshold first (|0.8-1| < |0.5-1|)
    assert f.set_index("clip_id")["flip"].to_dict() == {"b": "broken", "c": "fixed"}
    top = flipped(table, 0.0, 1.0, limit=1)  # a page lists the first few of many: totals stay whole
    assert top["clip_id"].tolist() == ["c"] and top.attrs == {"n_flipped": 2, "n_fixed": 1}
    g = flipped(table, 0.0, 0.0, 1.0, 0.5)  # T 1 -> 0.5 keeps every sign: nothing flips at threshold 0
    assert g.empty
    h = flipped(table, 1.0, 1.0, 1.0, 2.0)  # T doubles: logit/T > 1 loses 1.2 (f) and 0.5 stays below
    assert h["clip_id"].tolist() == ["f"] and h["flip"].tolist() == ["fixed"]


def _paired(n_groups: int, per_group: int, p_a: float, p_b: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    ids = [f"c{i}" for i in range(n)]
    labels = np.where(np.arange(n) % 2 == 0, "speech", "nonspeech")
    sign = np.where(labels == "speech", 1.0, -1.0)
    groups = [f"g{i // per_group}" for i in range(n)]
    a = pd.DataFrame({"clip_id": ids, "label": labels, "group_id": groups,
                      "logit": sign * np.where(rng.random(n) < p_a, 2.0, -2.0)})  # fmt: skip
    b = a.assign(logit=sign * np.where(rng.random(n) < p_b, 2.0, -2.0))
    return a, b


def test_verdict_names_the_better_model_only_when_the_clustered_interval_excludes_zero():
    a, b = _paired(60, 10, 0.95, 0.75)
    res = compare(a, b, n_boot=200)
    assert res.ci_clustered[0] > 0
    assert verdict(res, "X", "Y").startswith("X is better than Y: ")
    assert verdict(compare(b, a, n_boot=200), "Y", "X").startswith("X is better than Y")
    # a small difference with 4 groups: no winner, and how many groups would settle it
    a, b = _paired(4, 30, 0.80, 0.75, seed=3)
    res = compare(a, b, n_boot=200)
    text = verdict(res, "A", "B")
    assert text.startswith("No clear winner on 120 clips in 4 groups")
    assert f"about {res.power['groups']} groups" in text
    same = compare(a, a, n_boot=200)
    assert "exactly the same clips" in verdict(same)
    d = disagreements(a, b)
    assert len(d) == res.table[0, 1] + res.table[1, 0]
    assert (d["right"] == "A").sum() == res.table[0, 1]


def test_a_typed_tag_wins_over_the_preset():
    from ui.clip_panel import chosen_tag

    assert chosen_tag("label wrong", "  my own words ") == "my own words"
    assert chosen_tag("label wrong", "") == "label wrong"
    assert chosen_tag("other…", "") == ""  # then annotations refuse an empty tag with a message


# --- LaTeX for a paper -----------------------------------------------------------------------------


def test_latex_tables_are_booktabs_and_escape_ids(tmp_path):
    from core.report.tables import to_latex, write_table

    df = pd.DataFrame({"clip_id": ["rec_a&b", "x%y"], "accuracy": [0.91234, 0.5]})
    tex = to_latex(df, "Per clip", "tab:x")
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "rec\\_a\\&b" in tex and "x\\%y" in tex and "0.912" in tex and "clip\\_id" in tex
    csv, tex_path = write_table(df, tmp_path, "t", "caption")
    pd.testing.assert_frame_equal(pd.read_csv(csv), df)
    assert tex_path.read_text() == to_latex(df, "caption", "tab:t")
    # the lab's own labels ("lab-base · default/x/test", "−0.3", "α") become LaTeX, not raw Unicode
    tex = to_latex(pd.DataFrame({"detector": ["lab-base · d/s/test"], "Δ (α = 0.05) ≥ −0.3": [1.0]}), "α · β")
    assert all(ord(ch) < 128 for ch in tex) and "$\\cdot$" in tex


def test_reliability_diagram_tells_before_from_after():
    from core.report.figures import reliability_diagram

    r = pd.DataFrame({"mean_predicted": [0.2, 0.8], "fraction_positive": [0.3, 0.7], "ci_lower": [0.2, 0.6],
                      "ci_upper": [0.4, 0.8], "count": [10, 12], "lower": [0.0, 0.5], "upper": [0.5, 1.0],
                      "few": [False, False]})  # fmt: skip
    fig = reliability_diagram({"before": r, "after": r})
    lines = {t.name: t.line.color for t in fig.data if t.type == "scatter" and t.name in ("before", "after")}
    bars = {t.legendgroup: t.marker.color for t in fig.data if t.type == "bar"}
    assert lines["before"] != lines["after"] and bars == lines  # each bin count in its curve's colour
    assert all(t.showlegend is not False for t in fig.data if t.type == "bar")  # and named in the legend


# --- your own clips ----------------------------------------------------------------------------------


def test_uploads_decode_like_any_clip_and_errors_name_the_upload():
    from core.data.own_clips import decode_upload

    stereo = np.stack([_tone(0.5, 44100), _tone(0.5, 44100, 220)], axis=1)
    audio = decode_upload("take 1.wav", _wav(stereo, 44100))
    assert audio.sr == 16000 and len(audio.samples) == 8000
    assert any("mono" in n for n in audio.notes) and any("44100" in n for n in audio.notes)
    with pytest.raises(AudioError, match=r"^broken\.wav: cannot decode"):
        decode_upload("broken.wav", b"RIFF\x00\x00not audio at all")
    with pytest.raises(AudioError, match=r"^quiet\.wav: silent clip"):
        decode_upload("quiet.wav", _wav(np.zeros(16000, np.float32), 16000))
    with pytest.raises(AudioError, match="not an audio file"):
        decode_upload("notes.txt", b"hello")


def test_an_upload_is_one_signal_scored_stored_and_hashed_alike(tmp_path, monkeypatch, default_ds):
    """Float samples beyond ±1: clipped once, with a note; what is scored is what is stored and hashed."""
    from core.data.audio import content_hash
    from core.data.own_clips import MAX_SECONDS, add_clips, decode_upload

    monkeypatch.setenv("LAB_DATA_DIR", str(tmp_path))
    loud = (6 * _tone(0.5, 16000)).astype(np.float32)  # peaks at 1.8
    buf = io.BytesIO()
    sf.write(buf, loud, 16000, subtype="FLOAT", format="WAV")
    audio = decode_upload("loud.wav", buf.getvalue())
    assert np.abs(audio.samples).max() <= 1.0
    assert any("beyond ±1 (peak 1.80) clipped to ±1" in n for n in audio.notes), audio.notes
    ds = add_clips("loud", [("loud.wav", audio)], "nonspeech", "g")
    row = ds.manifest.iloc[0]
    stored = ds.load_clip(row["clip_id"]).samples
    np.testing.assert_array_equal(stored, audio.samples)  # scored == stored, bit for bit
    assert row["content_hash"] == content_hash(audio.samples) == content_hash(stored)
    long = decode_upload("long.wav", _wav(_tone(MAX_SECONDS + 10, 16000), 16000))
    assert len(long.samples) == MAX_SECONDS * 16000
    assert any(f"cut to its first {MAX_SECONDS:g} s of {MAX_SECONDS + 10:.1f} s" in n for n in long.notes)


def test_own_clips_become_a_dataset_of_their_own(tmp_path, monkeypatch, default_ds):
    from core.data.datasets import load_dataset
    from core.data.own_clips import add_clips, decode_upload

    monkeypatch.setenv("LAB_DATA_DIR", str(tmp_path))
    a = decode_upload("a.wav", _wav(_tone(), 16000))
    b = decode_upload("b b.flac", _wav(_tone(f=300), 16000))
    ds = add_clips("mine", [("a.wav", a), ("b b.flac", b)], "nonspeech", "kitchen")
    assert len(ds.manifest) == 2 and set(ds.manifest["group_id"]) == {"kitchen"}
    assert ds.info["kind"] == "own clips"
    np.testing.assert_allclose(ds.load_clip(ds.manifest["clip_id"][0]).samples, a.samples, atol=1e-4)
    with pytest.raises(LabError, match="already in 'mine'"):
        add_clips("mine", [("again.wav", a)], "nonspeech", "kitchen")
    assert len(load_dataset("mine").manifest) == 2  # the refused add changed nothing
    with pytest.raises(LabError, match="label 'music'"):
        add_clips("mine", [("c.wav", a)], "music", "kitchen")
    with pytest.raises(LabError, match="invalid group name"):
        add_clips("mine", [("c.wav", a)], "speech", "../up")
    monkeypatch.setenv("LAB_DATA_DIR", str(default_ds.root.parent.parent))
    with pytest.raises(LabError, match="dataset of your own"):
        add_clips("default", [("c.wav", a)], "speech", "me")


def test_try_a_clip_page_scores_an_upload_with_every_offline_detector(default_ds, tmp_path, monkeypatch):
    from core.data.own_clips import decode_upload
    from core.scoring.clips import offline_detectors, score_clips

    clip = default_ds.manifest[default_ds.manifest["label"] == "speech"].iloc[0]
    x = default_ds.load_clip(clip["clip_id"]).samples
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("views/try_clip.py").run()
    assert not at.exception
    assert any("Upload" in i.value for i in at.info)  # says what to do first
    at.file_uploader(key="try_files").set_value(("speech.wav", _wav(x, 16000), "audio/wav")).run()
    assert not at.exception and not at.error
    shown = next(d.value for d in at.dataframe)
    detectors = offline_detectors()
    assert set(detectors) == {"lab-base", "silero-vad", "webrtc-vad"}
    runs = [c for c in shown.columns if c.startswith("run:")]  # the newest finished run, when a test trained one
    assert list(shown.columns) == detectors + runs and len(runs) <= 1 and list(shown.index) == ["speech.wav"]
    direct = score_clips({"speech.wav": decode_upload("speech.wav", _wav(x, 16000)).samples}, detectors)
    for det in detectors:
        expected = direct.set_index("detector").at[det, "p_speech"]
        assert shown.at["speech.wav", det] == pytest.approx(expected, abs=1e-6)
    # keep it: a new dataset of the user's own
    monkeypatch.setenv("LAB_DATA_DIR", str(tmp_path))
    at.text_input(key="try_new_name").set_value("my-takes")
    at.selectbox(key="try_label").set_value("speech")
    at.text_input(key="try_group").set_value("alice")
    at.button[-1].click().run()
    assert not at.exception and not at.error
    assert any("added 1 clip(s) to 'my-takes'" in s.value for s in at.success)


# --- the study report ------------------------------------------------------------------------------


def test_study_report_writes_html_and_every_table(default_ds, tmp_path):
    from core.report.study import write_report

    sim_tables.make_tables(default_ds)
    path = write_report(default_ds.name, "simsplit", tmp_path / "rep")
    text = path.read_text()
    for section in ("Dataset and split", "Fine-tuning runs", "Detectors on test", "Comparisons",
                    "Psychometric thresholds", "Worst clips"):  # fmt: skip
        assert f"<h2>{section}" in text
    assert not re.search(r"<script[^>]*src=", text) and "Plotly.newPlot" in text  # inlined: opens offline
    tables = tmp_path / "rep" / "tables"
    det = pd.read_csv(tables / "detectors.csv")
    assert len(det) == 2 and det["detector"].str.startswith("sim-").all()
    # the over-confident detector (planted T = 6) gets a dev-fitted temperature near 6, and a lower ECE
    over = det[det["detector"].str.startswith("sim-overconfident")].iloc[0]
    assert 4.5 < over["T (fitted on dev)"] < 7.5 and over["ece_after"] < over["ece_before"]
    parts = pd.read_csv(tables / "split_parts.csv").set_index("part")
    assert parts["clips"].sum() == len(default_ds.manifest)
    for name in ("split_parts", "detectors", "comparisons", "worst_clips"):
        assert (tables / f"{name}.csv").exists() and "\\toprule" in (tables / f"{name}.tex").read_text()
    # the trust section: each rule fitted on dev (dev counted by groups), judged on test, as computed directly
    from core.analysis import conformal
    from core.scoring import predictions

    assert "<h2>Trust: decide or abstain" in text
    ab = pd.read_csv(tables / "abstain.csv").set_index("detector")
    dev, _ = predictions.load(predictions.resolve("sim-overconfident-dev"))
    test, _ = predictions.load(predictions.resolve("sim-overconfident-test"))
    rule = conformal.fit_selective((dev["label"] == "speech").to_numpy(), dev["p_speech"].to_numpy(), 0.05, 0.1,
                                   groups=dev["group_id"].to_numpy())  # fmt: skip
    res = conformal.apply_selective(rule, (test["label"] == "speech").to_numpy(), test["p_speech"].to_numpy())
    row = ab.loc[next(i for i in ab.index if i.startswith("sim-overconfident"))]
    assert row["decided"] == pytest.approx(res["decided"]) and row["threshold"] == pytest.approx(rule.threshold)
    with pytest.raises(LabError, match="no split 'nope'"):
        write_report(default_ds.name, "nope", tmp_path / "rep2")
    assert not (tmp_path / "rep2").exists()


# --- the command behind each action ------------------------------------------------------------


def test_every_command_line_parses_back_to_the_same_settings():
    import shlex

    from core.cli import build_parser
    from core.cli.runs import _grid, _train_config
    from core.prompts.study import StudyConfig
    from core.runs.commands import cli_line, cv_line, run_line, study_line, sweep_line
    from core.runs.train_config import TrainConfig

    parse = lambda line: build_parser().parse_args(shlex.split(line)[3:])  # noqa: E731 - after "python -m core"
    job = ["evaluate", "--dataset", "d", '--prompt=it\'s "A"; rm -rf /', "--job-dir", "/x/y", "--executor", "local"]
    line = cli_line(job)
    assert "--job-dir" not in line and "--executor" not in line
    assert parse(line).prompt == 'it\'s "A"; rm -rf /'  # quoted: one argument, nothing a shell would run
    cfg = TrainConfig(dataset="d", split="s", lora_r=8, class_balanced=False, prompt="Is it speech? <audio>", lr=3e-4)
    assert _train_config(parse(run_line(cfg))) == cfg
    args = parse(sweep_line(cfg, {"lora_r": [4, 8], "targets": ["attention"]}, [0, 1], parallel=2))
    assert _grid(args.grid) == {"lora_r": [4, 8], "targets": ["attention"]} and args.seeds == [0, 1]
    assert _train_config(args) == cfg and args.parallel == 2
    args = parse(cv_line(cfg, "loso", "group_id", [0, 3], detector="silero-vad"))
    assert (args.folds, args.by, args.seeds, args.zero_shot) == ("loso", "group_id", [0, 3], "silero-vad")
    study = StudyConfig(dataset="d", split="s", iterations=5, start_prompt="Speech? A or B", load_in_4bit=True)
    args = parse(study_line(study))
    assert (args.dataset, args.iterations, args.start_prompt, args.load_in_4bit) == ("d", 5, "Speech? A or B", True)


def test_eta_follows_the_average_pace_and_finished_jobs_can_be_cleared(tmp_path, monkeypatch):
    from core.runs import jobs

    job = {"state": "running", "progress": 0.25, "created": 1000.0}
    assert jobs.eta_seconds(job, now=1100.0) == pytest.approx(300.0)  # 100 s for a quarter: 300 s left
    assert jobs.eta_seconds({**job, "progress": 0.01}, now=1100.0) is None  # too early to say
    assert jobs.eta_seconds({**job, "state": "finished"}, now=1100.0) is None
    monkeypatch.setenv("LAB_RESULTS_DIR", str(tmp_path))
    for state in ("finished", "running"):
        folder = jobs.jobs_dir() / f"20260101-00000{len(state)}-evaluate-{state}"
        folder.mkdir(parents=True)
        (folder / "job.json").write_text(json.dumps({"id": folder.name, "kind": "evaluate", "label": "", "args": []}))
        jobs.write_status(folder, state, 1.0 if state == "finished" else 0.5, "")
    assert jobs.archive_finished("evaluate") == 1
    assert [j["state"] for j in jobs.list_jobs("evaluate")] == ["running"]


# --- empty states ------------------------------------------------------------------------------------


PAGES = [
    "views/data.py", "views/split_audit.py", "views/evaluate.py", "views/runs.py", "views/prompts.py",
    "views/calibration.py", "views/thresholds.py", "views/compare.py", "views/decide.py", "views/psychometrics.py",
    "views/errors.py", "views/label_issues.py", "views/clip_map.py", "views/timeline.py", "views/try_clip.py",
    "views/report.py",
]  # fmt: skip


def test_every_page_is_listed_in_the_app():
    app = (REPO / "app.py").read_text()
    assert sorted(PAGES) == sorted(f"views/{p.name}" for p in (REPO / "views").glob("*.py"))
    assert all(f'("{Path(p).stem}", ' in app for p in PAGES)
    assert not (REPO / "pages").exists()  # Streamlit would serve a pages/ folder by URL without app.py's sign-in


@pytest.mark.parametrize("page_path", PAGES)
def test_with_nothing_yet_every_page_says_what_to_do_first(page_path, tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LAB_RESULTS_DIR", str(tmp_path / "results"))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(page_path).run()
    assert not at.exception and not at.error
    said = " ".join(i.value for i in at.info)
    assert said, f"{page_path} shows nothing to do first"
    assert any(w in said for w in ("Build", "build", "Upload", "First", "first", "Make", "score")), said


def test_report_page_writes_the_report(default_ds):
    from core.paths import results_root

    sim_tables.make_tables(default_ds)
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("views/report.py").run()
    at.selectbox(key="rep_split").set_value("simsplit").run()
    assert any("python -m core report --dataset default --split simsplit" in c.value for c in at.code)
    at.button(key="rep_go").click().run()
    assert not at.exception and not at.error
    path = results_root() / "reports" / "default-simsplit" / "report.html"
    assert any(str(path) in s.value for s in at.success) and path.exists()


def test_runs_side_by_side_against_a_pinned_baseline(default_ds):
    from core.data.audit import audit_split
    from core.data.splits import make_split, save_split
    from core.runs import registry
    from core.runs.training import TrainConfig, train_run

    save_split(default_ds, "side-by-side", make_split(default_ds.manifest, seed=11), {"seed": 11})
    audit_split(default_ds, "side-by-side")
    ids = []
    for seed in (0, 1):
        cfg = TrainConfig(dataset="default", split="side-by-side", epochs=1, max_train_clips=32, seed=seed)
        ids.append(registry.create_run(cfg))
        train_run(registry.runs_dir() / ids[-1])
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["cmp_baseline"] = ids[0]
    at.run()
    at.switch_page("views/runs.py").run()
    at.multiselect(key="cmp_others").set_value([ids[1]]).run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "Δ balanced_accuracy" in d.value.columns)
    base, other = (registry.result(i)["test"]["balanced_accuracy"] for i in ids)
    row = table.set_index("run").loc[ids[1]]
    assert row["Δ balanced_accuracy"] == pytest.approx(other - base, abs=1e-9)
    assert table["run"].iloc[0] == f"{ids[0]} (baseline)"
    spec = next(c.proto.spec for c in at.get("plotly_chart") if "(baseline)" in c.proto.spec)
    assert ids[1] in spec  # the other run's dev curve overlaid on the baseline's


def test_duration_ticks_never_crowd_a_narrow_panel():
    from core.report.figures import spaced_ticks

    levels = [25, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000]
    ticks = spaced_ticks(levels, 5)
    assert ticks[0] == 25 and ticks[-1] == 2000 and len(ticks) <= 5 and set(ticks) <= set(levels)
    assert np.diff(np.log10(ticks)).min() >= 0.9 * np.log10(2000 / 25) / 4
    assert spaced_ticks([100, 200, 500, 1000], 9) == [100, 200, 500, 1000]  # room for all: all kept
