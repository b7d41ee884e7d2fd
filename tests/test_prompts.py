"""Prompt trials and optimisation (OPRO) on the embedded dataset with the lab base model."""

import json
import os
import signal
import time

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.data.datasets import load_dataset
from core.data.splits import make_split, save_split, select_clips
from core.detectors import lab_model
from core.detectors.llm.prompt import DEFAULT_PROMPT, Prompt
from core.errors import LabError
from core.prompts import candidates, report, study
from core.prompts.proposers.base import Scored, meta_prompt
from core.prompts.proposers.builtin import BuiltinProposer, wording
from core.prompts.subset import cells, ci_halfwidth, stratified_subset
from core.scoring import predictions
from tests.conftest import REPO, wait_for

# the lab base model learned to answer with the letters A and B; asked for Yes / No it does worse than chance
POOR = {"start_prompt": "Does this audio contain human speech?", "start_speech": "Yes", "start_nonspeech": "No"}


@pytest.fixture(scope="module")
def split(default_ds):
    save_split(default_ds, "prompts", make_split(default_ds.manifest, seed=0), {"seed": 0})
    return "prompts"


# ---------------------------------------------------------------- candidates, edits, subset, report


def test_replies_are_parsed_or_turned_away_with_a_reason():
    ok = candidates.parse_reply("Sure! <PROMPT>Is it speech?</PROMPT> <SPEECH>yes</SPEECH><NONSPEECH>no</NONSPEECH>")
    assert ok.ok and ok.prompt == Prompt("Is it speech?", "yes", "no")
    assert candidates.parse_reply("<prompt>Speech?</prompt>").prompt == Prompt("Speech?", "A", "B")
    assert "no <PROMPT>" in candidates.parse_reply("I think you should ask about speech").reason
    assert "only one of" in candidates.parse_reply("<PROMPT>x?</PROMPT><SPEECH>y</SPEECH>").reason
    seen = {candidates.key(Prompt("Is it  speech?")): "prompt #0"}
    reasons = {
        "dup": candidates.check(Prompt("Is it speech?\n"), seen),
        "long": candidates.check(Prompt("Speech? " * 200), {}),
        "special": candidates.check(Prompt("<|im_start|>system\nIs it speech?"), {}),
        "words": candidates.check(Prompt("?? 123 !!"), {}),
        "slots": candidates.check(Prompt("<audio><audio> speech?"), {}),
        "same": candidates.check(Prompt("Speech?", "yes", "yes"), {}),
    }
    assert "duplicate of prompt #0" in reasons["dup"]
    assert "too long" in reasons["long"] and "control token" in reasons["special"]
    assert "no words" in reasons["words"] and "one audio slot" in reasons["slots"] and "same text" in reasons["same"]
    screened = candidates.screen([ok, ok, candidates.parse_reply("nothing")], {}, "iteration 1")
    assert [v.reason for v in screened][:2] == ["", "duplicate of iteration 1 #1"] and not screened[2].ok


def test_builtin_proposer_is_seeded_and_keeps_prompts_valid():
    history = [Scored(0, Prompt(DEFAULT_PROMPT), 0.7), Scored(1, Prompt("Is there speech?\n<audio>", "Yes", "No"), 0.6)]
    p = BuiltinProposer()
    first, again = p.propose("", history, 12, seed=5), p.propose("", history, 12, seed=5)
    assert [v.prompt for v in first] == [v.prompt for v in again]
    assert [v.prompt for v in p.propose("", history, 12, seed=6)] != [v.prompt for v in first]
    for v in first:
        assert v.prompt.text.count("<audio>") <= 1 and candidates.check(v.prompt, {}) == "", v
        assert v.parents and v.raw.startswith("builtin:")
    assert len({candidates.key(v.prompt) for v in first}) > 6  # the edits explore
    # "audio" is a word to vary, but the clip's slot marker is not
    assert wording(Prompt("Is it speech?\n<audio>"), np.random.default_rng(0)) is None


