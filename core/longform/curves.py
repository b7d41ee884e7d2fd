"""Speech-probability curves over long recordings, from any detector, stored like predictions tables.

Two ways to get a curve:
- **native frames**: a detector with `frame_curve(x, sr)` (Silero: one value per 32 ms chunk, its
  recurrent state carried through the whole recording, as `get_speech_timestamps` does; WebRTC:
  one value per 30 ms frame, the mean decision of modes 0–3) scores the recording once.
- **sliding windows**: every clip detector (audio LLMs, the lab base model, Whisper no-speech,
  classifiers, CLAP) scores windows of `window` seconds every `hop` seconds, each exactly as if it
  were a clip (`detector.score`, the same call the clip path makes: `tests/test_longform.py`
  checks the two agree to 1e-4 in fp32). The last window is moved back to end at the recording's
  end, so every window is full length (a recording shorter than the window is one window).
  The curve has one value per hop: frame k, [k·hop, (k+1)·hop), gets the mean probability of
  the windows that contain its centre (pyannote.audio's overlap-add of window scores).

Shared encoder work for audio LLMs: none of the lab's families can reuse the encoder output of
one window for the next, exactly. Qwen2-Audio, Qwen2.5-Omni and Audio Flamingo 3 use Whisper
encoders: bidirectional attention over the whole window (every output frame depends on every
input frame, so a frame's encoding changes when the window around it moves), positions counted
from the window's start, and a log-mel floor set by the window's own loudest frame. Encoding the
recording once and slicing would score something other than the clip the model was trained and
calibrated on, so the lab scores each window and says so (`ENCODER_SHARING`, recorded in the
table's sidecar). What is shared: batching of windows of equal length (no padding) and the
audio, read once per recording and sliced without copies.

A curve table has one row per window (or native frame): recording_id, start, end, logit_A,
logit_B, logit (= logit_A − logit_B) and p_speech, with a sidecar in the Parquet footer (and a
.json copy): the long-form set, parts, detector and its info, window, hop, step, timing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import LabError
from core.longform.tuning import Curve

# pyarrow is imported inside functions: importing this module stays cheap

SR = 16_000
COLUMNS = ["recording_id", "start", "end", "logit_A", "logit_B", "logit", "p_speech"]
META_KEY = b"lab_sidecar"
ENCODER_SHARING = (
    "none: Whisper-style audio encoders attend over the whole window, count positions from its start and "
    "set the log-mel floor from its loudest frame, so a window's encoding is not a slice of its neighbour's; "
    "each window is scored as the clip it is"
)


class CurveError(LabError):
    """A curve table or its settings are wrong; the message names the file or setting."""


def curves_dir() -> Path:
    from core.paths import results_root

    return results_root() / "curves"


# ---------------------------------------------------------------- windows and frames


def window_bounds(duration: float, window: float, hop: float) -> np.ndarray:
    """(n, 2) window [start, end) seconds covering [0, duration); all `window` long (the last moved
    back to end at the end) unless the recording is shorter than one window."""
    if not (np.isfinite(window) and window > 0 and np.isfinite(hop) and hop > 0):
        raise CurveError(f"window ({window}) and hop ({hop}) must be positive seconds")
    if hop > window + 1e-9:
        raise CurveError(f"a hop of {hop:g} s longer than the {window:g} s window would leave audio unscored")
    if duration <= window:
        return np.array([[0.0, duration]])
    starts = np.arange(0.0, duration - window + 1e-9, hop)
    if starts[-1] + window < duration - 1e-9:
        starts = np.r_[starts, duration - window]
    return np.column_stack([starts, starts + window])


def frames_from_windows(bounds: np.ndarray, p: np.ndarray, step: float, duration: float) -> np.ndarray:
    """One value per `step` seconds: the mean of the windows containing each frame's centre (a frame
    no window contains — past the last centre — takes its predecessor's value)."""
    n = max(1, int(np.ceil(duration / step - 1e-9)))
    first = np.ceil(bounds[:, 0] / step - 0.5 - 1e-9).astype(int).clip(0, n)
    stop = np.ceil(bounds[:, 1] / step - 0.5 - 1e-9).astype(int).clip(0, n)  # centres c < end
    total, count = np.zeros(n + 1), np.zeros(n + 1)
    np.add.at(total, first, p)
    np.add.at(total, stop, -p)
    np.add.at(count, first, 1)
    np.add.at(count, stop, -1)
    total, count = np.cumsum(total)[:n], np.cumsum(count)[:n]
    out = np.full(n, np.nan)
    ok = count > 0.5
    out[ok] = total[ok] / count[ok]
    if not ok.all():  # carry the last covered value forward (and the first back)
        idx = np.where(ok, np.arange(n), -1)
        idx = np.maximum.accumulate(idx)
        first_ok = int(np.argmax(ok)) if ok.any() else 0
        out = out[np.where(idx < 0, first_ok, idx)]
    return out


