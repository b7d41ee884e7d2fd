"""Decision thresholds on log-odds: sort once, then every threshold is a `searchsorted`.

Why: the Thresholds page recomputes the confusion matrix on every slider move, and must stay
fluid at 10^6 predictions; a full pass per move would not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ThresholdIndex:
    """Sorted log-odds of the speech and non-speech clips of one predictions table."""

    pos: np.ndarray
    neg: np.ndarray

    @classmethod
    def build(cls, is_speech: np.ndarray, logits: np.ndarray) -> ThresholdIndex:
        is_speech = np.asarray(is_speech, bool)
        logits = np.asarray(logits, float)
        return cls(np.sort(logits[is_speech]), np.sort(logits[~is_speech]))

    def confusion(self, thresholds: np.ndarray | float, temperature: float = 1.0) -> dict[str, np.ndarray]:
        """tp, fn, tn, fp for the decision `logit / temperature > threshold` (vectorised)."""
        t = np.asarray(thresholds, float) * temperature  # logit / T > t  ⇔  logit > t · T (T > 0)
        tp = len(self.pos) - np.searchsorted(self.pos, t, side="right")
        fp = len(self.neg) - np.searchsorted(self.neg, t, side="right")
        return {"tp": tp, "fn": len(self.pos) - tp, "tn": len(self.neg) - fp, "fp": fp}

    def metrics(self, thresholds: np.ndarray | float, temperature: float = 1.0) -> dict[str, np.ndarray]:
        c = self.confusion(thresholds, temperature)
        n_pos, n_neg = max(len(self.pos), 1), max(len(self.neg), 1)
        rec_s, rec_n = c["tp"] / n_pos, c["tn"] / n_neg
        return {
            **c,
            "accuracy": (c["tp"] + c["tn"]) / max(len(self.pos) + len(self.neg), 1),
            "recall_speech": rec_s,
            "recall_nonspeech": rec_n,
            "balanced_accuracy": (rec_s + rec_n) / 2,
            "youden_j": rec_s + rec_n - 1,
            "fpr": 1 - rec_n,
        }

    def best(self, criterion: str = "balanced_accuracy") -> float:
        """The threshold maximising `criterion` (balanced_accuracy or youden_j) over all cut points."""
        cuts = np.unique(np.concatenate([self.pos, self.neg]))
        candidates = np.concatenate([[cuts[0] - 1.0], (cuts[:-1] + cuts[1:]) / 2, [cuts[-1] + 1.0]])
        return float(candidates[int(np.argmax(self.metrics(candidates)[criterion]))])
