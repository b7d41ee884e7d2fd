"""Classification metrics on predictions (label speech = positive), as pure functions."""

from __future__ import annotations

import numpy as np

from core.calibration import ece


def correct(labels: np.ndarray, logits: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Per-clip correctness of the decision `logit > threshold` (speech)."""
    return (np.asarray(logits) > threshold) == (np.asarray(labels) == "speech")


def summary(labels: np.ndarray, logits: np.ndarray, n_bins: int = 10) -> dict[str, float]:
    """Accuracy, balanced accuracy, per-class recall and ECE (equal-width bins) of one table."""
    labels = np.asarray(labels)
    logits = np.asarray(logits, dtype=float)
    ok = correct(labels, logits)
    speech = labels == "speech"
    rec_s = float(ok[speech].mean()) if speech.any() else float("nan")
    rec_n = float(ok[~speech].mean()) if (~speech).any() else float("nan")
    p = 1 / (1 + np.exp(-logits))
    return {
        "accuracy": float(ok.mean()),
        "balanced_accuracy": float(np.nanmean([rec_s, rec_n])),
        "recall_speech": rec_s,
        "recall_nonspeech": rec_n,
        "ece": ece(speech, p, n_bins),
        "n": int(len(ok)),
    }
