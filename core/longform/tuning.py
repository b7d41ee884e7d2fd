"""Post-processing tuned on dev: the onset/offset rule that does best on the dev recordings, by an
objective the user picks, then applied to test unchanged (as clip thresholds are).

`tune` sees only what it is given — the dev curves and dev references — so nothing about test can
leak into the choice; `tests/test_longform.py` proves it by changing test references and
getting the same rule. Objectives (all pooled over recordings, pyannote's way):
    "error_rate"  detection error rate (miss + false alarm) / reference speech, lower is better
    "f1"          F1 of speech time, higher is better
    "miss_at_fa"  miss rate among rules whose false-alarm rate (false alarm / reference speech)
                  is within `fa_budget`, lower is better
A grid search: the binarisation of one hour at 100 frames/s takes milliseconds, so a few
hundred candidate rules cost seconds.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict
from typing import NamedTuple

import numpy as np

from core.errors import LabError
from core.longform.metrics import Detection, detection
from core.longform.postprocess import Binarize, binarize

OBJECTIVES = ("error_rate", "f1", "miss_at_fa")
DEFAULT_GRID = {
    "onset": [0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
    "offset": [0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
    "min_speech": [0.0, 0.1, 0.25],
    "min_silence": [0.0, 0.1, 0.25],
}


class Curve(NamedTuple):
    """A recording's speech probabilities: one value per `step` seconds, and its length."""

    values: np.ndarray
    step: float
    duration: float


def evaluate(rule: Binarize, curves: dict[str, Curve], references: dict[str, list[np.ndarray]],
             collar: float = 0.0, skip_overlap: bool = False) -> Detection:  # fmt: skip
    """Pooled detection components of `rule` over the recordings of `curves`."""
    missing = sorted(set(curves) - set(references))
    if missing:
        raise LabError(f"no reference for recording(s) {', '.join(missing[:5])}")
    total = Detection(0.0, 0.0, 0.0, 0.0, 0.0)
    for rec, c in curves.items():
        hyp = binarize(c.values, c.step, rule, duration=c.duration)
        total = total + detection(references[rec], hyp, c.duration, collar=collar, skip_overlap=skip_overlap)
    return total


def _score(d: Detection, objective: str, fa_budget: float) -> float:
    """Lower is better."""
    if objective == "error_rate":
        return d.error_rate
    if objective == "f1":
        return -d.f1
    fa = d.false_alarm / d.total if d.total > 0 else np.inf
    return d.miss / d.total if fa <= fa_budget and d.total > 0 else np.inf


def tune(curves: dict[str, Curve], references: dict[str, list[np.ndarray]], objective: str = "error_rate",
         grid: dict[str, list[float]] | None = None, collar: float = 0.0, skip_overlap: bool = False,
         fa_budget: float = 0.05) -> tuple[Binarize, list[dict]]:  # fmt: skip
    """The best rule on these (dev) recordings and every candidate's figures, best first.

    Ties go to the earlier candidate of the grid (its order is the grid's, onset first), so the
    choice is deterministic."""
    if objective not in OBJECTIVES:
        raise LabError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if not curves:
        raise LabError("no dev recordings to tune on")
    grid = {**DEFAULT_GRID, **(grid or {})}
    unknown = set(grid) - set(Binarize.__dataclass_fields__)
    if unknown:
        raise LabError(f"unknown post-processing setting(s) {sorted(unknown)}")
    names = list(grid)
    rows = []
    for values in itertools.product(*(grid[n] for n in names)):
        setting = dict(zip(names, values))
        if setting.get("offset", 0.5) > setting.get("onset", 0.5):
            continue  # hysteresis needs offset ≤ onset
        rule = Binarize(**setting)
        d = evaluate(rule, curves, references, collar, skip_overlap)
        rows.append({**asdict(rule), "error_rate": d.error_rate, "precision": d.precision, "recall": d.recall,
                     "f1": d.f1, "miss": d.miss, "false_alarm": d.false_alarm, "total": d.total,
                     "_score": _score(d, objective, fa_budget)})  # fmt: skip
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["_score"], i))
    rows = [rows[i] for i in order]
    if not np.isfinite(rows[0]["_score"]):
        raise LabError(f"no rule keeps the false-alarm rate within {fa_budget:g} on these recordings")
    best = Binarize(**{k: rows[0][k] for k in Binarize.__dataclass_fields__})
    for r in rows:
        r.pop("_score")
    return best, rows
