"""Audio LLMs of other families (Qwen2.5-Omni's thinker, Audio Flamingo 3): the answer-token logits
of one forward pass, through each family's own feature extractor, tokenizer and chat template.

The lab builds the model inputs itself rather than through the family's processor object: it
needs only the feature extractor and tokenizer saved in the checkpoint folder (Qwen2.5-Omni's
processor also wants a video processor, hence torchvision, to exist), it can pad the features
to the batch instead of 30 s where the family's encoder takes any length (Qwen2.5-Omni packs
the valid frames of each clip), and it appends the answer for training. What it builds is what
the processor builds; a test proves the logits equal the processor path in fp32.

Rows are left-padded and scored at the last position (`logits_to_keep=1`): the families use
rotary positions, which a constant shift per row leaves unchanged, and padding is masked.
Adding a family = one `ChatFamily` entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.detectors.audio_llm import (
    AUDIO_MARK,
    DEFAULT_PROMPT,
    check_prompt,
    length_groups,
    read_model_config,
    resolve_device_dtype,
    trimmed_features,
    with_adapter,
)
from core.errors import LabError


def _whisper_tokens(frames: int) -> int:
    """Audio tokens for `frames` valid mel frames: conv stride 2, then pooling by 2 (Whisper-style towers)."""
    return (((frames - 1) // 2 + 1) - 2) // 2 + 1


@dataclass(frozen=True)
class ChatFamily:
    """What differs between audio-LLM families, as data."""

    name: str  # the detector's name
    title: str
    model_types: tuple[str, ...]  # config.json model_type values it loads
    model_class: str  # transformers class of the scoring model
    feature_mask: str  # the model's keyword for the mel-frame mask
    audio_token: str  # the placeholder the model fills with audio embeddings
    trimmed: bool  # the encoder takes features of any length: pad to the batch, not to 30 s
    attention: str  # LoRA module regexes: decoder attention, decoder MLP, encoder attention, encoder MLP
    mlp: str
    enc_attention: str
    enc_mlp: str
    window_s: int = 30  # clips longer than this are cut into windows (the processor's way)
    system: str = ""  # the family's default system turn ("" = none)


FAMILIES: dict[str, ChatFamily] = {
    "qwen2.5-omni": ChatFamily(
        name="qwen2.5-omni",
        title="Qwen2.5-Omni (thinker)",
        model_types=("qwen2_5_omni_thinker", "qwen2_5_omni"),
        model_class="Qwen2_5OmniThinkerForConditionalGeneration",
        feature_mask="feature_attention_mask",
        audio_token="<|AUDIO|>",
        trimmed=True,
        attention=r".*language_model.*\.self_attn\.(q_proj|k_proj|v_proj|o_proj)",
        mlp=r".*language_model.*\.mlp\.(gate_proj|up_proj|down_proj)",
        enc_attention=r".*audio_tower.*\.self_attn\.(q_proj|k_proj|v_proj|out_proj)",
        enc_mlp=r".*audio_tower.*\.(fc1|fc2)",
        system=(
            "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
            "auditory and visual inputs, as well as generating text and speech."
        ),
    ),
    "audio-flamingo-3": ChatFamily(
        name="audio-flamingo-3",
        title="Audio Flamingo 3",
        model_types=("audioflamingo3",),
        model_class="AudioFlamingo3ForConditionalGeneration",
        feature_mask="input_features_mask",
        audio_token="<sound>",
        trimmed=False,  # its Whisper tower adds all 1500 position embeddings: 30 s windows only
        attention=r".*language_model.*\.self_attn\.(q_proj|k_proj|v_proj|o_proj)",
        mlp=r".*language_model.*\.mlp\.(gate_proj|up_proj|down_proj)",
        enc_attention=r".*audio_tower.*\.self_attn\.(q_proj|k_proj|v_proj|out_proj)",
        enc_mlp=r".*audio_tower.*\.(fc1|fc2)",
    ),
}


def family_of(folder: str | Path) -> ChatFamily | None:
    """The chat family a model folder holds, or None (e.g. Qwen2-Audio, served by `audio_llm`)."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        return None
    model_type = read_model_config(path).get("model_type", "")
    return next((f for f in FAMILIES.values() if model_type in f.model_types), None)


