"""The contract of one audio-LLM family, and the settings every family's detector takes.

A family answers, for its checkpoints: how to load them (adapter, 4-bit), how clips and a
prompt become model inputs (trimmed or padded; the clip first or after the question; an answer
appended for training), where the answer is read (the next-token logits at each row's last real
token), which modules LoRA adapts, its audio window, and how the answer loss is masked. The
detector (`llm.detector`), training, cross-validation, prompt studies and the pages call these
methods and never ask which family they hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.detectors.llm.prompt import DEFAULT_PROMPT
from core.errors import LabError

# torch is imported inside functions (here and in every family module): importing the package stays cheap


@dataclass
class AudioLLMSpec:
    """What to load and how to score; saved in each predictions sidecar."""

    model: str = "Qwen/Qwen2-Audio-7B-Instruct"
    prompt: str = DEFAULT_PROMPT
    answers: tuple[str, str] = ("A", "B")
    adapter: str = ""
    dtype: str = "auto"  # auto = bf16 on CUDA, fp32 on CPU
    device: str = "auto"
    load_in_4bit: bool = False
    padding: str = "trimmed"  # or "padded" (30 s, the processor's path)
    mode: str = "logits"  # or "generate" (constrained to the two answers), for parity checks
    batch_size: int = 8
    compile: bool = False  # torch.compile each encoder and decoder layer (GPU throughput)
    workers: int = -1  # processes preparing batches ahead of the device; -1 = 4 on CUDA, none on CPU
    family: str = ""  # a key of llm.registry.FAMILIES; "" = from the model folder's model_type
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoraModules:
    """Regexes of the modules LoRA adapts, by role, in one family's module names."""

    attention: str  # decoder attention projections
    mlp: str  # decoder MLP
    enc_attention: str  # audio encoder attention
    enc_mlp: str  # audio encoder MLP

    def regex(self, targets: str, audio_encoder: bool) -> str:
        """peft target_modules: attention ("attention") or attention and MLP ("attention+mlp"), in the
        decoder and, with `audio_encoder`, in the audio tower too."""
        parts = [self.attention] + ([self.mlp] if targets == "attention+mlp" else [])
        if audio_encoder:
            parts += [self.enc_attention] + ([self.enc_mlp] if targets == "attention+mlp" else [])
        return "|".join(f"({p})" for p in parts)


def answer_mask(attention_mask, n_tokens: Sequence[int]):
    """Where each row's answer lies: its last `n_tokens[row]` real tokens, left- or right-padded rows.

    The loss is masked to these positions, so a prompt whose answers are words ("Yes"/"No", maybe
    several tokens) trains on the whole answer and on nothing before it.
    """
    import torch

    real = attention_mask.long()
    seen = real.cumsum(-1)  # real tokens up to and including each position
    total = real.sum(-1, keepdim=True)
    return real.bool() & (seen > total - torch.tensor(list(n_tokens))[:, None])


class Family:
    """One audio-LLM family: the model-facing contract. Subclasses implement the methods marked so.

    Attributes every family sets: `name` (the key in `llm.registry.FAMILIES`), `title`,
    `model_types` (config.json model_type values it loads), `audio_token` (the placeholder its
    audio embeddings fill), `feature_mask` (its keyword for the mel-frame mask), `lora`
    (`LoraModules`). Capabilities: `shared_audio` (many prompts scored on one encoder pass and
    one audio cache: `encode`, `decoder`, `features`), `generates` (`generate_logits`),
    `compiles` (`compile`), `hub_ids` (loads an id from the local Hugging Face cache, not only a
    folder).
    """

    name: str
    title: str
    model_types: tuple[str, ...]
    audio_token: str
    feature_mask: str
    lora: LoraModules
    detector: str  # the detector (core.detectors.REGISTRY) that scores this family's checkpoints
    shared_audio = False
    generates = False
    compiles = False
    hub_ids = False

    # ---- must implement
    def load(self, spec: AudioLLMSpec) -> tuple[Any, Any]:
        """(model in eval mode with `spec.adapter` on top, parts): parts has `.tokenizer` and
        `.feature_extractor`. Nothing is downloaded; a bad folder is a LabError naming it."""
        raise NotImplementedError

    def chat_text(self, parts: Any, prompt: str) -> str:
        """The chat template with one audio slot (`audio_token`) and the question, ready for the answer."""
        raise NotImplementedError

    def prepare(self, parts: Any, clips: Sequence[np.ndarray], prompt: str, padded: bool,
                answers: list[str] | None = None) -> dict:  # fmt: skip
        """Model inputs for a batch (host tensors); with `answers` (training) each row ends with its answer."""
        raise NotImplementedError

    def next_token_logits(self, model: Any, batch: dict, padded: bool):
        """(rows, vocab) float32 logits at each row's last real token: where the answer is read."""
        raise NotImplementedError

    def answer_loss(self, model: Any, batch: dict, labels: Any, answer_mask: Any):
        """Mean cross-entropy of `labels` (rows, tokens; the batch's input ids in training) where
        `answer_mask` is true (from `answer_mask()`), each predicted from the position before; no
        other label or position reaches the loss or its gradients."""
        raise NotImplementedError

    # ---- may override
    def check_available(self, model: str) -> None:
        """Refuse, before any job starts, a model that is not here or not of this family."""
        from core.detectors.checkpoints import model_folder, require_available

        if self.hub_ids:
            require_available(model, self.model_types)
        else:
            model_folder(model, self.title, self.model_types)

    def clip_limits(self, parts: Any) -> tuple[float | None, float | None]:
        """(shortest, longest) clip in seconds this family scores whole; None = no limit."""
        return None, None

    def lora_targets(self, targets: str, audio_encoder: bool) -> str:
        return self.lora.regex(targets, audio_encoder)

    def default_name(self, spec: AudioLLMSpec) -> str:
        return self.name

    def features(self, parts: Any, clips: Sequence[np.ndarray]) -> dict:
        """Trimmed audio features alone (shared-audio families), for scoring several prompts on them."""
        raise LabError(f"{self.title}: several prompts are scored one by one (no shared audio path)")

    def encode(self, model: Any, features: dict):
        """(audio embeddings (rows, tokens, hidden), host lengths) of `features` (shared-audio families)."""
        raise LabError(f"{self.title} has no shared audio path")

    def decoder(self, model: Any):
        """(language model, input embeddings, lm_head) of a shared-audio family's model."""
        raise LabError(f"{self.title} has no shared audio path")

    def generate_logits(self, model: Any, parts: Any, clips: list[np.ndarray], prompt: str, ids: tuple[int, int]):
        """First-step logits of the two answers from `generate()` on the processor's path (parity checks)."""
        raise LabError(f"{self.title}: generate mode is not available; score by logits")

    def compile(self, model: Any) -> None:
        raise LabError(f"{self.title}: compiled layers are not available; leave compile off")
