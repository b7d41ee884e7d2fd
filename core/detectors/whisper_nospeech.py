"""Whisper's no-speech probability as a detector: the signal Whisper itself uses to skip silence.

After the start-of-transcript token, Whisper's next-token distribution gives its no-speech token
(`<|nospeech|>`, `<|nocaptions|>` in older vocabularies) a probability p. The clip's logits are
(log(1 − p), log p): the log-odds of speech, computed in log space from the full softmax. The
decoder sees only the start token, so the position does not depend on any language or task
token (as in OpenAI's and transformers' no-speech detection). Whisper's encoder takes 30 s of
features: clips are padded to 30 s (longer ones cut to their first 30 s), batched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from core.detectors.checkpoints import loaded, model_folder, resolve_device_dtype
from core.errors import LabError

# torch and transformers are imported inside functions: importing this module stays cheap

WHAT = "a Whisper checkpoint"


def no_speech_token(model, tokenizer=None) -> int:
    """The no-speech token id: transformers' rule (no-timestamps token − 1), checked against the vocabulary."""
    gen = model.generation_config
    token = getattr(gen, "no_timestamps_token_id", None)
    if token is not None:
        return int(token) - 1
    if tokenizer is not None:
        for name in ("<|nospeech|>", "<|nocaptions|>"):
            tid = tokenizer.convert_tokens_to_ids(name)
            if tid is not None and tid != tokenizer.unk_token_id:
                return int(tid)
    raise LabError("this Whisper checkpoint names no no-speech token (generation_config.no_timestamps_token_id)")


class WhisperNoSpeech:
    """Scores clips by Whisper's no-speech probability after the start-of-transcript token."""

    reads_lazily = True
    prompt = ""
    adapter = ""
    window_seconds = 30.0  # Whisper's encoder window: a longer clip is scored on its first 30 s

    def __init__(self, model: str, batch_size: int = 16, dtype: str = "auto", device: str = "auto", loaded_model=None):
        from transformers import AutoFeatureExtractor, WhisperForConditionalGeneration

        self.name, self.model_id, self.batch_size = "whisper-nospeech", model, max(1, batch_size)
        path = model_folder(model, WHAT, ("whisper",))
        self.device, dtype_ = resolve_device_dtype(device, dtype)
        self.fe = loaded(WHAT, path, lambda: AutoFeatureExtractor.from_pretrained(path, local_files_only=True))
        self.model = loaded_model or loaded(
            WHAT,
            path,
            lambda: WhisperForConditionalGeneration.from_pretrained(path, local_files_only=True, dtype=dtype_),
        )
        self.model = self.model.to(self.device).eval()
        self.start = int(
            self.model.generation_config.decoder_start_token_id or self.model.config.decoder_start_token_id
        )
        self.token = no_speech_token(self.model)

    def log_probs(self, clips: Sequence[np.ndarray]):
        """(n, 2): log P(any other token), log P(no-speech) at the start of the transcript."""
        import torch

        window = int(self.window_seconds * 16000)
        feats = self.fe([np.asarray(c)[:window] for c in clips], sampling_rate=16000, return_tensors="pt")
        x = feats["input_features"].to(self.device, self.model.dtype)
        start = torch.full((len(clips), 1), self.start, device=self.device)
        with torch.inference_mode():
            logits = self.model(input_features=x, decoder_input_ids=start).logits[:, 0].float()
        log_p = torch.log_softmax(logits, dim=-1)
        no = log_p[:, self.token]
        other = torch.cat([log_p[:, : self.token], log_p[:, self.token + 1 :]], dim=-1).logsumexp(-1)
        return torch.stack([other, no], dim=1).cpu().numpy()

    def score(self, clips: Sequence[np.ndarray], sr: int, on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        if sr != 16000:
            raise ValueError(f"Whisper takes 16 kHz audio, got {sr} Hz")
        out = np.empty((len(clips), 2))
        for start in range(0, len(clips), self.batch_size):
            idx = range(start, min(start + self.batch_size, len(clips)))
            out[start : idx.stop] = self.log_probs([clips[i] for i in idx])
            if on_batch:
                on_batch(idx.stop)
        return out

    def info(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "device": str(self.device), "dtype": str(self.model.dtype).replace("torch.", ""),
                "no_speech_token": self.token, "batch_size": self.batch_size, "window_seconds": self.window_seconds}  # fmt: skip
