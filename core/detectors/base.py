"""The one small interface every detector implements."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from core.errors import LabError


class Detector(Protocol):
    """Scores clips: returns (n, 2) logits for answer A (speech) and answer B (non-speech).

    `logit_A − logit_B` is the clip's log-odds of speech. Detectors that produce a
    probability p report (log p, log(1 − p)), which has the same log-odds.

    Optional: a detector with `reads_lazily = True` also takes, in one call, a lazy sequence
    of clips with their `lengths` (`core.evaluate.DiskClips`) and an `on_batch(scored so
    far)` callback; `core.evaluate` then streams a whole split to it from disk. One with a
    `max_seconds` takes clips up to that length only; `core.evaluate` refuses longer ones,
    naming them, before any work.
    """

    name: str
    prompt: str
    adapter: str

    def score(self, clips: list[np.ndarray], sr: int) -> np.ndarray: ...

    def info(self) -> dict[str, Any]: ...


def check_clip_lengths(
    names: list[str], seconds, max_seconds: float | None, who: str, min_seconds: float | None = None
) -> None:
    """Refuse clips longer than `max_seconds` (a model's fixed audio window) or shorter than
    `min_seconds` (too short to give its encoder a single audio token), naming them.

    Why: such a model's encoder has a fixed number of positions (Qwen2-Audio: 30 s); a longer
    clip either fails deep inside it or, through its own processor, is cut silently, so the
    score would describe part of the clip only. A clip of 20 ms or less gives Qwen2-Audio's
    encoder two mel frames and no audio token at all: it would be scored on the text alone, the
    same for silence, noise and a voice.
    """
    seconds = np.asarray(seconds, dtype=float)
    if min_seconds is not None:
        short = np.flatnonzero(seconds < min_seconds - 1e-9)
        if short.size:
            shown = ", ".join(f"{names[i]} ({seconds[i] * 1000:.0f} ms)" for i in short[:5])
            raise LabError(
                f"{short.size} clip(s) too short for {who} to hear: under {min_seconds * 1000:.1f} ms its encoder "
                f"gets no audio token, so the score would not depend on the audio: {shown}"
                + (", …" if short.size > 5 else "")
                + ". Leave them out (tag them and use --exclude-tags) or use longer clips"
            )
    if max_seconds is None:
        return
    long = np.flatnonzero(seconds > max_seconds + 1e-9)
    if long.size:
        shown = ", ".join(f"{names[i]} ({seconds[i]:.1f} s)" for i in long[:5]) + (", …" if long.size > 5 else "")
        raise LabError(
            f"{long.size} clip(s) longer than the {max_seconds:g} s {who} takes: {shown}. Cut long recordings "
            f"into pieces (import with --cut-seconds {max_seconds:g}, or 'Cut clips longer than' on the Data page) "
            "or tag these clips and leave them out (--exclude-tags)"
        )


def probability_logits(p: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """(log p, log(1 − p)) with p clipped to [eps, 1 − eps], so the log-odds stay finite."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.stack([np.log(p), np.log1p(-p)], axis=1)


def top_fraction_mean(frame_probs: np.ndarray, fraction: float = 0.2) -> float:
    """Mean of the highest `fraction` of frame probabilities (at least one frame).

    Why: a clip counts as speech if part of it is clearly speech; the top-20% mean is as
    sensitive as the maximum to short speech in a longer clip but not fooled by one spike.
    """
    if len(frame_probs) == 0:
        return 0.0
    k = max(1, int(np.ceil(fraction * len(frame_probs))))
    return float(np.sort(frame_probs)[-k:].mean())
