"""`python -m core evaluate` writes a valid predictions table for every detector; jobs; the page."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.data.datasets import load_dataset
from core.data.splits import make_split, save_split
from core.runs import jobs
from core.scoring import predictions
from tests.conftest import REPO, wait_for


@pytest.fixture(scope="module")
def split_name(default_ds):
    save_split(default_ds, "evalsplit", make_split(default_ds.manifest, seed=2), {"seed": 2})
    return "evalsplit"


def _check_table(path, ds, split_name, detector):
    table, meta = predictions.load(path)
    test_ids = set(ds.manifest["clip_id"][make_split(ds.manifest, seed=2).to_numpy() == "test"])
    assert set(table["clip_id"]) == test_ids and len(table) == len(test_ids)
    assert set(predictions.REQUIRED) <= set(table.columns)
    assert np.isfinite(table[["logit_A", "logit_B"]].to_numpy()).all()
    np.testing.assert_allclose(table["logit"], table["logit_A"] - table["logit_B"], atol=1e-9)
    np.testing.assert_allclose(table["p_speech"], 1 / (1 + np.exp(-table["logit"])), atol=1e-9)
    assert (table["detector"] == detector).all() and (table["split"] == "test").all()
    assert meta["clips_per_s"] > 0 and meta["device"] == "cpu" and meta["dataset"] == ds.name
    return table, meta


@pytest.mark.parametrize("detector", ["lab-base", "silero-vad", "webrtc-vad", "audio-llm"])
def test_cli_evaluate_writes_a_valid_table(default_ds, split_name, detector):
    args = ["--detector", detector]
    if detector == "audio-llm":  # the generic path, pointed at a local checkpoint directory
        args += ["--model", str(REPO / "models" / "lab-base")]
    r = subprocess.run(
        [sys.executable, "-m", "core", "evaluate", "--split", split_name, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    path = r.stdout.strip().splitlines()[-1].removeprefix("predictions: ")
    table, meta = _check_table(
        path, default_ds, split_name, "audio-llm:lab-base" if detector == "audio-llm" else detector
    )
    if detector in ("lab-base", "audio-llm"):
        assert meta["padding"] == "trimmed" and (table["prompt"].str.contains("speech")).all()


def test_cli_answer_tokens_are_configurable(default_ds, split_name):
    """Swapping the answers (B = speech) swaps the two logits: the log-odds change sign."""
    from core.detectors import make_detector

    args = ["--split", split_name, "--detector", "lab-base", "--answer-speech=B", "--answer-nonspeech=A"]
    r = subprocess.run([sys.executable, "-m", "core", "evaluate", *args], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    table, meta = predictions.load(r.stdout.strip().splitlines()[-1].removeprefix("predictions: "))
    assert meta["answers"] == ["B", "A"]
    default = make_detector("lab-base", batch_size=16).score(
        [default_ds.load_clip(c).samples for c in table["clip_id"]], 16000
    )
    np.testing.assert_allclose(table["logit"], default[:, 1] - default[:, 0], atol=1e-4)


def test_a_split_streams_from_disk_through_worker_processes(default_ds, split_name, tmp_path):
    """core.evaluate hands an audio LLM the split unread; its workers read each batch from disk."""
    from core.data.splits import select_clips
    from core.detectors import make_detector
    from core.scoring.evaluate import score_clips

    clips = select_clips(default_ds, split_name, "test")
    streaming = make_detector("lab-base", batch_size=32, workers=2)
    seen = []
    streamed = score_clips(default_ds, clips, streaming, progress=lambda f, _: seen.append(f))
    audio = [default_ds.load_clip(c).samples for c in clips["clip_id"]]
    np.testing.assert_allclose(streamed, make_detector("lab-base", batch_size=32).score(audio, 16000), atol=1e-5)
    assert len(seen) > 3 and seen == sorted(seen) and seen[-1] == 1.0  # progress batch by batch
    asked = []
    with pytest.raises(KeyboardInterrupt):  # a cancel lands between batches, not at the end
        score_clips(default_ds, clips, streaming, should_stop=lambda: asked.append(1) or len(asked) > 2)
    assert len(asked) == 3
    # a corrupt clip read by a worker stops the scoring with the file named, not a worker traceback
    import shutil
    from dataclasses import replace

    from core.errors import AudioError

    tmp = tmp_path / "copy"
    (tmp / "audio").mkdir(parents=True)
    for cid in clips["clip_id"]:
        shutil.copy(default_ds.audio_path(cid), tmp / "audio")
    copy = replace(default_ds, root=tmp)
    broken = copy.audio_path(clips["clip_id"].iloc[40])
    broken.write_bytes(b"not audio")
    with pytest.raises(AudioError, match=f"^{broken}: cannot decode audio"):
        score_clips(copy, clips, streaming)


def test_cli_unknown_model_fails_clearly(default_ds, split_name):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "evaluate",
            "--split",
            split_name,
            "--detector",
            "audio-llm",
            "--model",
            "Qwen/Qwen2-Audio-7B-Instruct",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "cannot be fetched here" in r.stderr


def _wait(job_id, states=jobs.TERMINAL, timeout=300):
    return wait_for(jobs.status, job_id, states, timeout)


def test_job_runs_and_is_cancellable(default_ds, split_name):
    done = jobs.launch("evaluate", ["evaluate", "--split", split_name, "--detector", "webrtc-vad"])
    s = _wait(done)
    assert s["state"] == "finished" and predictions.load(s["result"])[0].shape[0] > 0
    slow = jobs.launch(
        "evaluate", ["evaluate", "--split", split_name, "--part", "all", "--detector", "lab-base", "--batch-size", "1"]
    )
    s = _wait(slow, {"running", *jobs.TERMINAL})
    while s["state"] == "running" and s["progress"] == 0:
        s = jobs.status(slow)
        time.sleep(0.2)
    jobs.cancel(slow)
    s = _wait(slow)
    assert s["state"] == "cancelled", s


def test_killed_job_is_reported_failed(default_ds, split_name):
    import os
    import signal

    job = jobs.launch(
        "evaluate", ["evaluate", "--split", split_name, "--part", "all", "--detector", "lab-base", "--batch-size", "1"]
    )
    _wait(job, {"running", *jobs.TERMINAL})
    pid = json.loads((jobs.jobs_dir() / job / "pid.json").read_text())["pid"]
    os.killpg(pid, signal.SIGKILL)
    s = _wait(job)
    assert s["state"] == "failed" and "without reporting" in s["message"]


def test_evaluate_page_scores_in_the_background(default_ds, split_name):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("views/evaluate.py").run()
    assert not at.exception
    at.selectbox(key="ev_split").set_value(split_name)
    at.selectbox(key="ev_detector").set_value("silero-vad")
    before = {j["id"] for j in jobs.list_jobs("evaluate")}
    at.button[0].click().run()
    assert not at.exception
    new = [j for j in jobs.list_jobs("evaluate") if j["id"] not in before]
    assert len(new) == 1
    s = _wait(new[0]["id"])
    assert s["state"] == "finished", s
    at.run()
    assert not at.exception
    assert any("silero-vad" in m.value and "clips/s" in m.value for m in at.markdown)
    _check_table(s["result"], load_dataset("default"), split_name, "silero-vad")
    # the job by name, with the command that repeats it; SNR columns named, clean clips as "clean", not inf
    assert any(f"silero-vad on default/{split_name}/test" in m.value for m in at.markdown)
    assert any(c.value.startswith(f"python -m core evaluate --dataset default --split {split_name}") for c in at.code)
    grid = next(d.value for d in at.dataframe if d.value.columns.name == "SNR")
    assert list(grid.columns)[-1] == "clean" and "inf" not in " ".join(map(str, grid.columns))


def test_evaluate_page_passes_audio_llm_options_to_the_job(default_ds, split_name):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("views/evaluate.py").run()
    at.selectbox(key="ev_split").set_value(split_name)
    at.selectbox(key="ev_detector").set_value("lab-base")
    at.selectbox(key="ev_dtype").set_value("fp32")
    prompt = "- Speech or not? A. speech B. no speech. Answer A or B."  # looks like an option; stays one argument
    at.text_area(key="ev_prompt").input(prompt)
    before = {j["id"] for j in jobs.list_jobs("evaluate")}
    at.button[0].click().run()
    assert not at.exception
    (new,) = [j for j in jobs.list_jobs("evaluate") if j["id"] not in before]
    s = _wait(new["id"])
    assert s["state"] == "finished", s
    table, meta = predictions.load(s["result"])
    assert meta["prompt"] == prompt and meta["dtype"] == "float32" and set(table["prompt"]) == {prompt}
    # a model that is not here: the page says so and starts no job
    at.selectbox(key="ev_detector").set_value("audio-llm")
    at.text_input(key="ev_model").input("someone/not-cached-audio-model")
    before = {j["id"] for j in jobs.list_jobs("evaluate")}
    at.button[0].click().run()
    assert not at.exception and any("cannot be fetched here" in e.value for e in at.error)
    assert {j["id"] for j in jobs.list_jobs("evaluate")} == before
    # a prompt with two places for the one clip: refused before a job starts
    at.selectbox(key="ev_detector").set_value("lab-base")
    at.text_area(key="ev_prompt").input("<audio> Speech? <audio>")
    at.button[0].click().run()
    assert not at.exception and any("one audio slot" in e.value for e in at.error)
    assert {j["id"] for j in jobs.list_jobs("evaluate")} == before
