"""Stage 2, detectors: every detector family behind the small interface in `base.py`, and this
registry of them (imports data, for the lab base model's recipe; nothing above).

Adding a detector = one module with a class implementing `score` and `info`, plus one `Entry` here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.detectors.base import Detector
from core.detectors.checkpoints import WrongModelType
from core.detectors.llm.registry import FAMILIES
from core.errors import LabError


@dataclass(frozen=True)
class Entry:
    """A detector as the pages and the CLI list it."""

    make: Callable[..., Detector]
    group: str  # the family group the Evaluate page lists it under
    offline: bool  # runs here with what ships (True), or needs a checkpoint folder copied here
    model_types: tuple[str, ...]  # checkpoint config.json model_type values it loads
    how: str  # one line: how its output becomes a clip log-odds
    description: str
    family: str = ""  # an audio-LLM family (core.detectors.llm): its checks and model types come from there


def _audio_llm(family: str, lab_base: bool = False) -> Callable[..., Detector]:
    """A maker for an audio-LLM family's detector (`core.detectors.llm`); `lab_base`: the lab's own model."""

    def make(**opts: Any) -> Detector:
        from core.detectors.llm import AudioLLMDetector, AudioLLMSpec

        if lab_base:
            from core.detectors.lab_base import ensure_base_model

            opts["model"] = str(ensure_base_model())
        return AudioLLMDetector(AudioLLMSpec(family=family, **opts), name="lab-base" if lab_base else None)

    return make


def _whisper(model: str = "", batch_size: int = 16, dtype: str = "auto", **_: Any) -> Detector:
    from core.detectors.whisper_nospeech import WhisperNoSpeech

    return WhisperNoSpeech(model, batch_size=batch_size, dtype=dtype)


def _classifier(model: str = "", speech_labels=None, head: str = "auto", batch_size: int = 16, dtype: str = "auto",
                **_: Any) -> Detector:  # fmt: skip
    from core.detectors.audio_classifier import AudioClassifier

    return AudioClassifier(model, speech_labels, head, batch_size=batch_size, dtype=dtype)


def _clap(model: str = "", speech_prompts=None, nonspeech_prompts=None, batch_size: int = 16, dtype: str = "auto",
          **_: Any) -> Detector:  # fmt: skip
    from core.detectors.clap import NONSPEECH_PROMPTS, SPEECH_PROMPTS, ClapZeroShot

    return ClapZeroShot(model, speech_prompts or SPEECH_PROMPTS, nonspeech_prompts or NONSPEECH_PROMPTS,
                        batch_size=batch_size, dtype=dtype)  # fmt: skip


def _silero(**_: Any) -> Detector:
    from core.detectors.vad import SileroVAD

    return SileroVAD()


def _webrtc(**_: Any) -> Detector:
    from core.detectors.vad import WebRTCVAD

    return WebRTCVAD()


LLM = "Audio LLMs"
ANSWER = "logit of answer A − logit of answer B after the question, one forward pass"


def _llm_entry(family: str, description: str) -> Entry:
    return Entry(_audio_llm(family), LLM, False, FAMILIES[family].model_types, ANSWER, description, family)


REGISTRY: dict[str, Entry] = {
    "lab-base": Entry(_audio_llm("qwen2-audio", lab_base=True), LLM, True, (), ANSWER,
                      "the lab's small Qwen2-Audio (trained offline by a recipe in core/detectors/lab_base.py)"),
    "audio-llm": _llm_entry("qwen2-audio", "Qwen2-Audio: a local checkpoint folder (e.g. Qwen2-Audio-7B-Instruct) or a cached id"),
    "qwen2.5-omni": _llm_entry("qwen2.5-omni", "Qwen2.5-Omni's thinker (text out, the talker unused): a checkpoint folder"),
    "audio-flamingo-3": _llm_entry("audio-flamingo-3",
                                   "NVIDIA Audio Flamingo 3 (Whisper-style encoder, Qwen2 decoder): a checkpoint folder"),
    "whisper-nospeech": Entry(_whisper, "Speech recognisers", False, ("whisper",),
                              "log P(not no-speech) − log P(<|nospeech|>) after the start-of-transcript token",
                              "any Whisper checkpoint folder: the probability Whisper uses to skip silence"),
    "audio-classifier": Entry(_classifier, "Audio classifiers", False, (),
                              "softmax head: log ΣP(speech labels) − log ΣP(other labels); sigmoid head: the largest "
                              "speech-label logit",
                              "any audio-classification checkpoint folder (e.g. AST on AudioSet), speech labels chosen"),
    "clap": Entry(_clap, "Audio classifiers", False, ("clap",),
                  "scaled audio-text similarity to the speech prompts − to the non-speech prompts (means per class)",
                  "CLAP zero-shot with editable text prompts for the two classes: a checkpoint folder"),
    "silero-vad": Entry(_silero, "Voice activity detectors", True, (),
                        "log-odds of the mean of the top 20% of frame speech probabilities",
                        "Silero VAD, pretrained (weights ship in the silero-vad wheel)"),
    "webrtc-vad": Entry(_webrtc, "Voice activity detectors", True, (),
                        "log-odds of the smoothed fraction of voiced frames, averaged over modes 0-3",
                        "WebRTC VAD (GMM), modes 0-3"),
}  # fmt: skip
DETECTORS: dict[str, Callable[..., Detector]] = {name: e.make for name, e in REGISTRY.items()}
DESCRIPTIONS = {name: e.description for name, e in REGISTRY.items()}
CHECKPOINT_DETECTORS = tuple(name for name, e in REGISTRY.items() if not e.offline)
LLM_DETECTORS = tuple(name for name, e in REGISTRY.items() if e.group == LLM)  # the ones a prompt is asked of


def needs_model(name: str) -> bool:
    """The detector scores a checkpoint the user names (a folder; audio-llm: also a cached id)."""
    return not REGISTRY[name].offline


def detector_for_model_type(model_type: str) -> str:
    """The detector that loads checkpoints of `model_type` ("" when none does)."""
    return next((name for name, e in REGISTRY.items() if model_type in e.model_types), "")


def with_hint(exc: WrongModelType) -> LabError:
    """`exc` with the detector that does load its checkpoint kind, when one does."""
    other = detector_for_model_type(exc.model_type)
    return LabError(f"{exc}; score it with the {other!r} detector" if other else str(exc))


def check_checkpoint(name: str, model: str) -> None:
    """Refuse, before any job starts, a checkpoint folder that is missing or of another family than `name` loads."""
    entry = REGISTRY[name]
    try:
        if entry.family:
            from core.detectors.llm import family_named

            family_named(entry.family).check_available(model)
        elif not entry.offline:
            from core.detectors.checkpoints import model_folder

            architecture = "ForAudioClassification" if name == "audio-classifier" else ""
            model_folder(model, f"a {name} checkpoint", entry.model_types, architecture)
    except WrongModelType as exc:
        raise with_hint(exc) from exc


def make_detector(name: str, **opts: Any) -> Detector:
    if name not in DETECTORS:
        raise LabError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    try:
        return DETECTORS[name](**opts)
    except WrongModelType as exc:
        raise with_hint(exc) from exc
