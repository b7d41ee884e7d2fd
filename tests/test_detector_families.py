"""More detector families on tiny randomly initialised checkpoints (tests/tiny_families.py): each against
its family's own reference path in fp32, adapters for the audio-LLM families, label mappings, tables."""

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.data.audit import audit_split
from core.data.splits import make_split, save_split
from core.detectors import REGISTRY, detector_for_model_type, make_detector
from core.detectors.audio_classifier import default_speech_labels
from core.detectors.llm import FAMILIES, AudioLLMDetector, AudioLLMSpec
from core.errors import LabError
from core.runs import registry
from core.runs.training import TrainConfig, train_run
from core.scoring import predictions
from core.scoring.evaluate import evaluate
from tests import tiny_families as tiny
from tests.conftest import REPO

BUILDERS = {"audio-flamingo-3": tiny.build_audio_flamingo3, "qwen2.5-omni": tiny.build_qwen25_omni_thinker}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    out = {name: build(root / name) for name, build in BUILDERS.items()}
    out.update(whisper=tiny.build_whisper(root / "whisper"), ast=tiny.build_ast(root / "ast"),
               clap=tiny.build_clap(root / "clap"))  # fmt: skip
    return out


def _clips(lengths=(2500, 16000, 9000, 4000, 30000)):
    rng = np.random.default_rng(0)
    t = np.arange(max(lengths)) / 16000
    tone = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return [(tone[:n] + 0.05 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


@pytest.mark.parametrize("family", list(BUILDERS))
def test_batched_trimmed_scores_equal_the_families_processor_path(folders, family):
    clips = _clips()
    det = AudioLLMDetector(AudioLLMSpec(family=family, model=str(folders[family]), batch_size=3))
    batched = det.score(clips, 16000)
    # the reference: one clip at a time, features padded to 30 s as the family's processor pads them
    ref_det = AudioLLMDetector(
        AudioLLMSpec(family=family, model="", batch_size=1, padding="padded"), det.model, det.parts
    )
    reference = ref_det.score(clips, 16000)
    np.testing.assert_allclose(batched, reference, atol=1e-4)
    assert np.abs(batched[:, 0] - batched[:, 1]).std() > 0  # the clips are told apart: the audio reaches the answer
    if family == "audio-flamingo-3":  # and the family's own processor object, where it builds offline
        from transformers import AudioFlamingo3Processor

        proc = AudioFlamingo3Processor.from_pretrained(folders[family])
        text = FAMILIES[family].chat_text(det.parts, det.prompt)
        for clip, row in zip(clips, batched):
            with torch.no_grad():
                logits = det.model(**proc(text=[text], audio=[clip], return_tensors="pt")).logits[0, -1]
            np.testing.assert_allclose(logits[list(det.ids)].numpy(), row, atol=1e-4)


@pytest.mark.parametrize("family", list(BUILDERS))
def test_trimming_pads_less_where_the_encoder_allows_it(folders, family):
    fam = FAMILIES[family]
    det = AudioLLMDetector(AudioLLMSpec(family=family, model=str(folders[family])))
    batch = fam.prepare(det.parts, _clips((4000, 8000)), det.prompt, padded=False)
    frames = batch["input_features"].shape[-1]
    assert (frames < 3000) == fam.trimmed  # Omni: the batch's longest clip; AF3's tower needs 30 s windows
    assert batch["input_ids"].shape[0] == 2 and bool((batch["attention_mask"][:, -1] == 1).all())  # left padded


def test_a_folder_of_another_family_is_refused_with_its_name(folders):
    with pytest.raises(LabError, match=r"'audioflamingo3' checkpoint, not Qwen2.5-Omni.*'audio-flamingo-3' detector"):
        AudioLLMDetector(AudioLLMSpec(family="qwen2.5-omni", model=str(folders["audio-flamingo-3"])))
    with pytest.raises(LabError, match=r"'whisper' checkpoint, not a CLAP checkpoint.*'whisper-nospeech'"):
        make_detector("clap", model=str(folders["whisper"]))
    with pytest.raises(LabError, match="not a folder here"):
        make_detector("whisper-nospeech", model="openai/whisper-large-v3")
    assert detector_for_model_type("audioflamingo3") == "audio-flamingo-3"


@pytest.fixture(scope="module")
def small_split(default_ds):
    save_split(default_ds, "families", make_split(default_ds.manifest, seed=1), {"seed": 1})
    audit_split(default_ds, "families", content=False)
    return "families"


@pytest.mark.parametrize("family", list(BUILDERS))
def test_lora_run_on_the_family_trains_saves_and_reloads_to_identical_logits(folders, family, default_ds, small_split):
    cfg = TrainConfig(
        split=small_split, base_model=str(folders[family]), epochs=1, max_train_clips=32, max_dev_clips=16,
        batch_size=8, lr=5e-3,
    )  # fmt: skip
    run_id = registry.create_run(cfg)
    result = train_run(registry.runs_dir() / run_id)
    assert np.isfinite(result["test"]["accuracy"])
    log = registry.metrics_log(run_id)
    assert log[log["type"] == "train"]["loss"].notna().all()
    table, meta = predictions.load(predictions.resolve(f"run-{run_id}-test"))  # validated on load
    assert meta["family"] == family and meta["adapter"].endswith("adapter")
    # the saved adapter, loaded on a fresh base model, scores the test clips exactly as the trained model did
    det = make_detector(family, model=str(folders[family]), adapter=meta["adapter"], batch_size=8)
    clips = [default_ds.load_clip(c).samples for c in table["clip_id"][:12]]
    fresh = det.score(clips, 16000)
    np.testing.assert_allclose(fresh[:, 0] - fresh[:, 1], table["logit"][:12], atol=1e-4)
    untrained = make_detector(family, model=str(folders[family]), batch_size=8).score(clips, 16000)
    assert np.abs(untrained - fresh).max() > 1e-3  # the adapter changed something


def test_whisper_no_speech_matches_transformers_own_detection(folders):
    from transformers.generation.logits_process import WhisperNoSpeechDetection

    det = make_detector("whisper-nospeech", model=str(folders["whisper"]), batch_size=2)
    clips = _clips()
    logits = det.score(clips, 16000)
    assert det.token == det.model.generation_config.no_timestamps_token_id - 1
    for clip, row in zip(clips, logits):  # one clip at a time through transformers' no-speech processor
        feats = det.fe([clip], sampling_rate=16000, return_tensors="pt")["input_features"]
        start = torch.tensor([[det.start]])
        with torch.no_grad():
            scores = det.model(input_features=feats, decoder_input_ids=start).logits[:, -1]
        proc = WhisperNoSpeechDetection(no_speech_token=det.token, begin_index=1)
        proc(start, scores)
        p = float(proc.no_speech_prob[0])
        assert row[1] == pytest.approx(np.log(p), abs=1e-5) and row[0] == pytest.approx(np.log1p(-p), abs=1e-5)


def test_audio_classifier_label_mapping_and_both_heads(folders, tmp_path):
    det = make_detector("audio-classifier", model=str(folders["ast"]), batch_size=3)
    id2label = det.model.config.id2label
    assert det.speech_labels == ["Speech", "Male speech"] == default_speech_labels(id2label)
    assert det.head == "softmax"  # five labels, no problem_type: single-label
    clips = _clips()
    out = det.score(clips, 16000)
    for clip, row in zip(clips, out):
        with torch.no_grad():
            raw = det.model(**det.fe([clip], sampling_rate=16000, return_tensors="pt")).logits[0]
        p = torch.softmax(raw, -1)
        speech = float(p[0] + p[3])
        assert row[0] - row[1] == pytest.approx(np.log(speech) - np.log1p(-speech), abs=1e-4)
    multi = make_detector("audio-classifier", model=str(tiny.build_ast(tmp_path / "m", "multi_label_classification")),
                          speech_labels=["Speech"])  # fmt: skip
    assert multi.head == "sigmoid" and multi.speech_labels == ["Speech"]
    with torch.no_grad():
        raw = multi.model(**multi.fe([clips[0]], sampling_rate=16000, return_tensors="pt")).logits[0]
    row = multi.score(clips[:1], 16000)[0]
    assert row[0] - row[1] == pytest.approx(float(raw[0]), abs=1e-4)  # the Speech label's own logit
    with pytest.raises(LabError, match="not labels of this model"):
        make_detector("audio-classifier", model=str(folders["ast"]), speech_labels=["Singing"])


def test_clap_log_odds_are_the_two_way_zero_shot_softmax(folders):
    det = make_detector("clap", model=str(folders["clap"]), speech_prompts=["a sound of speech"],
                        nonspeech_prompts=["a sound of noise"], batch_size=2)  # fmt: skip
    clips = _clips((16000, 8000, 30000))
    out = det.score(clips, 16000)
    from core.data.audio import resample

    for clip, row in zip(clips, out):  # CLAP's own path: processor + model, logits_per_audio
        audio = resample(clip, 16000, 48000)
        inputs = det.processor(text=["a sound of speech", "a sound of noise"], audio=[audio], sampling_rate=48000,
                               return_tensors="pt", text_kwargs={"padding": True})  # fmt: skip
        with torch.no_grad():
            ref = det.model(**inputs).logits_per_audio[0].numpy()
        np.testing.assert_allclose(row, ref, atol=1e-4)


def test_every_family_writes_a_valid_predictions_table(folders, default_ds, small_split):
    for name, opts in (("audio-flamingo-3", {"model": str(folders["audio-flamingo-3"])}),
                       ("whisper-nospeech", {"model": str(folders["whisper"])}),
                       ("audio-classifier", {"model": str(folders["ast"])}),
                       ("clap", {"model": str(folders["clap"])})):  # fmt: skip
        path = evaluate(default_ds, small_split, "dev", make_detector(name, **opts), name=f"fam-{name}")
        table, meta = predictions.load(path)
        assert len(table) and table["logit"].notna().all() and meta["detector"] == name


def test_the_evaluate_page_groups_families_and_refuses_a_wrong_folder(folders, default_ds, small_split):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("views/evaluate.py").run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    for group in {e.group for e in REGISTRY.values()}:
        assert group in text, group
    assert "needs a checkpoint folder" in text and "runs here offline" in text
    at.selectbox(key="ev_split").set_value(small_split)
    at.selectbox(key="ev_detector").set_value("qwen2.5-omni")
    at.text_input(key="ev_model").input(str(folders["audio-flamingo-3"]))
    next(b for b in at.button if b.label == "Start scoring").click().run()
    assert not at.exception
    assert any("'audioflamingo3' checkpoint" in e.value and "audio-flamingo-3" in e.value for e in at.error), [
        e.value for e in at.error
    ]


@pytest.mark.parametrize("family", list(BUILDERS))
def test_lora_targets_resolve_to_the_familys_own_module_names(folders, family):
    import re

    model = AudioLLMDetector(AudioLLMSpec(family=family, model=str(folders[family]))).model
    names = [n for n, _ in model.named_modules()]

    def matched(targets, encoder):
        return [n for n in names if re.fullmatch(FAMILIES[family].lora_targets(targets, encoder), n)]

    # the tiny models have 2 decoder and 2 encoder layers
    assert len(matched("attention", False)) == 2 * 4  # q, k, v, o in each decoder layer
    assert len(matched("attention+mlp", False)) == 2 * 7  # + gate, up, down
    both = matched("attention+mlp", True)
    assert len(both) == 2 * 7 + 2 * 6 and sum("audio_tower" in n for n in both) == 2 * 6  # + q, k, v, out, fc1, fc2
    assert not any("visual" in n for n in both)  # Omni's vision tower is left alone


def test_a_fixed_window_cut_is_recorded_with_the_table(folders, tmp_path, data_dir):
    """Whisper keeps 30 s and a tiny AST 64 frames (0.64 s): longer clips are scored on their start, and the table says so."""
    import pandas as pd
    import soundfile as sf

    from core.data.datasets import load_dataset
    from core.data.importers import import_dataset
    from core.scoring.evaluate import window_note

    src = tmp_path / "windows"
    src.mkdir()
    rng = np.random.default_rng(0)
    rows = [("half-second", 8000), ("one-second", 16000), ("long-one", 16000 * 31)]
    for cid, n in rows:
        sf.write(src / f"{cid}.wav", (0.1 * rng.standard_normal(n)).astype(np.float32), 16000)
    pd.DataFrame({"clip_id": [r[0] for r in rows], "path": [f"{r[0]}.wav" for r in rows], "label": "speech",
                  "group_id": ["a", "b", "c"], "base_clip_id": [r[0] for r in rows]}).to_csv(src / "m.csv", index=False)  # fmt: skip
    import_dataset("csv", src / "m.csv", "window-clips")
    ds = load_dataset("window-clips")
    save_split(ds, "all-test", pd.Series("test", index=ds.manifest.index), {})
    cases = {
        "whisper-nospeech": (folders["whisper"], 30.0, ["long-one"]),
        "audio-classifier": (folders["ast"], 0.64, ["one-second", "long-one"]),
    }
    for name, (folder, window, cut) in cases.items():
        det = make_detector(name, model=str(folder))
        _, meta = predictions.load(evaluate(ds, "all-test", "test", det, name=f"win-{name}"))
        assert meta["window_seconds"] == pytest.approx(window)
        assert meta["cut_to_window"] == {"seconds": pytest.approx(window), "clips": len(cut), "first": cut}
        assert window_note(meta).startswith(f"{len(cut)} clip(s) longer than this detector's {window:g} s window")


@pytest.mark.parametrize("family", list(BUILDERS))
def test_several_prompts_on_a_chat_family_equal_each_prompt_scored_alone(folders, family):
    """Prompt studies ask any family: without a shared audio path, each prompt is scored in turn."""
    from core.detectors.llm import DEFAULT_PROMPT, Prompt

    clips = _clips((3000, 9000, 5000))
    det = make_detector(family, model=str(folders[family]), batch_size=2)
    prompts = [Prompt(DEFAULT_PROMPT), Prompt("<audio>Is this speech? Answer B for yes, A for no.", "B", "A")]
    together = det.score_prompts(clips, 16000, prompts)
    for k, p in enumerate(prompts):
        alone = AudioLLMDetector(AudioLLMSpec(family=family, model="", prompt=p.text, answers=p.answers), det.model,
                                 det.parts).score(clips, 16000)  # fmt: skip
        np.testing.assert_allclose(together[k], alone, atol=1e-5)
    assert np.abs(together[0] - together[1]).max() > 1e-4  # two questions, two answers
    with pytest.raises(LabError, match="several tokens long"):
        det.score_prompts(clips, 16000, [Prompt("Is it speech?", "speech detected", "none")])
