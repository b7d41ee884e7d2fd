"""Optimiser backends for prompt search, behind `base.Proposer`; adding one is a module plus an entry here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.errors import LabError
from core.prompts.proposers.base import Proposer


def _builtin(**_: Any) -> Proposer:
    from core.prompts.proposers.builtin import BuiltinProposer

    return BuiltinProposer()


def _causal_lm(model: str = "", load_in_4bit: bool = False, **_: Any) -> Proposer:
    from core.prompts.proposers.causal_lm import CausalLMProposer

    return CausalLMProposer(model, load_in_4bit=load_in_4bit)


def _audio_llm_text(model: str = "", adapter: str = "", **_: Any) -> Proposer:
    from core.prompts.proposers.audio_llm_text import AudioLLMTextProposer

    return AudioLLMTextProposer(model, adapter)


PROPOSERS: dict[str, Callable[..., Proposer]] = {
    "builtin": _builtin,
    "causal-lm": _causal_lm,
    "audio-llm-text": _audio_llm_text,
}
DESCRIPTIONS = {
    "builtin": "offline, no model: seeded edits of the best prompts (phrase bank, answer words, order, length)",
    "causal-lm": "a local instruction-tuned causal LM (folder or cached id, e.g. Qwen2.5-3B-Instruct)",
    "audio-llm-text": "the audio LLM's own language model, asked in text only",
}


def check(name: str, model: str = "") -> None:
    """Refuse before a job starts what a backend could only fail on later (unknown name, not a causal LM)."""
    make = PROPOSERS.get(name)
    if make is None:
        raise LabError(f"unknown optimiser {name!r}; choose from {', '.join(PROPOSERS)}")
    if name == "causal-lm":
        from core.prompts.proposers.causal_lm import require_causal_lm

        require_causal_lm(model)
    if name == "audio-llm-text" and model:
        from core.detectors.checkpoints import require_available

        require_available(model)


def make_proposer(name: str, **opts: Any) -> Proposer:
    """A backend by name; each checks its own model as it loads it."""
    if name not in PROPOSERS:
        raise LabError(f"unknown optimiser {name!r}; choose from {', '.join(PROPOSERS)}")
    return PROPOSERS[name](**opts)
