"""Adding an audio-LLM family is one `Family` and a registry line: a family registered here, from a
tiny config, scores, scores several prompts and trains through the common code, with no change to it.

The new family reads a Qwen2-Audio checkpoint through the generic chat path (the tokenizer's chat
template, 30 s windows, left-padded rows scored at the last position), a path the lab never uses
for Qwen2-Audio; its scores must therefore equal the Qwen2-Audio family's (a known answer).
"""

import numpy as np
import pytest
import torch

from core.data.audit import audit_split
from core.data.splits import make_split, save_split
from core.detectors import lab_model
from core.detectors.llm import FAMILIES, AudioLLMDetector, AudioLLMSpec, Prompt, register
from core.detectors.llm.chat import ChatFamily
from core.detectors.llm.qwen2_audio import QWEN2_AUDIO
from core.errors import LabError
from core.runs import registry
from core.runs.training import TrainConfig, train_run
from core.scoring import predictions

NEW = ChatFamily(
    name="qwen2-audio-as-chat",
    title="Qwen2-Audio read as a chat family (test)",
    model_types=("qwen2_audio",),
    model_class="Qwen2AudioForConditionalGeneration",
    feature_mask="feature_attention_mask",
    audio_token="<|AUDIO|>",
    trimmed=False,  # Qwen2-Audio's encoder takes 30 s windows through its own forward
    lora=QWEN2_AUDIO.lora,
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    processor = lab_model.build_processor()
    model = lab_model.build_model(processor, seed=4)
    with torch.no_grad():  # larger weights, so the logits depend clearly on the audio
        for p in model.parameters():
            p.mul_(4.0)
    out = tmp_path_factory.mktemp("new-family")
    model.save_pretrained(out)
    processor.save_pretrained(out)
    register(NEW)
    yield out
    FAMILIES.pop(NEW.name)


def _clips():
    rng = np.random.default_rng(2)
    t = np.arange(16000) / 16000
    return [(0.3 * np.sin(2 * np.pi * f * t[:n]) + 0.05 * rng.standard_normal(n)).astype(np.float32)
            for f, n in ((220, 3200), (440, 16000), (880, 8000), (330, 11111))]  # fmt: skip


def test_a_registered_family_scores_through_the_common_detector(folder):
    clips = _clips()
    new = AudioLLMDetector(AudioLLMSpec(model=str(folder), family=NEW.name, batch_size=3))
    ref = AudioLLMDetector(AudioLLMSpec(model=str(folder), family="qwen2-audio", batch_size=3))
    scores = new.score(clips, 16000)
    np.testing.assert_allclose(scores, ref.score(clips, 16000), atol=1e-4)
    assert np.abs(scores[:, 0] - scores[:, 1]).std() > 1e-3  # the audio reaches the answer
    prompts = [Prompt("Is there speech? Answer A or B."), Prompt("<audio>Speech: A, else B.", "B", "A")]
    np.testing.assert_allclose(new.score_prompts(clips, 16000, prompts), ref.score_prompts(clips, 16000, prompts),
                               atol=1e-4)  # fmt: skip
    assert new.info()["family"] == NEW.name
    with pytest.raises(LabError, match="generate mode is not available"):
        AudioLLMDetector(AudioLLMSpec(model=str(folder), family=NEW.name, mode="generate"), new.model, new.parts)


def test_a_registered_family_trains_through_the_common_loop(folder, default_ds):
    save_split(default_ds, "new-family", make_split(default_ds.manifest, seed=3), {"seed": 3})
    audit_split(default_ds, "new-family", content=False)
    cfg = TrainConfig(split="new-family", base_model=str(folder), family=NEW.name, epochs=1, max_train_clips=16,
                      max_dev_clips=8, batch_size=8, lr=5e-3, lora_dropout=0.0)  # fmt: skip
    run_id = registry.create_run(cfg)
    result = train_run(registry.runs_dir() / run_id)
    log = registry.metrics_log(run_id)
    assert np.isfinite(log[log["type"] == "train"]["loss"]).all() and len(log[log["type"] == "train"]) == 2
    table, meta = predictions.load(predictions.resolve(f"run-{run_id}-test"))
    assert meta["family"] == NEW.name and np.isfinite(result["test"]["balanced_accuracy"])
    # the adapter, on a fresh load through the same family, gives the run's own test scores
    det = AudioLLMDetector(AudioLLMSpec(model=str(folder), family=NEW.name, adapter=meta["adapter"], batch_size=8))
    clips = [default_ds.load_clip(c).samples for c in table["clip_id"][:6]]
    fresh = det.score(clips, 16000)
    np.testing.assert_allclose(fresh[:, 0] - fresh[:, 1], table["logit"][:6], atol=1e-4)


def test_an_unknown_family_is_refused_before_a_run_is_registered(folder, default_ds):
    with pytest.raises(LabError, match="unknown audio-LLM family 'nope'"):
        registry.create_run(TrainConfig(base_model=str(folder), family="nope"))
