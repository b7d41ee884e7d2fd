"""CLAP zero-shot: a clip against text prompts for the two classes, by scaled audio-text similarity.

CLAP scores a clip against each text with `logit_scale · cos(audio, text)` (`logits_per_audio`).
With one prompt per class, the difference of the two is exactly the log-odds of the two-way
softmax CLAP's zero-shot classification uses. With several prompts per class, each class's
logit is the mean of its prompts' logits (the prompt ensemble: the similarity to the mean text
embedding). CLAP takes 48 kHz audio: clips are resampled with soxr and, being at most 10 s in
CLAP's window, cut to their first 10 s, so the feature extractor never picks a random crop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from core.detectors.checkpoints import loaded, model_folder, resolve_device_dtype
from core.errors import LabError

# torch and transformers are imported inside functions: importing this module stays cheap

WHAT = "a CLAP checkpoint"
SPEECH_PROMPTS = ("the sound of a person speaking", "human speech")
NONSPEECH_PROMPTS = ("the sound of noise, music or the environment, with no one speaking", "background noise")
SR = 48000


class ClapZeroShot:
    """Scores clips by CLAP's similarity to speech prompts against non-speech prompts."""

    reads_lazily = True
    adapter = ""
    window_seconds = 10.0  # CLAP's window: a longer clip is scored on its first 10 s

    def __init__(
        self, model: str, speech_prompts: Sequence[str] = SPEECH_PROMPTS, nonspeech_prompts: Sequence[str] = NONSPEECH_PROMPTS,
        batch_size: int = 16, dtype: str = "auto", device: str = "auto",
    ):  # fmt: skip
        from transformers import ClapModel, ClapProcessor

        self.speech = [p.strip() for p in speech_prompts if p.strip()]
        self.nonspeech = [p.strip() for p in nonspeech_prompts if p.strip()]
        if not self.speech or not self.nonspeech:
            raise LabError("CLAP needs at least one text prompt for speech and one for non-speech")
        self.name, self.model_id, self.batch_size = "clap", model, max(1, batch_size)
        self.prompt = " | ".join(self.speech) + " vs " + " | ".join(self.nonspeech)
        path = model_folder(model, WHAT, ("clap",))
        self.device, dtype_ = resolve_device_dtype(device, dtype)
        self.processor = loaded(WHAT, path, lambda: ClapProcessor.from_pretrained(path, local_files_only=True))
        self.model = loaded(WHAT, path, lambda: ClapModel.from_pretrained(path, local_files_only=True, dtype=dtype_))
        self.model = self.model.to(self.device).eval()

    def similarities(self, clips: Sequence[np.ndarray]):
        """`logits_per_audio` (n clips, speech prompts + non-speech prompts), as CLAP computes them."""
        import torch

        from core.data.audio import resample

        audio = [resample(np.asarray(c, np.float32), 16000, SR)[: int(self.window_seconds * SR)] for c in clips]
        inputs = self.processor(text=[*self.speech, *self.nonspeech], audio=audio, sampling_rate=SR,
                                return_tensors="pt", text_kwargs={"padding": True})  # fmt: skip
        inputs = {k: (v.to(self.device, self.model.dtype) if v.is_floating_point() else v.to(self.device))
                  for k, v in inputs.items()}  # fmt: skip
        with torch.inference_mode():
            return self.model(**inputs).logits_per_audio.float()

    def score(self, clips: Sequence[np.ndarray], sr: int, on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        if sr != 16000:
            raise ValueError(f"the lab feeds 16 kHz clips (resampled to 48 kHz here), got {sr} Hz")
        out = np.empty((len(clips), 2))
        k = len(self.speech)
        for start in range(0, len(clips), self.batch_size):
            stop = min(start + self.batch_size, len(clips))
            sims = self.similarities([clips[i] for i in range(start, stop)])
            out[start:stop, 0] = sims[:, :k].mean(-1).cpu().numpy()
            out[start:stop, 1] = sims[:, k:].mean(-1).cpu().numpy()
            if on_batch:
                on_batch(stop)
        return out

    def info(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "device": str(self.device), "speech_prompts": self.speech,
                "nonspeech_prompts": self.nonspeech, "batch_size": self.batch_size, "window_seconds": self.window_seconds}  # fmt: skip
