"""Stage 2, detectors: every detector family behind the small interface in `base.py`, and this
registry of them (imports data, for the lab base model's recipe; nothing above).

Adding a detector = one module with a class implementing `score` and `info`, plus one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.detectors.base import Detector


def _lab_base(**opts: Any) -> Detector:
    from core.detectors.audio_llm import AudioLLMDetector, AudioLLMSpec
    from core.detectors.lab_model import ensure_base_model

    spec = AudioLLMSpec(model=str(ensure_base_model()), **opts)
    return AudioLLMDetector(spec, name="lab-base")


def _audio_llm(**opts: Any) -> Detector:
    from core.detectors.audio_llm import AudioLLMDetector, AudioLLMSpec

    return AudioLLMDetector(AudioLLMSpec(**opts))


def _silero(**_: Any) -> Detector:
    from core.detectors.vad import SileroVAD

    return SileroVAD()


def _webrtc(**_: Any) -> Detector:
    from core.detectors.vad import WebRTCVAD

    return WebRTCVAD()


DETECTORS: dict[str, Callable[..., Detector]] = {
    "lab-base": _lab_base,
    "audio-llm": _audio_llm,
    "silero-vad": _silero,
    "webrtc-vad": _webrtc,
}
DESCRIPTIONS = {
    "lab-base": "the lab's small Qwen2-Audio (trained offline by a recipe in core/lab_model.py)",
    "audio-llm": "any Qwen2-Audio checkpoint: a local directory or a cached id (e.g. Qwen/Qwen2-Audio-7B-Instruct)",
    "silero-vad": "Silero VAD, pretrained (weights ship in the silero-vad wheel)",
    "webrtc-vad": "WebRTC VAD (GMM), modes 0-3",
}


def make_detector(name: str, **opts: Any) -> Detector:
    from core.errors import LabError

    if name not in DETECTORS:
        raise LabError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    return DETECTORS[name](**opts)