def test_meta_prompt_lists_scores_ascending_best_last():
    history = [Scored(i, Prompt(f"Q{i}?"), s) for i, s in enumerate([0.6, 0.9, 0.7])]
    text = meta_prompt(history)
    assert text.index("Q0?") < text.index("Q2?") < text.index("Q1?")
    assert "score: 90.0" in text and "<PROMPT>your question</PROMPT>" in text


def test_subset_is_stratified_deterministic_and_spread_over_groups(default_ds, split):
    dev = select_clips(default_ds, split, "dev")
    ids = stratified_subset(dev, 150, seed=3)
    assert len(ids) == len(set(ids)) == 150 and ids == stratified_subset(dev, 150, seed=3)
    chosen = dev[dev["clip_id"].isin(ids)]
    share_all = cells(dev).value_counts(normalize=True)
    share_sub = cells(chosen).value_counts(normalize=True).reindex(share_all.index, fill_value=0)
    assert (share_all - share_sub).abs().max() < 1.5 / 150 + 1e-9  # proportional to within one clip per cell
    assert chosen["group_id"].nunique() == dev["group_id"].nunique()  # every group represented
    assert len(stratified_subset(dev, 10**6)) == len(dev)
    assert 0.05 < ci_halfwidth(150) < 0.1 and ci_halfwidth(600) < ci_halfwidth(150)
    with pytest.raises(LabError):
        stratified_subset(dev, 0)


def test_report_by_condition_against_a_hand_count():
    t = pd.DataFrame(
        {
            "clip_id": list("abcdef"),
            "label": ["speech", "speech", "nonspeech", "nonspeech", "speech", "nonspeech"],
            "group_id": list("gghhgh"),
            "duration_ms": [200.0, 1000, 200, 1000, 200, 200],
            "snr_db": [np.nan, 0, np.nan, 0, 0, 0],
            "logit": [1.0, -1, -1, 1, 1, 1],
            "prompt": "q",
        }
    )
    long = report.by_condition({"p": t, "q": t.assign(logit=-t["logit"])})
    row = long[(long["condition"] == "duration_ms") & (long["level"] == "200 ms") & (long["table"] == "p")].iloc[0]
    # 200 ms: speech a, e right (2/2); non-speech c right, f wrong (1/2): (1 + 0.5) / 2
    assert row["balanced_accuracy"] == pytest.approx(0.75) and row["clips"] == 4
    clean = long[(long["level"] == "clean") & (long["table"] == "q")].iloc[0]
    assert clean["balanced_accuracy"] == pytest.approx(0.0)  # q flips every decision: a and c wrong
    bw = report.best_and_worst(long)
    assert set(bw.loc[bw["level"] == "200 ms", "best"]) == {"p"}


# ---------------------------------------------------------------- the search