def require_family(folder: str, family: ChatFamily) -> None:
    """Refuse a folder that is not a checkpoint of `family`, naming what it is instead."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise LabError(
            f"{family.title}: {folder!r} is not a folder here; copy the checkpoint folder to this machine "
            "(nothing can be downloaded) and give its path"
        )
    model_type = read_model_config(path).get("model_type", "?")
    if model_type not in family.model_types:
        from core.detectors import detector_for_model_type

        other = detector_for_model_type(model_type)
        hint = f"; score it with the {other!r} detector" if other else ""
        raise LabError(
            f"{folder}: a {model_type!r} checkpoint, not {family.title} ({', '.join(family.model_types)}){hint}"
        )


@dataclass
class ChatSpec:
    """What to load and how to score; saved in each predictions sidecar."""

    family: str
    model: str
    prompt: str = DEFAULT_PROMPT
    answers: tuple[str, str] = ("A", "B")
    adapter: str = ""
    dtype: str = "auto"
    device: str = "auto"
    load_in_4bit: bool = False
    padding: str = "trimmed"  # "padded": 30 s windows, as the family's processor does
    batch_size: int = 8
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChatParts:
    """The feature extractor and tokenizer of a checkpoint (what the lab needs of its processor)."""

    feature_extractor: Any
    tokenizer: Any


def load(spec: ChatSpec):
    """(model, parts) from a local checkpoint folder of the spec's family; 4-bit on CUDA; an adapter on top."""
    import torch
    import transformers
    from transformers import AutoFeatureExtractor, AutoTokenizer

    family = FAMILIES[spec.family]
    require_family(spec.model, family)
    device, dtype = resolve_device_dtype(spec)  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {"dtype": dtype}
    if spec.load_in_4bit:
        if not torch.cuda.is_available():
            raise LabError("4-bit NF4 loading needs a CUDA GPU and bitsandbytes; this machine has no CUDA device")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True
        )
        index = torch.device(device).index
        kwargs["device_map"] = {"": torch.cuda.current_device() if index is None else index}
    folder = str(Path(spec.model).expanduser())
    try:
        parts = ChatParts(
            AutoFeatureExtractor.from_pretrained(folder, local_files_only=True),
            AutoTokenizer.from_pretrained(folder, local_files_only=True),
        )
        if read_model_config(Path(folder)).get("model_type") == "qwen2_5_omni":  # the whole Omni: keep its thinker
            whole = transformers.Qwen2_5OmniForConditionalGeneration.from_pretrained(
                folder, local_files_only=True, **kwargs
            )
            model = whole.thinker
        else:
            model = getattr(transformers, family.model_class).from_pretrained(folder, local_files_only=True, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LabError(f"{folder}: not a loadable {family.title} folder ({type(exc).__name__}: {exc})") from exc
    if parts.tokenizer.chat_template is None:
        raise LabError(f"{folder}: its tokenizer has no chat template (chat_template.jinja); the prompt needs one")
    if not spec.load_in_4bit:
        model = model.to(device)
    model = with_adapter(model, spec.adapter)
    model.eval()
    return model, parts


def chat_text(family: ChatFamily, tokenizer, prompt: str) -> str:
    """The family's chat template with one audio slot and the question (the clip first unless `<audio>` says)."""
    check_prompt(prompt)
    before, _, after = prompt.partition(AUDIO_MARK) if AUDIO_MARK in prompt else ("", "", prompt)
    content = [{"type": "text", "text": before}] if before else []
    content.append({"type": "audio", "audio": "clip"})
    content += [{"type": "text", "text": after}] if after else []
    messages = [{"role": "user", "content": content}]
    if family.system:
        messages.insert(0, {"role": "system", "content": [{"type": "text", "text": family.system}]})
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    if text.count(family.audio_token) != 1:
        raise LabError(
            f"the chat template must put one {family.audio_token} in the prompt, found {text.count(family.audio_token)}"
        )
    return text


def features(family: ChatFamily, fe, clips: Sequence[np.ndarray], padded: bool) -> tuple[dict, list[int]]:
    """Mel features, their mask (under the model's keyword) and each clip's number of audio tokens.

    `padded` (or a family whose encoder needs it): 30 s windows, a clip longer than one window
    giving several rows, as the family's processor does. Otherwise features padded only to the
    batch's longest clip plus a margin (`audio_llm.trimmed_features`).
    """
    if padded or not family.trimmed:
        window = family.window_s * 16000
        rows, per_clip = [], []
        for clip in clips:
            pieces = [clip[i : i + window] for i in range(0, max(len(clip), 1), window)]
            rows += pieces
            per_clip.append(len(pieces))
        out = fe(rows, sampling_rate=16000, padding="max_length", return_attention_mask=True, return_tensors="pt")
        frames = out["attention_mask"].sum(-1).tolist()
        counts, k = [], 0
        for n in per_clip:
            counts.append(sum(_whisper_tokens(int(f)) for f in frames[k : k + n]))
            k += n
    else:
        out = trimmed_features(fe, clips)
        counts = [_whisper_tokens(int(f)) for f in out["attention_mask"].sum(-1).tolist()]
    return {"input_features": out["input_features"], family.feature_mask: out["attention_mask"]}, counts


def prepare(
    family: ChatFamily, parts: ChatParts, clips: Sequence[np.ndarray], prompt: str, padded: bool = False,
    answers: list[str] | None = None,
) -> dict:  # fmt: skip
    """Model inputs for a batch, rows left-padded; with `answers`, each row ends with its answer (training)."""
    feats, counts = features(family, parts.feature_extractor, clips, padded)
    text = chat_text(family, parts.tokenizer, prompt)
    texts = [text.replace(family.audio_token, family.audio_token * n, 1) for n in counts]
    if answers is not None:
        texts = [t + a for t, a in zip(texts, answers)]
    tok = parts.tokenizer(texts, return_tensors="pt", padding=True, padding_side="left")
    return {"input_ids": tok["input_ids"], "attention_mask": tok["attention_mask"], **feats}


def _on(batch: dict, device, dtype) -> dict:
    return {k: v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device) for k, v in batch.items()}


