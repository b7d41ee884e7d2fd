"""The log-odds contract every stage shares: p(speech) = sigmoid(logit), decision `logit / T > threshold`.

Why one module: scoring writes `p_speech`, training reports dev accuracy, and every analysis
page decides speech vs non-speech; a second copy of either rule would let two pages disagree
about the same clip.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Probability from log-odds, accurate in both tails (scipy's expit: sigmoid(-40) is 4.2e-18,
    not 0 as the tanh form gave; no overflow warnings at large |x|)."""
    from scipy.special import expit

    return expit(np.asarray(x, dtype=np.float64))


def decide(logits: np.ndarray, threshold: float = 0.0, temperature: float = 1.0) -> np.ndarray:
    """Speech where `logit / T > threshold`: the one decision rule of every page and command.

    Computed exactly as written (divide, then compare), so a clip on the boundary is decided
    the same way wherever it is decided; `ThresholdIndex` reproduces it bit for bit.
    """
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"the temperature must be a positive number, got {temperature!r}")
    z = np.asarray(logits, dtype=np.float64)
    return (z / temperature if temperature != 1.0 else z) > threshold


def correct(labels: np.ndarray, logits: np.ndarray, threshold: float = 0.0, temperature: float = 1.0) -> np.ndarray:
    """Per-clip correctness of the decision `logit / T > threshold` (speech)."""
    return decide(logits, threshold, temperature) == (np.asarray(labels) == "speech")
