"""Qwen2-Audio: the family of Qwen2-Audio-7B-Instruct and of the lab base model (the same
architecture with a small config, `core.detectors.lab_model`).

The clip goes into the model's chat template with a multiple-choice question; the next-token
logits of the answers are read at the last prompt position.

Two audio paths give the same logits (`tests/test_audio_llm.py::test_batched_trimmed_equals_per_clip_padded`,
1e-4 in fp32):
- `padded`: the processor's own path — every clip padded to 30 s of log-mel frames;
- `trimmed` (default): features padded only to the batch's longest clip plus a margin, and
  the encoder run on that length (`encode`). The encoder masks padded frames in attention, so
  valid frames see the same inputs; only convolutions near the end see padding, and the margin
  keeps their padding identical. A 1 s clip then costs ~1/30 of the encoder work.
The padded path left-pads its batches with explicit position ids; the trimmed path
right-pads and reads each clip at its own last token. Either way a clip's logits do not
depend on what else is in its batch. The trimmed path's shared prefix (the chat-template
tokens before the audio computed once per batch) is exact by causal attention
(`tests/test_audio_llm.py::test_shared_prefix_cache_changes_nothing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.detectors.checkpoints import (
    not_here,
    quantization,
    ready,
    require_available,
    resolve_device_dtype,
)
from core.detectors.llm.cache import decode, output_cache
from core.detectors.llm.family import AudioLLMSpec, Family, LoraModules
from core.detectors.llm.features import audio_token_count, shortest_heard, trimmed_features, window_seconds
from core.detectors.llm.prompt import user_content
from core.errors import LabError

# torch and transformers are imported inside functions: importing this module stays cheap

DEFAULT_MODEL = "Qwen/Qwen2-Audio-7B-Instruct"
SYSTEM = "You are a helpful assistant."


def load(spec: AudioLLMSpec):
    """Load (model, processor) from a local directory or the local Hugging Face cache."""
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    device, dtype = resolve_device_dtype(spec.device, spec.dtype)
    local = Path(spec.model).expanduser()
    source = str(local) if local.is_dir() else spec.model
    kwargs: dict[str, Any] = {"dtype": dtype, **quantization(spec.load_in_4bit, device, dtype)}
    if local.is_dir():
        require_available(str(local), QWEN2_AUDIO.model_types)
    try:
        processor = AutoProcessor.from_pretrained(source, local_files_only=True)
        model = Qwen2AudioForConditionalGeneration.from_pretrained(source, local_files_only=True, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if local.is_dir():
            raise LabError(f"{local}: not a loadable Qwen2-Audio model folder ({type(exc).__name__}: {exc})") from exc
        raise LabError(not_here(spec.model)) from exc
    model = ready(model, device, spec.load_in_4bit, spec.adapter)
    return model, processor


def chat_text(processor, prompt: str) -> str:
    """The model's chat template with one audio slot and the question, ready for the answer.

    The clip comes before the prompt's text, or where the prompt writes `<audio>`. Text before
    the clip is the same for every clip, so the trimmed path computes it once per batch: a
    question asked before the clip costs nothing per clip, one asked after it is most of the
    decoder's work for a short clip (its tokens attend to the audio).
    """
    content = user_content(prompt, {"type": "audio", "audio_url": "clip"})
    conversation = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]
    return processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)


def prepare(
    processor, clips: Sequence[np.ndarray], prompt: str, padded: bool, answers: list[str] | None = None
) -> dict:
    """Model inputs for a batch: token ids, mel features and masks.

    `answers` (trimmed path, training): each clip's answer text is appended after the prompt,
    so the answer is the last real tokens of its row.
    """
    text = chat_text(processor, prompt)
    if answers is not None and (padded or len(answers) != len(clips)):
        raise ValueError("answers go with the trimmed path, one per clip")
    if padded:  # left padding asked for here: a checkpoint's tokenizer may declare right or nothing
        batch = processor(text=[text] * len(clips), audio=list(clips), sampling_rate=16000, return_tensors="pt",
                          padding=True, padding_side="left")  # fmt: skip
        mask = batch["attention_mask"]
        if not bool((mask[:, -1] == 1).all()):
            raise LabError("the tokenizer must pad on the left for last-position scoring")
        batch["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
        return dict(batch)
    feats = trimmed_features(processor.feature_extractor, clips)
    lengths = feats["attention_mask"].sum(-1).tolist()
    audio_token = processor.audio_token
    texts = [text.replace(audio_token, audio_token * audio_token_count(int(n)), 1) for n in lengths]
    if answers is not None:
        texts = [t + a for t, a in zip(texts, answers)]
    # right padding: positions need no correction and attention needs no padding mask
    tok = processor.tokenizer(texts, return_tensors="pt", padding=True, padding_side="right")
    return {
        "input_ids": tok["input_ids"],
        "attention_mask": tok["attention_mask"],
        "input_features": feats["input_features"],
        "feature_attention_mask": feats["attention_mask"],
    }


def _base(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def encode_trimmed(model, input_features, feature_attention_mask):
    """The audio encoder and projector on trimmed features: (per-clip audio embeddings, host lengths).

    Mirrors `Qwen2AudioEncoder.forward` of transformers 5.25 (models/qwen2_audio/
    modeling_qwen2_audio.py) without its "features must be 3000 frames" check, with only the first
    n position embeddings, and with a bidirectional mask over each clip's valid frames (the
    library ignores the mask; its padded frames are 30 s of silence instead); no input dropout
    (the checkpoint's is 0). `tests/test_audio_llm.py::test_batched_trimmed_equals_per_clip_padded` fails if the
    library's encoder moves. Lengths are computed on the host from the (host) feature mask, so
    nothing here waits for the GPU: the caller can queue the whole batch and prepare the next one.
    """
    import torch
    from transformers.masking_utils import create_bidirectional_mask

    core = _base(model).model
    tower = core.audio_tower
    device = tower.conv1.weight.device
    x = input_features.to(dtype=tower.conv1.weight.dtype, device=device, non_blocking=True)
    x = torch.nn.functional.gelu(tower.conv1(x))
    x = torch.nn.functional.gelu(tower.conv2(x)).permute(0, 2, 1)
    n = x.shape[1]
    x = x + tower.embed_positions.weight[:n]
    feat_len, out_len = tower._get_feat_extract_output_lengths(feature_attention_mask.sum(-1).cpu())
    valid = (torch.arange(n)[None, :] < feat_len[:, None]).long().to(device, non_blocking=True)
    # no "skip the mask if nothing is padded" test: it would read the mask back from the GPU
    mask = create_bidirectional_mask(
        config=tower.config, inputs_embeds=x[..., :1], attention_mask=valid, allow_is_bidirectional_skip=False
    )
    for layer in tower.layers:
        x = layer(x, mask)
    x = tower.avg_pooler(x.permute(0, 2, 1)).permute(0, 2, 1)
    x = tower.layer_norm(x)
    return core.multi_modal_projector(x), out_len


def trimmed_states(model, batch: dict, shared_prefix: bool = False):
    """Final hidden states (batch, tokens, hidden) of the trimmed path.

    The sequences are right-padded and run with a plain causal mask, so no padding mask is
    built (fast fused attention); causal attention means padding after a clip's last token
    cannot change any state up to it.

    `shared_prefix`: every row starts with the same chat-template tokens up to the audio slot
    (about a quarter of the sequence); their keys and values are computed once and shared by
    the batch. Causal attention makes this exact: those states never see the audio.
    """
    import torch

    base = _base(model)
    device = base.lm_head.weight.device
    host_ids = batch["input_ids"].cpu()
    # every index is worked out on the host, so no step waits for the GPU (no boolean-mask
    # indexing, no `.item()`): a batch is queued whole and the next one prepared meanwhile
    audio, lengths = encode_trimmed(model, batch["input_features"], batch["feature_attention_mask"])
    slots = host_ids == base.config.audio_token_id
    if int(slots.sum()) != int(lengths.sum()):
        raise LabError(f"audio tokens ({int(slots.sum())}) and audio features ({int(lengths.sum())}) do not match")
    feat_rows, feat_cols = (torch.arange(int(lengths.max()))[None, :] < lengths[:, None]).nonzero(as_tuple=True)
    slot_rows, slot_cols = slots.nonzero(as_tuple=True)
    ids = host_ids.to(device, non_blocking=True)
    embeds = base.get_input_embeddings()(ids)
    values = audio[feat_rows.to(device, non_blocking=True), feat_cols.to(device, non_blocking=True)]
    embeds = embeds.index_put(
        (slot_rows.to(device, non_blocking=True), slot_cols.to(device, non_blocking=True)), values.to(embeds.dtype)
    )
    p = int(slots[0].long().argmax())  # the first audio slot
    same_prefix = bool((host_ids[:, :p] == host_ids[:1, :p]).all())
    if not shared_prefix or p == 0 or not same_prefix or ids.shape[0] == 1:
        return base.model(inputs_embeds=embeds, use_cache=False).last_hidden_state
    head = decode(base.model, inputs_embeds=embeds[:1, :p], use_cache=True)
    cache = output_cache(head)
    cache.batch_repeat_interleave(ids.shape[0])
    positions = torch.arange(p, ids.shape[1], device=device)[None].expand(ids.shape[0], -1)
    tail = decode(
        base.model, cache, inputs_embeds=embeds[:, p:], position_ids=positions, use_cache=True
    ).last_hidden_state
    return torch.cat([head.last_hidden_state.expand(ids.shape[0], -1, -1), tail], dim=1)


def last_hidden(model, batch: dict, padded: bool):
    """Final hidden state at the last prompt position, for every clip in the batch."""
    import torch

    base = _base(model)
    device = base.lm_head.weight.device
    if padded:
        out = base.model(
            input_ids=batch["input_ids"].to(device),
            input_features=batch["input_features"],
            attention_mask=batch["attention_mask"].to(device),
            feature_attention_mask=batch["feature_attention_mask"],
            position_ids=batch["position_ids"].to(device),
        )
        return out.last_hidden_state[:, -1]
    last = (batch["attention_mask"].sum(-1) - 1).to(device, non_blocking=True)
    states = trimmed_states(model, batch, shared_prefix=True)
    return states[torch.arange(states.shape[0], device=device), last]


def next_token_logits(model, batch: dict, padded: bool):
    """Full-vocabulary next-token logits at the last prompt position (float32)."""
    return _base(model).lm_head(last_hidden(model, batch, padded)).float()


def answer_loss(model, batch: dict, labels, answer_mask):
    """Cross-entropy of the next-token prediction at answer tokens only (the loss masked to the answer).

    `labels` (batch, tokens) are the target ids; only positions where `answer_mask` is true are
    read, so no other label can change the loss
    or its gradients. The logits are those the scoring path reads: the position before each
    answer token predicting it, on the trimmed path.
    """
    import torch

    base = _base(model)
    states = trimmed_states(model, batch)
    mask = answer_mask.to(states.device)
    rows, cols = mask[:, 1:].nonzero(as_tuple=True)  # state at t predicts token t + 1
    logits = base.lm_head(states[rows, cols]).float()
    return torch.nn.functional.cross_entropy(logits, labels.to(states.device)[rows, cols + 1])


def compile_layers(model) -> None:
    """Regional compilation: each transformer layer compiled once and shared by its siblings.

    Fuses the elementwise work (norms, rotary embeddings, activations) that takes about half of
    the GPU time in eager mode; shapes vary by batch, hence dynamic shapes.
    """
    import torch._dynamo

    core = _base(model).model
    layers = [*core.audio_tower.layers, *core.language_model.layers]
    # each decoder layer guards on its own slot of the shared-prefix cache: room for all of them
    cfg = torch._dynamo.config
    cfg.recompile_limit = max(cfg.recompile_limit, 4 * len(layers))
    cfg.accumulated_recompile_limit = max(cfg.accumulated_recompile_limit, 16 * len(layers))
    for layer in layers:
        layer.compile(dynamic=True)


def generate_logits(model, processor, clips: list[np.ndarray], prompt: str, ids: tuple[int, int]) -> np.ndarray:
    """The seed's path: 30 s padding and `generate()`, one new token constrained to the two answers.

    Returns the raw first-step logits of the two answers (as `logits` mode does).
    """
    device = _base(model).lm_head.weight.device
    batch = prepare(processor, clips, prompt, padded=True)
    allowed = list(ids)
    gen = model.generate(
        input_ids=batch["input_ids"].to(device),
        attention_mask=batch["attention_mask"].to(device),
        input_features=batch["input_features"].to(device),
        feature_attention_mask=batch["feature_attention_mask"].to(device),
        max_new_tokens=1,
        do_sample=False,
        output_logits=True,
        return_dict_in_generate=True,
        prefix_allowed_tokens_fn=lambda _b, _ids: allowed,
        pad_token_id=processor.tokenizer.pad_token_id,
    )
    return gen.logits[0][:, allowed].float().cpu().numpy()


class Qwen2Audio(Family):
    """Qwen2-Audio behind the family contract: trimmed right-padded rows, a shared audio path, generate()."""

    name = "qwen2-audio"
    detector = "audio-llm"
    title = "Qwen2-Audio"
    model_types = ("qwen2_audio",)
    audio_token = "<|AUDIO|>"
    feature_mask = "feature_attention_mask"
    lora = LoraModules(
        attention=r".*language_model\.layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|o_proj)",
        mlp=r".*language_model\.layers\.\d+\.mlp\.(gate_proj|up_proj|down_proj)",
        enc_attention=r".*audio_tower\.layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|out_proj)",
        enc_mlp=r".*audio_tower\.layers\.\d+\.(fc1|fc2)",
    )
    shared_audio = generates = compiles = hub_ids = True

    def load(self, spec):
        return load(spec)

    def chat_text(self, parts, prompt):
        return chat_text(parts, prompt)

    def prepare(self, parts, clips, prompt, padded, answers=None):
        return prepare(parts, clips, prompt, padded, answers)

    def next_token_logits(self, model, batch, padded):
        return next_token_logits(model, batch, padded)

    def answer_loss(self, model, batch, labels, answer_mask):
        return answer_loss(model, batch, labels, answer_mask)

    def clip_limits(self, parts):
        fe = parts.feature_extractor
        return shortest_heard(fe), window_seconds(fe)  # longer clips are refused, never cut

    def default_name(self, spec):
        return f"audio-llm:{Path(spec.model).name}"

    def features(self, parts, clips):
        feats = trimmed_features(parts.feature_extractor, clips)
        return {"input_features": feats["input_features"], "feature_attention_mask": feats["attention_mask"]}

    def encode(self, model, features):
        return encode_trimmed(model, features["input_features"], features["feature_attention_mask"])

    def decoder(self, model):
        base = _base(model)
        return base.model.language_model, base.get_input_embeddings(), base.lm_head

    def generate_logits(self, model, parts, clips, prompt, ids):
        return generate_logits(model, parts, clips, prompt, ids)

    def compile(self, model):
        compile_layers(model)


QWEN2_AUDIO = Qwen2Audio()
