"""Several prompts on shared audio work, and answers of any length, against fresh full scoring (fp32)."""

import numpy as np
import pytest
import torch

from core.detectors import lab_model
from core.detectors.llm import AudioLLMDetector, AudioLLMSpec
from core.detectors.llm import qwen2_audio as L
from core.detectors.llm.prompt import DEFAULT_PROMPT, QUESTION_FIRST_PROMPT, Prompt
from core.detectors.llm.prompt import tokens as family_tokens
from core.detectors.llm.qwen2_audio import QWEN2_AUDIO
from core.errors import LabError


@pytest.fixture(scope="module")
def tiny():
    processor = lab_model.build_processor()
    model = lab_model.build_model(processor, seed=5)
    with torch.no_grad():  # larger weights, so the logits depend clearly on audio and text
        for p in model.parameters():
            p.mul_(4.0)
    return model, processor


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(1)
    t = np.arange(16000) / 16000
    return [
        (0.3 * np.sin(2 * np.pi * f * t[:n]) + 0.05 * rng.standard_normal(n)).astype(np.float32)
        for f, n in ((220, 3200), (440, 16000), (880, 8000), (330, 11111), (660, 4000), (150, 6400), (500, 1900))
    ]


PROMPTS = [
    Prompt(DEFAULT_PROMPT),  # clip first, single-token answers
    Prompt("Based on the audio file, is it SPEECH or NON-SPEECH?", "SPEECH", "NON-SPEECH"),  # several tokens
    Prompt("Is there speech in this clip? Answer with one letter.", "A", "B"),  # same text before the clip
    Prompt(QUESTION_FIRST_PROMPT, "yes", "no"),  # question before the clip
    Prompt("Listen:\n<audio>Is it speech?", "Yes, speech", "B"),  # text around the clip, mixed lengths
]


def detector(model, processor, prompt: Prompt, **kw) -> AudioLLMDetector:
    spec = AudioLLMSpec(model="tiny", prompt=prompt.text, answers=prompt.answers, batch_size=3, **kw)
    return AudioLLMDetector(spec, model=model, parts=processor)


def full_pass_answer_loglik(model, processor, clip, prompt: Prompt, answer: str) -> float:
    """Reference: the model's own forward on the processor's 30 s features, prompt + answer, summed log-probs."""
    text = L.chat_text(processor, prompt.text)
    n_prompt = len(processor.tokenizer(text)["input_ids"])
    batch = processor(text=[text + answer], audio=[clip], sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**batch).logits[0].float()
    ids = batch["input_ids"][0]
    answer_len = len(processor.tokenizer(text + answer)["input_ids"]) - n_prompt
    positions = range(len(ids) - answer_len, len(ids))
    logp = torch.log_softmax(logits, dim=-1)
    return float(sum(logp[t - 1, ids[t]] for t in positions))


def test_several_prompts_on_shared_audio_equal_fresh_scoring(tiny, clips):
    model, processor = tiny
    det = detector(model, processor, PROMPTS[0])
    together = det.score_prompts(clips, 16000, PROMPTS)
    assert together.shape == (len(PROMPTS), len(clips), 2)
    for k, prompt in enumerate(PROMPTS):
        fresh = detector(model, processor, prompt).score(clips, 16000)
        np.testing.assert_allclose(together[k], fresh, atol=1e-4, err_msg=f"prompt {k}")
    log_odds = together[..., 0] - together[..., 1]
    assert log_odds.std(axis=1).min() > 1e-2  # each prompt separates the clips: a real signal is compared
    assert np.abs(log_odds[0] - log_odds[2]).max() > 1e-3  # the question text changes the answer


