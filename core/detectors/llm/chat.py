"""Chat audio-LLM families read through their feature extractor, tokenizer and chat template:
the shared implementation behind Qwen2.5-Omni's thinker and Audio Flamingo 3.

The lab builds the model inputs itself rather than through the family's processor object: it
needs only the feature extractor and tokenizer saved in the checkpoint folder (Qwen2.5-Omni's
processor also wants a video processor, hence torchvision, to exist), it can pad the features
to the batch instead of 30 s where the family's encoder takes any length (Qwen2.5-Omni packs
the valid frames of each clip), and it appends the answer for training. What it builds is what
the processor builds: `tests/test_detector_families.py::test_batched_trimmed_scores_equal_the_families_processor_path`
proves the logits equal in fp32.

Rows are left-padded and scored at the last position (`logits_to_keep`): the families use
rotary positions, which a constant shift per row leaves unchanged, and padding is masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.detectors.checkpoints import quantization, read_model_config, ready, resolve_device_dtype
from core.detectors.llm.family import AudioLLMSpec, Family, LoraModules
from core.detectors.llm.features import audio_token_count, trimmed_features
from core.detectors.llm.prompt import user_content
from core.errors import LabError

# torch and transformers are imported inside functions: importing this module stays cheap

# module names shared by the Whisper-tower + Qwen2-decoder families
WHISPER_QWEN2_LORA = LoraModules(
    attention=r".*language_model.*\.self_attn\.(q_proj|k_proj|v_proj|o_proj)",
    mlp=r".*language_model.*\.mlp\.(gate_proj|up_proj|down_proj)",
    enc_attention=r".*audio_tower.*\.self_attn\.(q_proj|k_proj|v_proj|out_proj)",
    enc_mlp=r".*audio_tower.*\.(fc1|fc2)",
)


@dataclass
class ChatParts:
    """The feature extractor and tokenizer of a checkpoint (what the lab needs of its processor)."""

    feature_extractor: Any
    tokenizer: Any


@dataclass(frozen=True)
class ChatFamily(Family):
    """A chat family described as data; subclasses override `load_model` when a checkpoint needs it."""

    name: str
    title: str
    model_types: tuple[str, ...]  # config.json model_type values it loads
    model_class: str  # transformers class of the scoring model
    feature_mask: str  # the model's keyword for the mel-frame mask
    audio_token: str  # the placeholder the model fills with audio embeddings
    trimmed: bool  # the encoder takes features of any length: pad to the batch, not to 30 s
    lora: LoraModules = WHISPER_QWEN2_LORA
    window_s: int = 30  # clips longer than this are cut into windows (the processor's way)
    system: str = ""  # the family's default system turn ("" = none)

    @property
    def detector(self) -> str:
        return self.name

    def load_model(self, folder: str, kwargs: dict[str, Any]):
        """The scoring model of a checkpoint folder."""
        import transformers

        return getattr(transformers, self.model_class).from_pretrained(folder, local_files_only=True, **kwargs)

    def load(self, spec: AudioLLMSpec):
        """(model, parts) from a local checkpoint folder of this family; 4-bit on CUDA; an adapter on top."""
        from transformers import AutoFeatureExtractor, AutoTokenizer

        self.check_available(spec.model)
        device, dtype = resolve_device_dtype(spec.device, spec.dtype)
        kwargs: dict[str, Any] = {"dtype": dtype, **quantization(spec.load_in_4bit, device, dtype)}
        folder = str(Path(spec.model).expanduser())
        try:
            parts = ChatParts(
                AutoFeatureExtractor.from_pretrained(folder, local_files_only=True),
                AutoTokenizer.from_pretrained(folder, local_files_only=True),
            )
            model = self.load_model(folder, kwargs)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LabError(f"{folder}: not a loadable {self.title} folder ({type(exc).__name__}: {exc})") from exc
        if parts.tokenizer.chat_template is None:
            raise LabError(f"{folder}: its tokenizer has no chat template (chat_template.jinja); the prompt needs one")
        model = ready(model, device, spec.load_in_4bit, spec.adapter)
        return model, parts

    def chat_text(self, parts: ChatParts, prompt: str) -> str:
        """The family's chat template with one audio slot and the question (the clip first unless `<audio>` says)."""
        messages = [{"role": "user", "content": user_content(prompt, {"type": "audio", "audio": "clip"})}]
        if self.system:
            messages.insert(0, {"role": "system", "content": [{"type": "text", "text": self.system}]})
        text = parts.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        if text.count(self.audio_token) != 1:
            raise LabError(
                f"the chat template must put one {self.audio_token} in the prompt, found {text.count(self.audio_token)}"
            )
        return text

    def mel(self, fe, clips: Sequence[np.ndarray], padded: bool) -> tuple[dict, list[int]]:
        """Mel features, their mask (under the model's keyword) and each clip's number of audio tokens.

        `padded` (or a family whose encoder needs it): 30 s windows, a clip longer than one window
        giving several rows, as the family's processor does (transformers 5.25's
        AudioFlamingo3Processor and Qwen2.5-Omni's feature layout; the processor-path tests fail if
        that moves). Otherwise features padded only to the
        batch's longest clip plus a margin (`features.trimmed_features`).
        """
        if padded or not self.trimmed:
            window = self.window_s * 16000
            rows, per_clip = [], []
            for clip in clips:
                pieces = [clip[i : i + window] for i in range(0, max(len(clip), 1), window)]
                rows += pieces
                per_clip.append(len(pieces))
            out = fe(rows, sampling_rate=16000, padding="max_length", return_attention_mask=True, return_tensors="pt")
            frames = out["attention_mask"].sum(-1).tolist()
            counts, k = [], 0
            for n in per_clip:
                counts.append(sum(audio_token_count(int(f)) for f in frames[k : k + n]))
                k += n
        else:
            out = trimmed_features(fe, clips)
            counts = [audio_token_count(int(f)) for f in out["attention_mask"].sum(-1).tolist()]
        return {"input_features": out["input_features"], self.feature_mask: out["attention_mask"]}, counts

    def prepare(self, parts: ChatParts, clips: Sequence[np.ndarray], prompt: str, padded: bool = False,
                answers: list[str] | None = None) -> dict:  # fmt: skip
        """Model inputs for a batch, rows left-padded; with `answers`, each row ends with its answer (training)."""
        feats, counts = self.mel(parts.feature_extractor, clips, padded)
        if answers is not None and len(feats["input_features"]) != len(clips):
            raise LabError(f"{self.title} training takes clips of at most {self.window_s} s")
        text = self.chat_text(parts, prompt)
        texts = [text.replace(self.audio_token, self.audio_token * n, 1) for n in counts]
        if answers is not None:
            texts = [t + a for t, a in zip(texts, answers)]
        tok = parts.tokenizer(texts, return_tensors="pt", padding=True, padding_side="left")
        return {"input_ids": tok["input_ids"], "attention_mask": tok["attention_mask"], **feats}

    def next_token_logits(self, model, batch: dict, padded: bool):
        return last_logits(model, batch)[:, -1]

    def answer_loss(self, model, batch: dict, labels, answer_mask):
        """Cross-entropy of the answer tokens only: left-padded rows end with their answer, so the
        logits of the last (longest answer + 1) positions hold every prediction the loss reads."""
        import torch

        keep = int(answer_mask.sum(-1).max()) + 1
        logits = last_logits(model, batch, keep=keep)  # (rows, keep, vocab)
        mask = answer_mask[:, -keep:].to(logits.device)[:, 1:]  # the logits at t predict token t + 1
        rows, cols = mask.nonzero(as_tuple=True)
        target = labels[:, -keep:].to(logits.device)[:, 1:]
        return torch.nn.functional.cross_entropy(logits[:, :-1][rows, cols], target[rows, cols])


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


def model_type_of(folder: str | Path) -> str:
    """config.json's model_type of a local folder ("" when it is not a folder)."""
    path = Path(folder).expanduser()
    return str(read_model_config(path).get("model_type", "")) if path.is_dir() else ""
