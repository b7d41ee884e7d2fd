"""The log-odds contract every stage shares: p(speech) = sigmoid(logit), decision `logit > threshold`.

Why one module: scoring writes `p_speech`, training reports dev accuracy, and every analysis
page decides speech vs non-speech; a second copy of either rule would let two pages disagree
about the same clip.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Probability from log-odds (tanh form: no overflow warnings at large |x|)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def correct(labels: np.ndarray, logits: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Per-clip correctness of the decision `logit > threshold` (speech)."""
    return (np.asarray(logits) > threshold) == (np.asarray(labels) == "speech")