def test_a_search_from_a_poor_prompt_improves_dev_and_ends_once_on_test(voices_ds):
    # on real voices, where the lab base model hears the difference (its pool is this split's train part)
    split = "default"
    cfg = study.StudyConfig(dataset=voices_ds.name, split=split, iterations=3, candidates=8, subset=150, **POOR)
    sid = study.create(cfg)
    res = study.run(sid)
    frame = study.progress_frame(sid)
    assert list(frame["iteration"]) == [0, 1, 2, 3]
    assert frame["best_so_far"].iloc[-1] > frame["best_so_far"].iloc[0] + 0.1  # dev balanced accuracy improved
    assert np.all(np.diff(frame["best_so_far"]) >= 0)
    h = study.history(sid)
    assert h["id"].tolist() == list(range(len(h))) and (h.loc[h["iteration"] > 0, "parents"].map(len) > 0).all()
    assert {"score", "ci_lower", "ci_upper", "parents", "origin", "table"} <= set(h.columns)
    # the search read dev only, on the fixed subset: every candidate's table is dev, the same clips
    subset = set(json.loads((study.folder(sid) / "study.json").read_text())["subset"])
    tables = [p for s in predictions.SUFFIXES for p in (study.folder(sid) / "tables").glob(f"*{s}")]
    assert tables
    for path in tables:
        table, meta = predictions.load(path)
        assert meta["part"] == "dev" and set(table["clip_id"]) == subset
    # the end: start and best, each on the whole dev part and on test, as ordinary tables
    assert res == study.result(sid)
    assert res["best"]["dev_subset"] > res["start"]["dev_subset"]
    assert res["best"]["test"]["balanced_accuracy"] > res["start"]["test"]["balanced_accuracy"]
    # judged by the metric searched (balanced accuracy), paired on the same clips, with intervals
    g = res["balanced_accuracy_gain_on_test"]
    assert g["diff"] == pytest.approx(
        res["best"]["test"]["balanced_accuracy"] - res["start"]["test"]["balanced_accuracy"]
    )
    assert g["ci"][0] <= g["diff"] <= g["ci"][1]
    sub = res["balanced_accuracy_gain_on_subset"]
    assert sub["diff"] == pytest.approx(res["best"]["dev_subset"] - res["start"]["dev_subset"])
    o = res["optimism"]
    assert o["diff"] == pytest.approx(sub["diff"] - g["diff"]) and o["ci"][0] < o["diff"] < o["ci"][1]
    # the dev score leaves out the clips the search chose on
    n_dev = len(select_clips(load_dataset(study.config(sid).dataset), split, "dev"))
    assert res["best"]["dev_clips_unseen"] == n_dev - len(subset)
    for name in res["tables"]["dev"] + res["tables"]["test"]:
        predictions.load(predictions.resolve(name))
    c = res["compare_best_vs_start_on_test"]
    assert c["n_clips"] == len(select_clips(load_dataset(study.config(sid).dataset), split, "test"))
    assert 0 <= c["mcnemar"]["exact"] <= 1 and c["ci_clustered"][0] <= c["diff"] <= c["ci_clustered"][1]


def test_a_killed_search_resumes_to_the_same_result(split):
    cfg = study.StudyConfig(split=split, iterations=3, candidates=8, subset=372, seed=1, **POOR)
    straight = study.create(cfg)
    study.run(straight)
    killed = study.create(cfg)
    study.launch(killed)
    path = study.folder(killed) / "history.jsonl"
    t0 = time.time()
    while (not path.exists() or len(path.read_text().splitlines()) < 2) and time.time() - t0 < 300:
        time.sleep(0.02)  # iteration 1 written: kill it mid-search
    pid = json.loads((study.folder(killed) / "pid.json").read_text())["pid"]
    os.killpg(pid, signal.SIGKILL)
    s = wait_for(study.status, killed)
    assert s["state"] == "failed", s  # a vanished process reads as failed, and can be resumed
    done = len(study.iterations(killed))
    assert 2 <= done <= 3 and study.result(killed) is None
    with open(path, "a") as fh:  # a torn last line, as a kill mid-write leaves it
        fh.write('{"iteration": 9, "scor')
    study.launch(killed, resume=True)
    assert wait_for(study.status, killed)["state"] == "finished"
    a, b = study.history(straight), study.history(killed)
    pd.testing.assert_frame_equal(a.drop(columns="table"), b.drop(columns="table"))
    assert study.result(killed)["best"]["test"] == study.result(straight)["best"]["test"]
    with pytest.raises(LabError, match="finished"):
        study.launch(killed, resume=True)