def test_prompts_packed_into_one_pass_or_one_pass_each_give_the_same_scores(tiny, clips, monkeypatch):
    from core.detectors.llm import packing as prompt_batch

    model, processor = tiny
    det = detector(model, processor, PROMPTS[0])
    planned = [family_tokens(QWEN2_AUDIO, processor, p) for p in PROMPTS]
    assert len(prompt_batch.packs(planned)) == 1  # all five fit one pass (as on a GPU)
    assert [members for members, _ in prompt_batch.packs(planned, 1)] == [[k] for k in range(len(PROMPTS))]
    alone = det.score_prompts(clips, 16000, PROMPTS)  # this CPU's default: each prompt in a pass of its own
    monkeypatch.setattr(prompt_batch, "CPU_PACK_TOKENS", prompt_batch.PACK_TOKENS)
    np.testing.assert_allclose(det.score_prompts(clips, 16000, PROMPTS), alone, atol=1e-4)
    pk = prompt_batch.pack(planned[1:2])  # SPEECH / NON-SPEECH: the post, then both answers branching from it
    post, (a, b) = len(planned[1].post), planned[1].answers
    assert len(pk.ids) == post + len(a) - 1 + len(b) - 1
    assert pk.allowed[-1, :post].all() and not pk.allowed[-1, post : post + len(a) - 1].any()  # not the other answer


def test_single_token_answers_keep_the_logits_path(tiny, clips):
    """One prompt with one-token answers: the shared-audio path equals today's path and the padded one."""
    model, processor = tiny
    det = detector(model, processor, PROMPTS[0])
    assert det.ids is not None and det.info()["answer_scoring"] == "next-token logits"
    shared = det.score_prompts(clips, 16000, [PROMPTS[0]])[0]
    np.testing.assert_allclose(shared, det.score(clips, 16000), atol=1e-4)
    padded = detector(model, processor, PROMPTS[0], padding="padded").score(clips, 16000)
    np.testing.assert_allclose(shared, padded, atol=1e-4)


@pytest.mark.parametrize("k", [1, 3, 4], ids=["SPEECH/NON-SPEECH", "yes/no question first", "around the clip"])
def test_multi_token_answers_are_whole_answer_log_likelihoods(tiny, clips, k):
    model, processor = tiny
    prompt = PROMPTS[k]
    det = detector(model, processor, prompt)
    pt = family_tokens(QWEN2_AUDIO, processor, prompt)
    assert not pt.single and det.ids is None and det.info()["answer_scoring"] == "answer log-likelihood"
    assert max(len(a) for a in pt.answers) > 1  # really several tokens for this tokenizer
    scores = det.score(clips, 16000)
    for i, clip in enumerate(clips):
        ref = [full_pass_answer_loglik(model, processor, clip, prompt, a) for a in prompt.answers]
        np.testing.assert_allclose(scores[i], ref, atol=1e-4, err_msg=f"clip {i}")
    assert np.all(scores < 0)  # log-likelihoods


def test_workers_prepare_the_same_features(tiny, clips):
    model, processor = tiny
    serial = detector(model, processor, PROMPTS[0], workers=0).score_prompts(clips, 16000, PROMPTS[:2])
    ahead = detector(model, processor, PROMPTS[0], workers=2).score_prompts(clips, 16000, PROMPTS[:2])
    np.testing.assert_allclose(ahead, serial, atol=1e-5)


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (Prompt("Is it speech?", "A", "A"), "same text"),
        (Prompt("Is it speech?", "yes", " yes "), "same text"),
        (Prompt("   "), "prompt is empty"),
        (Prompt("<audio>"), "prompt is empty"),
        (Prompt("<audio> then <audio>?"), "one audio slot"),
        (Prompt("Is it speech?", "", "B"), "speech answer is empty"),
    ],
)
def test_bad_prompts_are_refused_before_any_model_loads(prompt, message):
    with pytest.raises(LabError, match=message):
        AudioLLMDetector(AudioLLMSpec(model="/nonexistent", prompt=prompt.text, answers=prompt.answers))


def test_identical_token_sequences_are_refused():
    """Different texts that the tokenizer maps to one sequence cannot be told apart (here NFKC: 'ﬁ' = 'fi')."""
    from tokenizers import normalizers

    processor = lab_model.build_processor()
    processor.tokenizer.backend_tokenizer.normalizer = normalizers.NFKC()
    with pytest.raises(LabError, match="same token sequence"):
        family_tokens(QWEN2_AUDIO, processor, Prompt("Is it speech?", "\ufb01ne", "fine"))


def test_multi_token_answers_refused_on_the_padded_and_generate_paths(tiny):
    model, processor = tiny
    with pytest.raises(LabError, match="trimmed path only"):
        detector(model, processor, PROMPTS[1], padding="padded")
    with pytest.raises(LabError, match="trimmed path only"):
        detector(model, processor, PROMPTS[1], mode="generate")
