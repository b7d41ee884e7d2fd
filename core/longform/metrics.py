"""Detection error the field's way: miss and false alarm over reference speech, with a collar.

For one recording, with R the reference speech (union of turns), H the hypothesis and U the
evaluated time (the recording, minus a collar of `collar`/2 seconds on each side of the start
and end of every reference turn (each speaker's, so a turn inside another's speech gets one too), minus overlapped speech when `skip_overlap`):

    miss = |R ∩ ¬H ∩ U|,  false alarm = |H ∩ ¬R ∩ U|,  total = |R ∩ U|
    detection error rate = (miss + false alarm) / total
    precision = |R ∩ H ∩ U| / |H ∩ U|,  recall = |R ∩ H ∩ U| / |R ∩ U|

— the definitions of pyannote.metrics' DetectionErrorRate, DetectionPrecision and
DetectionRecall (collar = total width, half each side). Computed exactly on the elementary
intervals between all boundaries (sorted once, `searchsorted`), so no frame grid rounds them;
`tests/test_longform.py::test_detection_metrics_equal_pyannote_metrics` checks them against
pyannote.metrics on random references and hypotheses. Pooled figures add the components over
recordings (pyannote's `abs(metric)`), not the per-recording rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.longform.segments import overlap_regions, union


@dataclass(frozen=True)
class Detection:
    """Components in seconds; rates follow from them (and add over recordings)."""

    miss: float
    false_alarm: float
    total: float  # evaluated reference speech
    correct: float  # evaluated reference speech the hypothesis also says is speech
    hypothesis: float  # evaluated hypothesis speech

    def __add__(self, other: Detection) -> Detection:
        return Detection(*(a + b for a, b in zip(self.astuple(), other.astuple())))

    def astuple(self) -> tuple[float, ...]:
        return (self.miss, self.false_alarm, self.total, self.correct, self.hypothesis)

    @property
    def error_rate(self) -> float:
        if self.total > 0:
            return (self.miss + self.false_alarm) / self.total
        return 0.0 if self.false_alarm == 0 else float("inf")

    @property
    def precision(self) -> float:
        return self.correct / self.hypothesis if self.hypothesis > 0 else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.total if self.total > 0 else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _inside(points: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Which points lie inside any of the disjoint sorted `segments` [start, end)."""
    if not len(segments):
        return np.zeros(len(points), bool)
    i = np.searchsorted(segments[:, 0], points, side="right") - 1
    return (i >= 0) & (points < segments[np.maximum(i, 0), 1])


def detection(reference: np.ndarray | list[np.ndarray], hypothesis: np.ndarray, duration: float | None = None,
              collar: float = 0.0, skip_overlap: bool = False) -> Detection:  # fmt: skip
    """Miss, false alarm and friends for one recording.

    `reference`: speech segments (n, 2), or a list of per-speaker turns (needed for
    `skip_overlap`); `hypothesis`: speech segments; `duration`: the recording's length (default:
    the last boundary — pyannote's default extent)."""
    turns = reference if isinstance(reference, list) else [np.asarray(reference, float).reshape(-1, 2)]
    ref = union(np.concatenate(turns) if turns else np.zeros((0, 2)))
    hyp = union(hypothesis)
    bounds = np.concatenate([ref.ravel(), hyp.ravel(), [0.0]])
    end = float(bounds.max()) if duration is None else float(duration)
    removed = [np.zeros((0, 2))]
    if collar > 0 and len(ref):
        b = np.concatenate([np.asarray(t, float).ravel() for t in turns])  # every turn's ends, as pyannote
        removed.append(np.column_stack([b - collar / 2, b + collar / 2]))
    if skip_overlap:
        removed.append(overlap_regions(turns))
    removed = union(np.concatenate(removed))
    cuts = np.unique(np.clip(np.concatenate([bounds, removed.ravel(), [end]]), 0.0, end))
    mids, widths = (cuts[:-1] + cuts[1:]) / 2, np.diff(cuts)
    keep = ~_inside(mids, removed)
    r, h = _inside(mids, ref) & keep, _inside(mids, hyp) & keep
    return Detection(
        miss=float(widths[r & ~h].sum()),
        false_alarm=float(widths[h & ~r].sum()),
        total=float(widths[r].sum()),
        correct=float(widths[r & h].sum()),
        hypothesis=float(widths[h].sum()),
    )
