"""The audio-LLM families the lab knows, by name: the one place a family is chosen.

Adding a family = one module with a `Family` (or a `ChatFamily` described as data) and one
line in `FAMILIES` below; `register` does the same at run time (tests, plug-ins).
"""

from __future__ import annotations

from pathlib import Path

from core.detectors.checkpoints import WrongModelType, read_model_config
from core.detectors.llm.audio_flamingo3 import AUDIO_FLAMINGO3
from core.detectors.llm.family import AudioLLMSpec, Family
from core.detectors.llm.qwen2_audio import QWEN2_AUDIO
from core.detectors.llm.qwen25_omni import QWEN25_OMNI
from core.errors import LabError

FAMILIES: dict[str, Family] = {f.name: f for f in (QWEN2_AUDIO, QWEN25_OMNI, AUDIO_FLAMINGO3)}


def register(family: Family) -> None:
    """Make `family` known by its name (replacing one of the same name)."""
    FAMILIES[family.name] = family


def family_named(name: str) -> Family:
    if name not in FAMILIES:
        raise LabError(f"unknown audio-LLM family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def family_of_type(model_type: str) -> Family | None:
    """The family that loads checkpoints of config.json `model_type`, or None."""
    return next((f for f in FAMILIES.values() if model_type in f.model_types), None)


def family_for(spec: AudioLLMSpec) -> Family:
    """The spec's family: named, else read from the model folder's model_type; an id (not a
    folder) is a Qwen2-Audio checkpoint in the local Hugging Face cache."""
    if spec.family:
        return family_named(spec.family)
    folder = Path(spec.model).expanduser()
    if not folder.is_dir():
        return QWEN2_AUDIO
    kind = str(read_model_config(folder).get("model_type", "?"))
    family = family_of_type(kind)
    if family is None:
        known = ", ".join(t for f in FAMILIES.values() for t in f.model_types)
        raise WrongModelType(f"{folder}: a {kind!r} model, not an audio LLM the lab knows ({known})", kind)
    return family


def with_hint(exc: WrongModelType) -> WrongModelType:
    """`exc` saying which family's detector loads the checkpoint it refused, when one does."""
    other = family_of_type(exc.model_type)
    if other is None:
        return exc
    return WrongModelType(f"{exc}; score it with the {other.detector!r} detector", exc.model_type)


def load(family: Family, spec: AudioLLMSpec):
    """`family.load(spec)`, a checkpoint of another family refused with the detector that loads it."""
    try:
        return family.load(spec)
    except WrongModelType as exc:
        raise with_hint(exc) from exc


def trainable_model_types() -> tuple[str, ...]:
    """Checkpoint kinds a LoRA run can start from: every family's."""
    return tuple(t for f in FAMILIES.values() for t in f.model_types)
