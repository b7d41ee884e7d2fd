"""Score a split of a dataset with a detector and write a predictions table."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.data.datasets import Dataset
from core.data.splits import select_clips
from core.decision import correct
from core.detectors.base import Detector
from core.scoring import predictions

Progress = Callable[[float, str], None]


class DiskClips:
    """The audio of some clips of a dataset, read from disk only when one is asked for.

    A detector that `reads_lazily` prepares its batches from this in worker processes, so
    scoring a split never holds its audio in memory and never pauses to read the next part.
    `lengths` (in samples, from the manifest's durations) let it batch by length unread.
    """

    def __init__(self, ds: Dataset, clip_ids: list[str], durations_ms: np.ndarray) -> None:
        self.ds, self.ids = ds, list(clip_ids)
        self.lengths = [int(round(d * 16)) for d in np.nan_to_num(np.asarray(durations_ms, dtype=float))]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.ds.load_clip(self.ids[i]).samples


def score_clips(
    ds: Dataset,
    clips: pd.DataFrame,
    detector: Detector,
    batch_size: int = 16,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """(n, 2) answer logits, scored in batches of clips of similar length (less padding).

    A detector that `reads_lazily` gets every clip in one call (as `DiskClips`) and reports
    each batch back (progress; cancelling raises from there). Others get the clips in chunks,
    progress and cancellation between chunks, the next chunk read while this one is scored.
    """
    n = len(clips)
    ids = clips["clip_id"].to_numpy()

    def report(done: int) -> None:
        if should_stop and should_stop():
            raise KeyboardInterrupt("cancelled")
        if progress:
            progress(done / max(n, 1), f"scored {done}/{n} clips")

    if getattr(detector, "reads_lazily", False):
        report(0)
        return detector.score(DiskClips(ds, ids, clips["duration_ms"].to_numpy()), 16000, on_batch=report)
    order = np.argsort(clips["duration_ms"].fillna(0).to_numpy(), kind="stable")
    out = np.full((n, 2), np.nan)

    def read(start: int) -> list[np.ndarray]:
        return [ds.load_clip(cid).samples for cid in ids[order[start : start + batch_size]]]

    with ThreadPoolExecutor(max_workers=1) as reader:
        upcoming = reader.submit(read, 0)
        for start in range(0, n, batch_size):
            report(start)
            audio = upcoming.result()
            if start + batch_size < n:
                upcoming = reader.submit(read, start + batch_size)
            out[order[start : start + batch_size]] = detector.score(audio, 16000)
        report(n)
    return out


def evaluate(
    ds: Dataset,
    split_name: str,
    part: str,
    detector: Detector,
    *,
    batch_size: int = 16,
    seed: int | None = None,
    progress: Progress | None = None,
    name: str | None = None,
    should_stop: Callable[[], bool] | None = None,
    exclude_tags: list[str] | tuple[str, ...] = (),
) -> Path:
    """Score `part` of split `split_name` and save the predictions table; return its CSV path.

    Clips tagged with any of `exclude_tags` are left out and listed in the sidecar.
    """
    clips = select_clips(ds, split_name, part, exclude_tags)
    excluded = clips.attrs.get("excluded", [])
    t0 = time.perf_counter()
    logits = score_clips(ds, clips, detector, batch_size, progress, should_stop)
    seconds = time.perf_counter() - t0
    table = predictions.build_table(
        clips, logits, detector=detector.name, adapter=detector.adapter, seed=seed, prompt=detector.prompt
    )
    meta: dict[str, Any] = {
        "dataset": ds.name,
        "split_name": split_name,
        "part": part,
        "detector": detector.name,
        **detector.info(),
        "seconds": round(seconds, 2),
        "clips_per_s": round(len(clips) / max(seconds, 1e-9), 2),
        "host": platform.node(),
        "accuracy": float(correct(table["label"], table["logit"]).mean()),
        "excluded_tags": list(exclude_tags),
        "excluded_clips": excluded,
    }
    return predictions.save(table, meta, name)
