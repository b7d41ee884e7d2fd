"""Segments of time: what a reference says is speech and what a detector says it heard.

A recording's segments are an (n, 2) float array of [start, end) seconds. References arrive as
RTTM (one line per speaker turn: `SPEAKER file 1 start duration <NA> <NA> speaker <NA> <NA>`) or a
CSV of (recording, start, end, label); speech is the union of every speaker's turns, so two
people talking at once count once (and are "overlap" for metrics that skip it).

Bad input is refused with the file and line: a negative start, an empty or negative duration, a
speaker overlapping their own turn, a turn past the recording's end, an unknown recording, lines
out of time order within a recording. Written files go through a temporary file and a rename.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import LabError


class SegmentError(LabError):
    """A reference or hypothesis file is malformed; the message names file and line."""


def union(segments: np.ndarray) -> np.ndarray:
    """Merge overlapping or touching segments into disjoint ones, sorted by start."""
    return merge(segments, 0.0)


def merge(segments: np.ndarray, min_gap: float) -> np.ndarray:
    """Sorted disjoint segments, joining any two whose gap is shorter than `min_gap` (0: only
    those that overlap or touch)."""
    s = np.asarray(segments, float).reshape(-1, 2)
    if not len(s):
        return s
    s = s[np.argsort(s[:, 0], kind="stable")]
    ends = np.maximum.accumulate(s[:, 1])
    gap = s[1:, 0] - ends[:-1]
    new = np.r_[True, gap >= min_gap] if min_gap > 0 else np.r_[True, gap > 0]  # a segment that opens a region
    last = np.r_[np.flatnonzero(new)[1:] - 1, len(s) - 1]
    return np.column_stack([s[new, 0], ends[last]])


def overlap_regions(turns: list[np.ndarray]) -> np.ndarray:
    """Where two or more speakers' turns overlap (each speaker's turns merged first)."""
    bounds, steps = [], []
    for t in turns:
        u = union(t)
        bounds += [u[:, 0], u[:, 1]]
        steps += [np.ones(len(u)), -np.ones(len(u))]
    if not bounds:
        return np.zeros((0, 2))
    b, d = np.concatenate(bounds), np.concatenate(steps)
    order = np.lexsort((d, b))  # at one instant, ends (-1) before starts (+1): touching turns do not overlap
    b, count = b[order], np.cumsum(d[order])
    enter = np.flatnonzero((count >= 2) & np.r_[True, count[:-1] < 2])
    leave = np.flatnonzero((count < 2) & np.r_[False, count[:-1] >= 2])
    return np.column_stack([b[enter], b[leave]]) if len(enter) else np.zeros((0, 2))


def check_turns(rows: list[tuple], where: str, durations: dict[str, float] | None) -> None:
    """rows: (recording, speaker, start, end, line number); refuse what a reference cannot mean."""
    last: dict[str, float] = {}
    open_until: dict[tuple[str, str], float] = {}
    for rec, spk, start, end, line in rows:
        at = f"{where}:{line}"
        if not (np.isfinite(start) and np.isfinite(end)):
            raise SegmentError(f"{at}: start and duration must be numbers")
        if start < 0:
            raise SegmentError(f"{at}: negative start {start:g} s")
        if end <= start:
            raise SegmentError(f"{at}: empty or negative duration ({start:g}–{end:g} s)")
        if durations is not None:
            if rec not in durations:
                raise SegmentError(f"{at}: unknown recording {rec!r} (known: {', '.join(sorted(durations)[:5])}…)")
            if end > durations[rec] + 1e-3:
                raise SegmentError(f"{at}: turn ends at {end:g} s, past the end of {rec!r} ({durations[rec]:g} s)")
        if start < last.get(rec, -np.inf):
            raise SegmentError(f"{at}: lines are not in time order for {rec!r} (starts at {start:g} s after "
                               f"{last[rec]:g} s); sort the file by start time")  # fmt: skip
        if start < open_until.get((rec, spk), -np.inf) - 1e-9:
            raise SegmentError(f"{at}: speaker {spk!r} overlaps their own previous turn in {rec!r}")
        last[rec] = start
        open_until[(rec, spk)] = max(end, open_until.get((rec, spk), -np.inf))


def read_rttm(path: str | Path, durations: dict[str, float] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """{recording: {speaker: turns (n, 2)}} from an RTTM file; `durations` (seconds) checks ids and ends."""
    path = Path(path)
    rows = []
    for i, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        fields = raw.split()
        if not fields or fields[0].startswith((";", "#")):
            continue
        if fields[0] != "SPEAKER":
            continue  # other RTTM types (LEXEME, NOSCORE, …) say nothing about speech activity
        if len(fields) < 8:
            raise SegmentError(f"{path}:{i}: an RTTM SPEAKER line has at least 8 fields, got {len(fields)}")
        try:
            start, dur = float(fields[3]), float(fields[4])
        except ValueError:
            raise SegmentError(f"{path}:{i}: start {fields[3]!r} and duration {fields[4]!r} must be numbers") from None
        rows.append((fields[1], fields[7], start, start + dur, i))
    check_turns(rows, str(path), durations)
    out: dict[str, dict[str, list]] = {}
    for rec, spk, start, end, _ in rows:
        out.setdefault(rec, {}).setdefault(spk, []).append((start, end))
    return {rec: {spk: np.array(t, float) for spk, t in spks.items()} for rec, spks in out.items()}


def read_csv(path: str | Path, durations: dict[str, float] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """The same from a CSV with columns recording, start, end and optional label (speaker or "speech")."""
    from core.csvfiles import read_csv as read

    path = Path(path)
    table = read(path, "segments", ["recording", "start", "end"], error=SegmentError)
    label = table["label"].astype(str) if "label" in table else np.full(len(table), "speech")
    rows = []
    for i, (rec, lab, start, end) in enumerate(zip(table["recording"].astype(str), label, table["start"],
                                                   table["end"]), start=2):  # fmt: skip
        try:
            rows.append((rec, lab, float(start), float(end), i))
        except (TypeError, ValueError):
            raise SegmentError(f"{path}:{i}: start {start!r} and end {end!r} must be numbers") from None
    check_turns(rows, str(path), durations)
    out: dict[str, dict[str, list]] = {}
    for rec, spk, start, end, _ in rows:
        out.setdefault(rec, {}).setdefault(spk, []).append((start, end))
    return {rec: {spk: np.array(t, float) for spk, t in spks.items()} for rec, spks in out.items()}


def rttm_text(segments: dict[str, np.ndarray], speaker: str = "speech") -> str:
    """RTTM lines for {recording: segments} (one 'speaker' per recording, as a detector has)."""
    lines = []
    for rec in sorted(segments):
        for start, end in np.asarray(segments[rec], float).reshape(-1, 2):
            lines.append(f"SPEAKER {rec} 1 {start:.3f} {end - start:.3f} <NA> <NA> {speaker} <NA> <NA>")
    return "\n".join(lines) + ("\n" if lines else "")


def write_rttm(path: str | Path, segments: dict[str, np.ndarray], speaker: str = "speech") -> Path:
    from core import atomic

    path = Path(path)
    atomic.write_text(path, rttm_text(segments, speaker))
    return path


def segments_table(segments: dict[str, np.ndarray], label: str = "speech"):
    """(recording, start, end, label) rows for {recording: segments}: the CSV importer's own format."""
    import pandas as pd

    rows = [(rec, float(a), float(b), label) for rec in sorted(segments)
            for a, b in np.asarray(segments[rec], float).reshape(-1, 2)]  # fmt: skip
    return pd.DataFrame(rows, columns=["recording", "start", "end", "label"])


def write_csv(path: str | Path, segments: dict[str, np.ndarray], label: str = "speech") -> Path:
    from core import atomic

    return atomic.write_csv(Path(path), segments_table(segments, label))
