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


def roc_curve(index: ThresholdIndex, temperature: float = 1.0) -> dict[str, np.ndarray]:
    """False- and true-positive rates at every cut point (the ROC curve the operating point sits on)."""
    cuts = np.unique(np.concatenate([index.pos, index.neg])) / temperature
    grid = np.concatenate([[-np.inf], cuts, [np.inf]])
    m = index.metrics(grid, temperature)
    return {"threshold": grid, "fpr": m["fpr"], "tpr": m["recall_speech"]}


def dev_to_test(
    dev_labels: np.ndarray,
    dev_logits: np.ndarray,
    test_labels: np.ndarray,
    test_logits: np.ndarray,
    temperature: float = 1.0,
) -> list[dict[str, float]]:
    """Thresholds chosen on dev (default 0, max balanced accuracy, Youden's J) and what each does on test.

    Also reports the threshold that would be best *on test* — the one the seed reported — so the
    optimism of choosing on the data you judge on is visible next to the honest figure.
    """
    dev = ThresholdIndex.build(np.asarray(dev_labels) == "speech", np.asarray(dev_logits, float) / temperature)
    test = ThresholdIndex.build(np.asarray(test_labels) == "speech", np.asarray(test_logits, float) / temperature)
    choices = [
        ("default (log-odds 0)", "-", 0.0),
        ("max balanced accuracy", "dev", dev.best("balanced_accuracy")),
        ("Youden's J", "dev", dev.best("youden_j")),
        ("max balanced accuracy", "test (optimistic)", test.best("balanced_accuracy")),
    ]
    rows = []
    for rule, chosen_on, t in choices:
        d, s = dev.metrics(t), test.metrics(t)
        rows.append(
            {
                "rule": rule,
                "chosen on": chosen_on,
                "threshold (log-odds)": t,
                "dev balanced accuracy": float(d["balanced_accuracy"]),
                "test balanced accuracy": float(s["balanced_accuracy"]),
                "test accuracy": float(s["accuracy"]),
            }
        )
    return rows