def tiny_causal_lm(folder):
    """A randomly initialised causal LM built from a config, with the lab tokenizer (chat template): no download."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = lab_model.build_tokenizer()
    tok.chat_template = lab_model.CHAT_TEMPLATE
    cfg = Qwen2Config(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
    )  # fmt: skip
    Qwen2ForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("backend", ["causal-lm", "audio-llm-text"])
def test_an_llm_optimiser_that_writes_garbage_is_turned_away_and_the_search_completes(split, tmp_path, backend):
    model = tiny_causal_lm(tmp_path / "lm") if backend == "causal-lm" else ""
    cfg = study.StudyConfig(split=split, iterations=2, candidates=3, subset=60, proposer=backend, optimiser_model=model)
    sid = study.create(cfg)
    res = study.run(sid)
    rej = study.rejected(sid)
    assert len(rej) == 6 and rej["reason"].str.contains("no <PROMPT>").all(), rej
    assert rej["raw"].str.len().gt(0).all()  # what the optimiser said is kept
    assert len(study.iterations(sid)) == 3 and res["same_prompt"]  # it still ends, keeping the start
    assert "score:" in study.iterations(sid)[-1]["meta_prompt"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"start_speech": "A", "start_nonspeech": "A"}, "same text"),
        ({"start_prompt": "  "}, "prompt is empty"),
        ({"start_prompt": "<audio> or <audio>?"}, "one audio slot"),
        ({"proposer": "causal-lm", "optimiser_model": str(lab_model.base_model_dir())}, "not a causal language model"),
        ({"proposer": "causal-lm", "optimiser_model": "/nonexistent/lm"}, "neither a local directory"),
        ({"proposer": "causal-lm", "optimiser_model": ""}, "give the optimiser model"),
        ({"proposer": "gpt"}, "unknown optimiser"),
        ({"iterations": 0}, "at least 1"),
        ({"detector": "silero-vad"}, "audio LLMs"),
    ],
)
def test_bad_settings_are_refused_and_no_study_starts(split, settings, message):
    before = set(study.list_studies().get("study", []))
    with pytest.raises(LabError, match=message):
        study.create(study.StudyConfig(split=split, **settings))
    assert set(study.list_studies().get("study", [])) == before


def test_not_a_model_folder_is_refused(split, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(LabError, match="not a model folder"):
        study.create(study.StudyConfig(split=split, proposer="causal-lm", optimiser_model=str(tmp_path)))


def test_cli_try_writes_one_table_per_prompt(split, capsys):
    from core.cli import main

    rc = main(
        ["prompts", "try", "--split", split, "--subset", "60", "--name", "clitry",
         "--candidate", DEFAULT_PROMPT, "--candidate", "Is it speech?", "SPEECH", "NON-SPEECH"]
    )  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "clitry1" in out and "clitry2" in out and "best and worst prompt per condition" in out
    t, meta = predictions.load(predictions.resolve("clitry2"))
    assert len(t) == 60 and meta["answers"] == ["SPEECH", "NON-SPEECH"]
    assert meta["answer_scoring"] == "answer log-likelihood" and set(t["prompt"]) == {"Is it speech?"}
    assert main(["prompts", "try", "--split", split, "--candidate", "<audio><audio>"]) == 2


# ---------------------------------------------------------------- the page


def _page():
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("views/prompts.py").run()
    assert not at.exception
    return at


def test_prompts_page_tries_prompts(split):
    at = _page()
    at.selectbox(key="pt_split").set_value(split)
    at.number_input(key="pt_subset").set_value(60)
    next(b for b in at.button if b.label == "Score these prompts").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    job = at.session_state["pt_job"]
    from core.runs import jobs

    assert wait_for(jobs.status, job)["state"] == "finished"
    at.run()
    assert not at.exception
    frames = [d.value for d in at.dataframe]
    summary = next(f for f in frames if "balanced accuracy [95% CI, clustered]" in getattr(f, "columns", []))
    assert len(summary) == 2 and set(summary["speech"]) == {"A", "SPEECH"}
    assert any("Best and worst prompt per condition" in m.value for m in at.markdown)


def test_prompts_page_optimises_and_shows_the_honest_end(split):
    at = _page()
    at.selectbox(key="po_split").set_value(split)
    at.text_area(key="po_start").set_value(POOR["start_prompt"])
    at.text_input(key="po_speech").set_value("Yes")
    at.text_input(key="po_nonspeech").set_value("No")
    at.number_input(key="po_subset").set_value(150)
    next(b for b in at.button if b.label == "Start optimising").click().run()
    assert not at.exception and any("started" in s.value for s in at.success), [e.value for e in at.error]
    sid = at.session_state["po_study"]
    assert wait_for(study.status, sid)["state"] == "finished"
    at.run()
    assert not at.exception
    assert any("The honest end" in m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) >= 1  # best and mean per iteration
    assert any("better by" in i.value for i in at.info)
