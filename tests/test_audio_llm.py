"""The audio-LLM path on tiny randomly initialised Qwen2-Audio models built from a config."""

import numpy as np
import pytest
import torch

from core.detectors import lab_model
from core.detectors.llm import AudioLLMDetector, AudioLLMSpec
from core.detectors.llm import qwen2_audio as L
from core.detectors.llm.features import length_groups
from core.detectors.llm.prompt import DEFAULT_PROMPT, QUESTION_FIRST_PROMPT, answer_token_ids
from core.errors import LabError
from core.scoring import predictions


@pytest.fixture(scope="module")
def tiny():
    processor = lab_model.build_processor()
    model = lab_model.build_model(processor, seed=3)
    with torch.no_grad():  # larger weights than the default init, so logits depend clearly on the audio
        for p in model.parameters():
            p.mul_(4.0)
    return model, processor


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    out = [
        (0.3 * np.sin(2 * np.pi * f * t[:n]) + 0.05 * rng.standard_normal(n)).astype(np.float32)
        for f, n in ((220, 3200), (440, 16000), (880, 8000), (330, 11111), (660, 4000), (150, 6400))
    ]
    return out


QUESTION_FIRST = QUESTION_FIRST_PROMPT


def per_clip_padded(model, processor, clips, prompt=DEFAULT_PROMPT):
    with torch.inference_mode():
        return torch.cat([L.next_token_logits(model, L.prepare(processor, [c], prompt, True), True) for c in clips])


@pytest.mark.parametrize("prompt", [DEFAULT_PROMPT, QUESTION_FIRST], ids=["audio-first", "question-first"])
def test_batched_trimmed_equals_per_clip_padded(tiny, clips, prompt):
    model, processor = tiny
    ref = per_clip_padded(model, processor, clips, prompt)
    with torch.inference_mode():
        trimmed = L.next_token_logits(model, L.prepare(processor, clips, prompt, False), False)
        padded = L.next_token_logits(model, L.prepare(processor, clips, prompt, True), True)
    assert ref.std(dim=0).max() > 1e-2  # the audio matters: clips get clearly different logits
    assert (trimmed - ref).abs().max().item() < 1e-4
    assert (padded - ref).abs().max().item() < 1e-4
    # trimmed really is shorter: 1 s longest clip → ~108 frames, not 3000
    batch = L.prepare(processor, clips, prompt, False)
    assert batch["input_features"].shape[-1] < 150


def test_the_prompt_places_the_clip():
    processor = lab_model.build_processor()
    first = L.chat_text(processor, "Is this speech?")
    assert first.index(processor.audio_token) < first.index("Is this speech?")
    before = L.chat_text(processor, "Is this speech?\n<audio>")
    assert before.index("Is this speech?") < before.index(processor.audio_token) and "<audio>" not in before
    around = L.chat_text(processor, "Listen:\n<audio>Is it speech?")
    assert around.index("Listen:") < around.index(processor.audio_token) < around.index("Is it speech?")
    with pytest.raises(LabError, match="one audio slot"):
        L.chat_text(processor, "<audio> and <audio>")


@pytest.mark.parametrize("prompt", [DEFAULT_PROMPT, QUESTION_FIRST], ids=["audio-first", "question-first"])
def test_shared_prefix_cache_changes_nothing(tiny, clips, prompt):
    model, processor = tiny
    batch = L.prepare(processor, clips, prompt, False)
    with torch.inference_mode():
        full = L.trimmed_states(model, batch, shared_prefix=False)
        shared = L.trimmed_states(model, batch, shared_prefix=True)
    slots = batch["input_ids"] == L._base(model).config.audio_token_id
    assert int(slots[0].long().argmax()) > (40 if prompt == QUESTION_FIRST else 5)  # a real prefix was shared
    # fp32 to within its rounding at the states' scale (|h| reaches ~10: 1.04e-5 was seen on 2 busy cores)
    scale = max(1.0, full.abs().max().item())
    assert shared.shape == full.shape and (shared - full).abs().max().item() < 1e-5 * scale


def test_detector_modes_agree(tiny, clips):
    model, processor = tiny
    det = AudioLLMDetector(AudioLLMSpec(model="tiny", batch_size=4), model=model, parts=processor)
    trimmed = det.score(clips, 16000)
    det.spec.padding = "padded"
    padded = det.score(clips, 16000)
    det.spec.mode = "generate"
    generated = det.score(clips, 16000)
    np.testing.assert_allclose(trimmed, padded, atol=1e-4)
    np.testing.assert_allclose(trimmed, generated, atol=1e-4)
    ref = per_clip_padded(model, processor, clips)[:, list(det.ids)].numpy()
    np.testing.assert_allclose(trimmed, ref, atol=1e-4)


