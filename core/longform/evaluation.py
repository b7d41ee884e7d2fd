"""Long-form results read the field's way, with honest uncertainty: pooled and per-recording detection
error, precision, recall and F1 of speech time, intervals clustered by recording (or by the groups
that link recordings), event-level figures, and the paired comparison of two detectors.

Intervals: the pooled detection error rate is a ratio, Σ(miss + false alarm) / Σ reference speech,
so recordings (or units of recordings sharing a speaker) are the clusters and the interval is the
delta-method CR1 t interval of `core.analysis.stats.clustered_ratio_ci`; precision and recall are
ratios too (over hypothesis and reference speech). Two detectors on the same recordings and the
same reference share the denominator, so their difference in error rate is Σ(e_A − e_B) / Σ total
with the same interval — the long-form twin of Compare's paired clip difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import LabError
from core.longform.metrics import Detection, detection
from core.longform.postprocess import Binarize, binarize
from core.longform.segments import union
from core.longform.tuning import Curve

CLUSTERS = ("recording", "group")


def hypotheses(curves: dict[str, Curve], rule: Binarize) -> dict[str, np.ndarray]:
    """Speech segments per recording under `rule`."""
    return {rec: binarize(c.values, c.step, rule, duration=c.duration) for rec, c in curves.items()}


def per_recording(lf, hyp: dict[str, np.ndarray], collar: float = 0.0, skip_overlap: bool = False) -> pd.DataFrame:
    """One row per recording of `hyp`: detection components (seconds) and rates."""
    rows = []
    for rec, h in hyp.items():
        d = detection(lf.reference(rec), h, lf.duration(rec), collar=collar, skip_overlap=skip_overlap)
        row = lf.row(rec)
        rows.append({"recording_id": rec, "part": row["part"], "groups": row["groups"], "duration_s": lf.duration(rec),
                     **dict(zip(("miss", "false_alarm", "total", "correct", "hypothesis"), d.astuple())),
                     "error_rate": d.error_rate, "precision": d.precision, "recall": d.recall, "f1": d.f1})  # fmt: skip
    return pd.DataFrame(rows)


def clusters(per: pd.DataFrame, by: str = "recording") -> np.ndarray:
    """Cluster id per row: the recording, or the unit of recordings linked by a shared group."""
    if by == "recording":
        return per["recording_id"].to_numpy()
    if by != "group":
        raise LabError(f"cluster by one of {', '.join(CLUSTERS)}, not {by!r}")
    from core.longform.dataset import recording_units

    units = recording_units(
        {r: [g for g in str(gs).split(";") if g] for r, gs in zip(per["recording_id"], per["groups"])}
    )
    return per["recording_id"].map(units).to_numpy()


@dataclass(frozen=True)
class Summary:
    """Pooled figures with 95% clustered intervals (lo, hi)."""

    detection: Detection
    error_rate: tuple[float, float, float]
    precision: tuple[float, float, float]
    recall: tuple[float, float, float]
    f1: float
    n_recordings: int
    n_clusters: int
    miss_rate: float
    false_alarm_rate: float


def summarise(per: pd.DataFrame, by: str = "recording") -> Summary:
    from core.analysis.stats import clustered_ratio_ci

    if per.empty:
        raise LabError("no recordings to summarise")
    g = clusters(per, by)
    d = Detection(*(float(per[c].sum()) for c in ("miss", "false_alarm", "total", "correct", "hypothesis")))
    err = clustered_ratio_ci(per["miss"] + per["false_alarm"], per["total"], g)
    prec = clustered_ratio_ci(per["correct"], per["hypothesis"], g)
    rec = clustered_ratio_ci(per["correct"], per["total"], g)
    total = d.total if d.total > 0 else float("nan")
    return Summary(d, err, prec, rec, d.f1, len(per), len(set(g)), d.miss / total, d.false_alarm / total)


@dataclass(frozen=True)
class PairedDiff:
    diff: float  # error rate A − B (negative: A makes fewer errors)
    lo: float
    hi: float
    n_recordings: int
    n_clusters: int

    def verdict(self, a: str = "A", b: str = "B") -> str:
        if not np.isfinite(self.lo):
            return f"too few clusters ({self.n_clusters}) for an interval"
        if self.hi < 0:
            return f"{a} makes fewer detection errors than {b} (interval below 0)"
        if self.lo > 0:
            return f"{b} makes fewer detection errors than {a} (interval above 0)"
        return f"no difference shown: the interval [{self.lo:+.3f}, {self.hi:+.3f}] includes 0"


def paired_difference(per_a: pd.DataFrame, per_b: pd.DataFrame, by: str = "recording") -> PairedDiff:
    """Error rate A − B over the recordings both scored, with a clustered interval."""
    from core.analysis.stats import clustered_ratio_ci

    m = per_a.merge(per_b, on="recording_id", suffixes=("_a", "_b"))
    if m.empty:
        raise LabError("the two results share no recording: score the same long-form set and part")
    if not np.allclose(m["total_a"], m["total_b"], atol=1e-6):
        raise LabError("the two results used different references, collars or overlap settings")
    z = (m["miss_a"] + m["false_alarm_a"]) - (m["miss_b"] + m["false_alarm_b"])
    g = clusters(m.rename(columns={"groups_a": "groups"}), by)
    est, lo, hi = clustered_ratio_ci(z, m["total_a"], g)
    return PairedDiff(est, lo, hi, len(m), len(set(g)))


def events(reference: np.ndarray, hypothesis: np.ndarray) -> pd.DataFrame:
    """One row per reference speech region: detected or not, in how many hypothesis pieces (split),
    whether a hypothesis segment spans it and another region (merged), and the onset and offset
    errors (seconds, hypothesis − reference) of the first and last overlapping hypothesis segment."""
    ref, hyp = union(reference), union(hypothesis)
    rows = []
    for a, b in ref:
        hit = np.flatnonzero((hyp[:, 0] < b) & (hyp[:, 1] > a)) if len(hyp) else np.zeros(0, int)
        merged = False
        for j in hit:
            merged |= int(((ref[:, 0] < hyp[j, 1]) & (ref[:, 1] > hyp[j, 0])).sum()) > 1
        rows.append({"start": a, "end": b, "detected": bool(len(hit)), "pieces": len(hit), "merged": merged,
                     "onset_error": float(hyp[hit[0], 0] - a) if len(hit) else np.nan,
                     "offset_error": float(hyp[hit[-1], 1] - b) if len(hit) else np.nan})  # fmt: skip
    return pd.DataFrame(rows, columns=["start", "end", "detected", "pieces", "merged", "onset_error", "offset_error"])


def event_summary(ev: pd.DataFrame) -> dict[str, float]:
    """Share of regions detected, split and merged; median absolute onset and offset errors."""
    if ev.empty:
        return {"regions": 0}
    det = ev[ev["detected"]]
    return {"regions": len(ev), "detected": float(ev["detected"].mean()), "split": float((ev["pieces"] > 1).mean()),
            "merged": float(ev["merged"].mean()),
            "median_abs_onset_error_s": float(det["onset_error"].abs().median()) if len(det) else np.nan,
            "median_abs_offset_error_s": float(det["offset_error"].abs().median()) if len(det) else np.nan}  # fmt: skip


def all_events(lf, hyp: dict[str, np.ndarray]) -> pd.DataFrame:
    """`events` of every recording of `hyp`, with its id."""
    frames = [events(lf.speech(r), h).assign(recording_id=r) for r, h in hyp.items()]
    return pd.concat(frames, ignore_index=True) if frames else events(np.zeros((0, 2)), np.zeros((0, 2)))


def event_line(s: dict[str, float]) -> str:
    """The event summary in one line, for pages and the command line."""
    if not s.get("regions"):
        return "no reference speech regions"
    return (f"{s['regions']} speech regions: {s['detected']:.0%} detected, {s['split']:.0%} split, "
            f"{s['merged']:.0%} merged with a neighbour; median |onset error| {s['median_abs_onset_error_s']:.2f} s, "
            f"|offset error| {s['median_abs_offset_error_s']:.2f} s")  # fmt: skip


def misses_and_false_alarms(reference: np.ndarray, hypothesis: np.ndarray, duration: float) -> pd.DataFrame:
    """Every stretch of missed speech and of false alarm, longest first (no collar: what you hear)."""
    ref, hyp = union(reference), union(hypothesis)
    cuts = np.unique(np.r_[0.0, duration, ref.ravel(), hyp.ravel()])
    cuts = cuts[(cuts >= 0) & (cuts <= duration)]
    a, b = cuts[:-1], cuts[1:]
    mid = (a + b) / 2
    from core.longform.metrics import _inside

    in_r, in_h = _inside(mid, ref), _inside(mid, hyp)
    rows = []
    for kind, mask in (("miss", in_r & ~in_h), ("false alarm", in_h & ~in_r)):
        edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
        for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            rows.append({"kind": kind, "start": float(a[s]), "end": float(b[e - 1]), "seconds": float(b[e - 1] - a[s])})
    out = pd.DataFrame(rows, columns=["kind", "start", "end", "seconds"])
    return out.sort_values("seconds", ascending=False, kind="stable").reset_index(drop=True)