# ---------------------------------------------------------------- scoring


def _windows_of(x: np.ndarray, bounds: np.ndarray) -> list[np.ndarray]:
    idx = np.round(bounds * SR).astype(int)
    return [x[a:b] for a, b in idx]  # views: no copy of the recording


def score_recording(detector, x: np.ndarray, window: float | None = None, hop: float | None = None,
                    batch: int = 64, on_batch: Callable[[float], None] | None = None) -> pd.DataFrame:  # fmt: skip
    """One recording's rows: native frames when `window` is None and the detector has them, else windows."""
    from core.detectors.base import probability_logits

    duration = len(x) / SR
    if window is None:
        if not hasattr(detector, "frame_curve"):
            raise CurveError(f"{detector.name} has no native frames: give a window and hop to slide it")
        p, step = detector.frame_curve(x, SR, on_batch)
        starts = np.arange(len(p)) * step
        bounds = np.column_stack([starts, np.minimum(starts + step, duration)])
        logits = probability_logits(p)
    else:
        bounds = window_bounds(duration, window, hop if hop is not None else window)
        _check_limits(detector, bounds)
        clips = _windows_of(x, bounds)
        n = len(clips)
        if getattr(detector, "reads_lazily", False):
            # every window in one call, as the clip path does: its workers prepare batches ahead and the
            # device never waits between chunks (chunked calls ran 2-4x slower on an H100)
            report = (lambda done: on_batch(done / n)) if on_batch else None
            logits = np.asarray(detector.score(clips, SR, on_batch=report), float)
        else:
            logits = np.full((n, 2), np.nan)
            for a in range(0, n, batch):
                logits[a : a + batch] = detector.score(clips[a : a + batch], SR)
                if on_batch:
                    on_batch(min(1.0, (a + batch) / n))
        p = None
    logit = logits[:, 0] - logits[:, 1]
    if not np.isfinite(logit).all():
        bad = int(np.argmax(~np.isfinite(logit)))
        raise CurveError(f"{detector.name} gave a NaN or infinite score for the window at {bounds[bad, 0]:.2f} s")
    from core.decision import sigmoid

    return pd.DataFrame({"start": bounds[:, 0], "end": bounds[:, 1], "logit_A": logits[:, 0], "logit_B": logits[:, 1],
                         "logit": logit, "p_speech": sigmoid(logit) if p is None else np.asarray(p, float)})  # fmt: skip


def _check_limits(detector, bounds: np.ndarray) -> None:
    """A window longer than the model's audio window, or too short for its encoder, is refused up front."""
    from core.detectors.base import check_clip_lengths

    lengths = bounds[:, 1] - bounds[:, 0]
    names = [f"window at {a:.1f} s" for a in bounds[:, 0]]
    check_clip_lengths(names, lengths, getattr(detector, "max_seconds", None), detector.name,
                       getattr(detector, "min_seconds", None))  # fmt: skip


