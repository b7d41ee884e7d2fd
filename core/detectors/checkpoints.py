"""Loading a detector's checkpoint folder: what every checkpoint family shares (no download, clear refusals)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import LabError


def model_folder(model: str, what: str, model_types: tuple[str, ...] = (), architecture: str = "") -> Path:
    """The checkpoint folder `model`, refused with a message naming the problem.

    `model_types`: config.json model_type values this detector loads (empty: any); `architecture`:
    a suffix one of config.json's `architectures` must have (e.g. "ForAudioClassification").
    """
    from core.detectors.audio_llm import read_model_config

    if not str(model).strip():
        raise LabError(f"{what}: give the checkpoint folder (--model DIR)")
    path = Path(model).expanduser()
    if not path.is_dir():
        raise LabError(
            f"{what}: {model!r} is not a folder here; nothing can be downloaded, so copy the checkpoint folder "
            "to this machine and give its path"
        )
    cfg = read_model_config(path)
    kind = cfg.get("model_type", "?")
    if model_types and kind not in model_types:
        from core.detectors import detector_for_model_type

        other = detector_for_model_type(kind)
        hint = f"; score it with the {other!r} detector" if other else ""
        raise LabError(f"{path}: a {kind!r} checkpoint, not {what} ({', '.join(model_types)}){hint}")
    if architecture and not any(str(a).endswith(architecture) for a in cfg.get("architectures") or []):
        raise LabError(
            f"{path}: its config names no *{architecture} architecture ({cfg.get('architectures')}); not {what}"
        )
    return path


def device_dtype(device: str = "auto", dtype: str = "auto") -> tuple[str, Any]:
    from core.detectors.audio_llm import AudioLLMSpec, resolve_device_dtype

    return resolve_device_dtype(AudioLLMSpec(device=device, dtype=dtype))


def loaded(what: str, path: Path, load):
    """`load()` with a loading failure turned into a message naming the folder."""
    try:
        return load()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LabError(f"{path}: not a loadable {what} folder ({type(exc).__name__}: {exc})") from exc
