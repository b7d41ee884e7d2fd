"""Scoring a handful of loose clips (an upload, a microphone take) with several detectors at once.

The same `Detector.score` a split goes through, so p(speech) here is what Evaluate would write
for the clip; no table is saved.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from core.data.audio import TARGET_SR
from core.decision import sigmoid
from core.detectors import REGISTRY, make_detector
from core.errors import LabError


def offline_detectors() -> list[str]:
    """Detectors that run on this machine with nothing to download or point at."""
    return [name for name, e in REGISTRY.items() if e.offline]


def score_clips(
    clips: dict[str, np.ndarray],
    detectors: list[str],
    sr: int = TARGET_SR,
    make: Callable[[str], object] | None = None,
) -> pd.DataFrame:
    """One row per (clip, detector): log-odds of speech and p(speech).

    `make(name)` builds a detector (default `make_detector`; the page passes a cached one). A
    detector that fails is reported in its rows' `error`, so one broken model does not hide the others.
    """
    if not clips:
        raise LabError("no clips to score")
    make = make or (lambda name: make_detector(name))
    names = list(clips)
    rows = []
    for det in detectors:
        try:
            logits = np.asarray(make(det).score([clips[n] for n in names], sr), dtype=float)
            z = logits[:, 0] - logits[:, 1]
            if not np.isfinite(z).all():
                raise LabError(f"{det} returned a non-finite score")
            rows += [{"clip": n, "detector": det, "logit": float(v), "p_speech": float(sigmoid(v)), "error": ""}
                     for n, v in zip(names, z)]  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - reported per detector, the others still score
            rows += [
                {"clip": n, "detector": det, "logit": np.nan, "p_speech": np.nan, "error": str(exc)} for n in names
            ]
    return pd.DataFrame(rows, columns=["clip", "detector", "logit", "p_speech", "error"])
