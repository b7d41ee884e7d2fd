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

from core import predictions
from core.datasets import Dataset
from core.detectors.base import Detector
from core.errors import LabError
from core.metrics import correct
from core.splits import load_split

Progress = Callable[[float, str], None]


def select_clips(
    ds: Dataset, split_name: str, part: str, exclude_tags: list[str] | tuple[str, ...] = ()
) -> pd.DataFrame:
    """Manifest rows of one side (`part`: train/dev/test/all) of a saved split, with the split column.

    Clips tagged with any of `exclude_tags` (see core.annotations) are dropped; their ids are
    left in `.attrs["excluded"]` so callers can record what they left out.
    """
    from core import annotations

    m = ds.manifest.assign(split=load_split(ds, split_name).to_numpy())
    if part != "all":
        m = m[m["split"] == part]
        if m.empty:
            raise LabError(f"split {split_name!r} of dataset {ds.name!r} has no {part!r} clips")
    kept, excluded = annotations.exclude(m.reset_index(drop=True), ds, list(exclude_tags))
    kept.attrs["excluded"] = excluded
    return kept


def score_clips(
    ds: Dataset,
    clips: pd.DataFrame,
    detector: Detector,
    batch_size: int = 16,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """(n, 2) answer logits, scored in batches of clips of similar length (less padding).

    Clips go to the detector in chunks (progress and cancellation between chunks); a
    detector that pipelines several batches asks for larger chunks by `clips_per_call`.
    The next chunk's audio is read from disk while the detector scores this one (reading it
    in between left a GPU idle for a fifth of each chunk).
    """
    order = np.argsort(clips["duration_ms"].fillna(0).to_numpy(), kind="stable")
    out = np.full((len(clips), 2), np.nan)
    chunk = max(batch_size, int(getattr(detector, "clips_per_call", batch_size)))
    ids = clips["clip_id"].to_numpy()

    def read(start: int) -> list[np.ndarray]:
        return [ds.load_clip(cid).samples for cid in ids[order[start : start + chunk]]]

    with ThreadPoolExecutor(max_workers=1) as reader:
        upcoming = reader.submit(read, 0)
        for start in range(0, len(order), chunk):
            if should_stop and should_stop():
                raise KeyboardInterrupt("cancelled")
            audio = upcoming.result()
            if start + chunk < len(order):
                upcoming = reader.submit(read, start + chunk)
            out[order[start : start + chunk]] = detector.score(audio, 16000)
            if progress:
                done = min(start + chunk, len(order))
                progress(done / len(order), f"scored {done}/{len(order)} clips")
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
