"""Any `AutoModelForAudioClassification` checkpoint (e.g. AST fine-tuned on AudioSet) as a speech detector.

Which labels count as speech is a choice (default: the labels whose names say speech, found by
`SPEECH_PATTERN` in `id2label`), and how the head's logits become one clip log-odds depends on
the head:
- softmax (single-label, `problem_type` "single_label_classification"): P(speech) is the summed
  probability of the speech labels, so log-odds = logsumexp(speech logits) − logsumexp(the rest);
- sigmoid (multi-label, AudioSet's 527 classes): each label is its own yes/no; the clip's speech
  probability is that of its most confident speech label, so log-odds = the largest speech logit.
`auto` takes the head from `problem_type`, else sigmoid for a 527-label (AudioSet) head, else softmax.
Clips are batched when the feature extractor's output does not depend on the clip's length or it
returns an attention mask; otherwise one at a time (padding would change an unmasked model's answer).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from core.detectors.checkpoints import loaded, model_folder, resolve_device_dtype
from core.errors import LabError

# torch and transformers are imported inside functions: importing this module stays cheap

WHAT = "an audio-classification checkpoint"
SPEECH_PATTERN = re.compile(r"speech|speak|conversation|narration|monologue|babbl|whisper|talk", re.IGNORECASE)
AUDIOSET_CLASSES = 527


def default_speech_labels(id2label: dict) -> list[str]:
    """Labels whose names say speech (AudioSet: Speech, Male speech, Conversation, Narration, ...)."""
    return [name for _, name in sorted((int(k), v) for k, v in id2label.items()) if SPEECH_PATTERN.search(name)]


def head_kind(config, head: str = "auto") -> str:
    """softmax or sigmoid: given, else from `problem_type`, else sigmoid for an AudioSet-sized head."""
    if head in ("softmax", "sigmoid"):
        return head
    if head != "auto":
        raise LabError(f"head must be auto, softmax or sigmoid, got {head!r}")
    kind = getattr(config, "problem_type", None)
    if kind == "multi_label_classification":
        return "sigmoid"
    if kind == "single_label_classification":
        return "softmax"
    return "sigmoid" if config.num_labels == AUDIOSET_CLASSES else "softmax"


def speech_columns(id2label: dict, speech_labels: Sequence[str] | None) -> np.ndarray:
    """Column indices of the speech labels; every name must be one of the model's labels."""
    names = {v: int(k) for k, v in id2label.items()}
    chosen = list(speech_labels) if speech_labels else default_speech_labels(id2label)
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise LabError(f"not labels of this model: {unknown}; its labels include {sorted(names)[:12]}")
    if not chosen:
        raise LabError("no label of this model says speech; choose the speech labels (--speech-labels)")
    if len(chosen) == len(names):
        raise LabError("every label was chosen as speech: leave at least one non-speech label")
    return np.array(sorted(names[n] for n in chosen))


def clip_logits(logits, columns: np.ndarray, head: str):
    """(n, 2) logits whose difference is the clip's log-odds of speech (see the module docstring)."""
    import torch

    mask = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    mask[torch.as_tensor(columns, device=logits.device)] = True
    if head == "softmax":
        z = logits.logsumexp(-1, keepdim=True)
        return torch.stack([logits[:, mask].logsumexp(-1), logits[:, ~mask].logsumexp(-1)], 1) - z
    best = logits[:, mask].max(-1).values
    return torch.stack([-torch.nn.functional.softplus(-best), -torch.nn.functional.softplus(best)], 1)


def window_of(fe) -> float | None:
    """Seconds of audio a fixed-length feature extractor keeps (None when it cannot be told)."""
    if getattr(fe, "n_samples", None):  # Whisper-style: samples per window
        return fe.n_samples / 16000
    if type(fe).__name__ == "ASTFeatureExtractor":  # frames of a 10 ms shift
        return fe.max_length / 100
    return None


class AudioClassifier:
    """Scores clips by an audio classifier's speech labels."""

    reads_lazily = True
    prompt = ""
    adapter = ""

    def __init__(
        self, model: str, speech_labels: Sequence[str] | None = None, head: str = "auto", batch_size: int = 16,
        dtype: str = "auto", device: str = "auto",
    ):  # fmt: skip
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        self.name, self.model_id = "audio-classifier", model
        path = model_folder(model, WHAT, architecture="ForAudioClassification")
        self.device, dtype_ = resolve_device_dtype(device, dtype)
        self.fe = loaded(WHAT, path, lambda: AutoFeatureExtractor.from_pretrained(path, local_files_only=True))
        self.model = loaded(
            WHAT,
            path,
            lambda: AutoModelForAudioClassification.from_pretrained(path, local_files_only=True, dtype=dtype_),
        )
        self.model = self.model.to(self.device).eval()
        id2label = self.model.config.id2label
        self.columns = speech_columns(id2label, speech_labels)
        self.speech_labels = [id2label[int(c)] for c in self.columns]
        self.head = head_kind(self.model.config, head)
        fixed, masked = self._batching()
        self.batch_size = max(1, batch_size) if fixed or masked else 1
        self.batching = "fixed-length features" if fixed else ("attention mask" if masked else "one clip at a time")
        # fixed-length features hold a fixed window: longer clips are scored on their start (AST: 1,024
        # frames of 10 ms); the window is recorded with every table, so a cut is never silent
        self.window_seconds = window_of(self.fe) if fixed else None

    def _batching(self) -> tuple[bool, bool]:
        """(features of a fixed length, an attention mask available): may clips of different lengths share a batch?"""
        key, short, long = self.fe.model_input_names[0], np.zeros(1600, np.float32), np.zeros(8000, np.float32)
        one = self.fe([short], sampling_rate=16000, return_tensors="pt")
        other = self.fe([long], sampling_rate=16000, return_tensors="pt")
        fixed = tuple(one[key].shape[1:]) == tuple(other[key].shape[1:])
        try:
            masked = "attention_mask" in self.fe([short], sampling_rate=16000, return_attention_mask=True)
        except TypeError:
            masked = False
        return fixed, masked

    def forward(self, clips: Sequence[np.ndarray]):
        import torch

        kw = {"padding": True, "return_attention_mask": True} if self.batching == "attention mask" else {}
        feats = self.fe([np.asarray(c) for c in clips], sampling_rate=16000, return_tensors="pt", **kw)
        inputs = {k: (v.to(self.device, self.model.dtype) if v.is_floating_point() else v.to(self.device))
                  for k, v in feats.items()}  # fmt: skip
        with torch.inference_mode():
            return self.model(**inputs).logits.float()

    def score(self, clips: Sequence[np.ndarray], sr: int, on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        if sr != 16000:
            raise ValueError(f"the classifier is fed 16 kHz audio, got {sr} Hz")
        out = np.empty((len(clips), 2))
        for start in range(0, len(clips), self.batch_size):
            stop = min(start + self.batch_size, len(clips))
            out[start:stop] = (
                clip_logits(self.forward([clips[i] for i in range(start, stop)]), self.columns, self.head).cpu().numpy()
            )
            if on_batch:
                on_batch(stop)
        return out

    def info(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "device": str(self.device), "head": self.head,
                "speech_labels": self.speech_labels, "batching": self.batching, "batch_size": self.batch_size,
                **({"window_seconds": self.window_seconds} if self.window_seconds else {})}  # fmt: skip