def test_worker_processes_prepare_the_same_batches(tiny, clips):
    """Batches prepared ahead by worker processes (the GPU set-up) give the serial path's logits."""
    model, processor = tiny
    spec = dict(model="tiny", batch_size=2)
    serial = AudioLLMDetector(AudioLLMSpec(**spec, workers=0), model=model, parts=processor)
    ahead = AudioLLMDetector(AudioLLMSpec(**spec, workers=2), model=model, parts=processor)
    assert serial.workers == 0 and ahead.workers == 2
    np.testing.assert_allclose(ahead.score(clips, 16000), serial.score(clips, 16000), atol=1e-5)


@pytest.mark.parametrize("ramp", [False, True])
def test_length_groups_cover_every_clip_once_shortest_first(ramp):
    lengths = list(np.random.default_rng(3).integers(3200, 16000, size=203))
    groups = length_groups(lengths, 32, ramp=ramp)
    sizes = [len(g) for g in groups]
    assert sizes == ([4, 8, 16] if ramp else []) + [32] * ((203 - (28 if ramp else 0)) // 32) + [sizes[-1]]
    flat = np.concatenate(groups)
    assert sorted(flat.tolist()) == list(range(203))
    assert np.all(np.diff(np.asarray(lengths)[flat]) >= 0)
    assert [len(g) for g in length_groups(lengths[:5], 32, ramp=True)] == [4, 1]


def test_answer_tokens_are_single_tokens(tiny):
    _, processor = tiny
    a, b = answer_token_ids(processor.tokenizer, ("A", "B"))
    assert a != b
    assert processor.tokenizer.decode([a]) == "A" and processor.tokenizer.decode([b]) == "B"
    with pytest.raises(LabError, match="single-token"):
        answer_token_ids(processor.tokenizer, ("Absolutely speech", "B"))


def test_adapter_saved_and_loaded_gives_identical_logits(tiny, clips, tmp_path):
    from peft import LoraConfig, get_peft_model

    model, processor = tiny
    base_dir = lab_model.save(model, processor, tmp_path / "base")
    fresh = L.load(AudioLLMSpec(model=str(base_dir)))[0]
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    torch.manual_seed(1)
    peft_model = get_peft_model(fresh, cfg).eval()
    peft_model.save_pretrained(tmp_path / "adapter")
    in_memory = AudioLLMDetector(AudioLLMSpec(model="x"), model=peft_model, parts=processor)
    loaded = AudioLLMDetector(AudioLLMSpec(model=str(base_dir), adapter=str(tmp_path / "adapter")))
    plain = AudioLLMDetector(AudioLLMSpec(model=str(base_dir)))
    a, b, c = (d.score(clips, 16000) for d in (in_memory, loaded, plain))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3  # the adapter changes the logits


def test_offline_unknown_model_says_how_to_fix():
    with pytest.raises(LabError, match=r"cannot be fetched here.*--model /path/to/dir"):
        L.load(AudioLLMSpec(model="nobody/not-a-cached-model"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_four_bit_without_cuda_is_refused_clearly():
    with pytest.raises(LabError, match="4-bit NF4 .* needs a CUDA GPU"):
        L.load(AudioLLMSpec(model=str(lab_model.base_model_dir()), load_in_4bit=True))


def test_nan_logits_are_flagged_not_kept():
    import pandas as pd

    clips = pd.DataFrame(
        {
            "clip_id": ["a", "b"],
            "label": ["speech", "nonspeech"],
            "group_id": ["g", "h"],
            "base_clip_id": ["a", "b"],
            "split": "test",
            "duration_ms": 500.0,
            "snr_db": np.nan,
        }
    )
    with pytest.raises(predictions.PredictionsError, match=r"NaN or infinite logits, e.g. \['b'\]"):
        predictions.build_table(clips, np.array([[1.0, 0.0], [np.nan, 0.0]]), detector="x")
    ok = predictions.build_table(clips, np.array([[2.0, 0.5], [0.0, 1.0]]), detector="x")
    np.testing.assert_allclose(ok["logit"], [1.5, -1.0])
    np.testing.assert_allclose(ok["p_speech"], 1 / (1 + np.exp(-ok["logit"])))


def test_audio_token_count_is_the_encoders_own(tiny):
    """The lab's count of audio tokens per clip is the encoder's own length arithmetic, for every length."""
    from core.detectors.llm.features import audio_token_count

    model, _ = tiny
    frames = torch.arange(1, 3001)
    _, expected = model.model.audio_tower._get_feat_extract_output_lengths(frames)
    assert [audio_token_count(int(n)) for n in frames] == expected.tolist()
