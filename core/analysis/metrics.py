"""Classification metrics on predictions (label speech = positive), as pure functions."""

from __future__ import annotations

import numpy as np

from core.analysis.calibration import brier, ece, mce, nll
from core.decision import correct, sigmoid

# sklearn is imported inside functions: importing this module stays cheap


def one_class_note(labels: np.ndarray, what: str) -> str:
    """A sentence for a set of clips holding one class only ("" when both are there).

    Why: with one class, accuracy is that class's recall, balanced accuracy and ROC-AUC do not
    exist, and a calibrator has nothing to separate; a report must say so rather than print a
    perfect score.
    """
    present = sorted(set(np.asarray(labels).astype(str)))
    if len(present) >= 2:
        return ""
    only = present[0] if present else "no"
    return (
        f"{what} holds {only} clips only: accuracy here is the recall of {only}, and balanced accuracy, "
        "ROC-AUC and calibration cannot be judged; add clips of the other class"
    )


def summary(
    labels: np.ndarray,
    logits: np.ndarray,
    n_bins: int = 10,
    threshold: float = 0.0,
    ranking: bool = True,
) -> dict[str, float]:
    """Accuracy, balanced accuracy, per-class recall, ranking and calibration scores of one table.

    ROC-AUC and PR-AUC (average precision, speech positive) come from scikit-learn and are NaN
    when only one class is present; ECE is reported for equal-width and equal-mass bins.
    `ranking=False` skips the AUCs (the training loop's per-step dev metrics do not need them).
    """
    labels = np.asarray(labels)
    logits = np.asarray(logits, dtype=float)
    ok = correct(labels, logits, threshold)
    speech = labels == "speech"
    rec_s = float(ok[speech].mean()) if speech.any() else float("nan")
    rec_n = float(ok[~speech].mean()) if (~speech).any() else float("nan")
    p = sigmoid(logits)
    out = {
        "accuracy": float(ok.mean()),
        "balanced_accuracy": float(np.nanmean([rec_s, rec_n])),
        "recall_speech": rec_s,
        "recall_nonspeech": rec_n,
        "ece": ece(speech, p, n_bins),
        "n": int(len(ok)),
    }
    if ranking:
        from sklearn.metrics import average_precision_score, roc_auc_score

        both = speech.any() and (~speech).any()
        out.update(
            {
                "roc_auc": float(roc_auc_score(speech, logits)) if both else float("nan"),
                "pr_auc": float(average_precision_score(speech, logits)) if both else float("nan"),
                "ece_quantile": ece(speech, p, n_bins, "quantile"),
                "mce": mce(speech, p, n_bins),
                "brier": brier(speech, p),
                "nll": nll(speech, logits),
            }
        )
    return out