def last_logits(model, batch: dict, keep: int = 1):
    """Full-vocabulary logits at the last `keep` positions (float32)."""
    param = next(model.parameters())
    dtype = param.dtype if param.is_floating_point() else None
    out = model(
        **_on(batch, param.device, dtype or batch["input_features"].dtype), logits_to_keep=keep, use_cache=False
    )
    return out.logits.float()


def answer_loss(model, batch: dict, labels=None, answer_mask=None):
    """Cross-entropy of the answer token only: every row ends with its answer, predicted from the position before.

    `labels` and `answer_mask` are the Qwen2-Audio loss's arguments, unused here: the answer is
    each row's last token by construction (left padding), so no other token can reach the loss.
    """
    import torch

    logits = last_logits(model, batch, keep=2)[:, 0]
    target = batch["input_ids"][:, -1].to(logits.device)
    return torch.nn.functional.cross_entropy(logits, target)


def target_regex(family: ChatFamily, targets: str, audio_encoder: bool) -> str:
    """peft target_modules regex with the family's module names (attention, + MLP; the audio tower too)."""
    parts = [family.attention] + ([family.mlp] if targets == "attention+mlp" else [])
    if audio_encoder:
        parts += [family.enc_attention] + ([family.enc_mlp] if targets == "attention+mlp" else [])
    return "|".join(f"({p})" for p in parts)


class ChatAudioDetector:
    """Scores clips by the two answer-token logits of a chat audio-LLM family."""

    reads_lazily = True

    def __init__(self, spec: ChatSpec, model=None, parts: ChatParts | None = None, name: str | None = None):
        self.spec, self.family = spec, FAMILIES[spec.family]
        if spec.padding not in ("trimmed", "padded"):
            raise LabError(f"padding must be 'trimmed' or 'padded', got {spec.padding!r}")
        self.prompt, self.adapter = spec.prompt, spec.adapter
        self.name = name or spec.family
        check_prompt(spec.prompt)  # refused before a model is loaded
        if model is None:
            model, parts = load(spec)
        self.model, self.parts = model, parts
        tok = parts.tokenizer
        self.ids = []
        for answer in spec.answers:
            ids = tok(answer, add_special_tokens=False)["input_ids"]
            if len(ids) != 1:
                raise LabError(f"answer {answer!r} is {len(ids)} tokens for this tokenizer; answers must be one token")
            self.ids.append(ids[0])

    def score(self, clips: Sequence[np.ndarray], sr: int, on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """(n, 2) answer logits, clips batched by length."""
        import torch

        if sr != 16000:
            raise ValueError(f"{self.family.title} takes 16 kHz audio, got {sr} Hz")
        lengths = clips.lengths if hasattr(clips, "lengths") else [len(c) for c in clips]
        out = np.empty((len(clips), 2))
        done = 0
        padded = self.spec.padding == "padded"
        for idx in length_groups(lengths, max(1, self.spec.batch_size)):
            batch = prepare(self.family, self.parts, [clips[i] for i in idx], self.prompt, padded)
            with torch.inference_mode():
                logits = last_logits(self.model, batch)[:, -1]
            out[idx] = logits[:, self.ids].cpu().numpy()
            done += len(idx)
            if on_batch:
                on_batch(done)
        return out

    def info(self) -> dict[str, Any]:
        device = str(next(self.model.parameters()).device)
        spec = {k: v for k, v in asdict(self.spec).items() if k not in ("extra", "device")}
        return {**spec, "answers": list(self.spec.answers), "device": device, "model_id": self.spec.model}