def score_longform(lf, detector, part: str = "test", window: float | None = None, hop: float | None = None,
                   progress: Callable[[float, str], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:  # fmt: skip
    """A curve table for the recordings of `part` ("all": every one) of long-form set `lf`, and its sidecar."""
    recs = lf.ids(part)
    if not recs:
        raise CurveError(f"long-form set {lf.name!r} has no recordings in part {part!r}")
    seconds = np.array([lf.duration(r) for r in recs])
    done_s, t0 = 0.0, time.perf_counter()
    tables = []
    for rec, dur in zip(recs, seconds):

        def on_batch(frac: float, rec=rec, dur=dur, before=done_s) -> None:
            if should_stop and should_stop():
                raise KeyboardInterrupt("cancelled")
            if progress:
                progress((before + frac * dur) / seconds.sum(), f"{rec}: {frac:.0%} ({before / 3600:.2f} h done)")

        on_batch(0.0)
        t = score_recording(detector, lf.load(rec), window, hop, on_batch=on_batch)
        t.insert(0, "recording_id", rec)
        tables.append(t)
        done_s += dur
    elapsed = time.perf_counter() - t0
    native = window is None
    meta = {
        "kind": "curves", "longform": lf.name, "part": part, "detector": detector.name,
        "detector_info": {**detector.info(), "prompt": getattr(detector, "prompt", ""),
                          "adapter": getattr(detector, "adapter", "")},
        "native": native, "window": window, "hop": None if native else (hop or window),
        "step": float(tables[0]["end"].iloc[0] - tables[0]["start"].iloc[0]) if native else (hop or window),
        "n_recordings": len(recs), "audio_seconds": float(seconds.sum()), "seconds": elapsed,
        "real_time_factor": elapsed / float(seconds.sum()),
        "encoder_sharing": "" if native else ENCODER_SHARING,
    }  # fmt: skip
    return pd.concat(tables, ignore_index=True)[COLUMNS], meta


# ---------------------------------------------------------------- tables


def validate(df: pd.DataFrame, source: str = "curve table") -> pd.DataFrame:
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise CurveError(f"{source}: a curve table needs column(s) {missing}")
    bad = ~np.isfinite(df[["start", "end", "logit", "p_speech"]].to_numpy(float)).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise CurveError(f"{source}: row {i + 2} ({df['recording_id'].iloc[i]}) has a NaN or infinite value")
    return df


def save_curves(table: pd.DataFrame, meta: dict[str, Any], name: str | None = None) -> Path:
    """Write results/curves/<name>.parquet (sidecar in its footer) and a .json copy; return the path."""
    import pyarrow.parquet as pq

    from core import atomic
    from core.data.export import with_metadata
    from core.names import check_name

    validate(table)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    if name is None:
        name = f"{meta['longform']}-{meta['part']}-{meta['detector']}-{stamp}"
    check_name(name, "curve table")
    side = {**meta, "created": stamp, "n_rows": len(table), "name": name}
    path = curves_dir() / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    arrow = with_metadata(table, side, META_KEY, atomic.json_default)
    atomic.write_with(path, lambda tmp: pq.write_table(arrow, tmp), suffix=".parquet")
    atomic.write_json(path.with_suffix(".json"), side)
    return path


def list_curves(longform: str | None = None) -> list[Path]:
    d = curves_dir()
    if not d.exists():
        return []
    found = sorted(d.glob("*.parquet"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [p for p in found if longform is None or read_meta(p).get("longform") == longform]


def read_meta(path: str | Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    try:
        blob = (pq.read_schema(str(path)).metadata or {}).get(META_KEY)
    except Exception as exc:  # pyarrow raises several kinds for a file that is not Parquet
        raise CurveError(f"{path}: not a readable Parquet table ({exc})") from exc
    return json.loads(blob) if blob else {}


def resolve(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".parquet" and p.exists():
        return p
    q = curves_dir() / f"{name_or_path}.parquet"
    if q.exists():
        return q
    raise CurveError(f"no curve table {str(name_or_path)!r} in {curves_dir()}")


def load_curves(name_or_path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    import pyarrow.parquet as pq

    path = resolve(name_or_path)
    try:
        arrow = pq.read_table(str(path))
    except Exception as exc:  # pyarrow raises several kinds for a file that is not Parquet
        raise CurveError(f"{path}: not a readable Parquet table ({exc})") from exc
    blob = (arrow.schema.metadata or {}).get(META_KEY)
    df = arrow.to_pandas()
    df["recording_id"] = df["recording_id"].astype(str)
    return validate(df, str(path)), (json.loads(blob) if blob else {})


def curves_of(table: pd.DataFrame, meta: dict[str, Any], durations: dict[str, float]) -> dict[str, Curve]:
    """{recording: Curve} at the table's step: native frames as they are, windows overlap-added."""
    step = float(meta.get("step") or 0)
    if not step > 0:
        raise CurveError("the curve table's sidecar has no frame step")
    out = {}
    for rec, t in table.groupby("recording_id", sort=False):
        if rec not in durations:
            raise CurveError(f"curve table has recording {rec!r}, which the long-form set does not")
        dur = durations[rec]
        if meta.get("native"):
            values = t["p_speech"].to_numpy(float)
        else:
            values = frames_from_windows(t[["start", "end"]].to_numpy(float), t["p_speech"].to_numpy(float), step, dur)
        out[rec] = Curve(values, step, dur)
    return out
