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
from core.detectors.base import Detector, check_clip_lengths
from core.errors import LabError
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


def check_window(detector: Detector, clips: pd.DataFrame) -> None:
    """A detector with a fixed audio window (`max_seconds`) or a shortest clip it hears (`min_seconds`):
    clips outside them named before any work."""
    seconds = clips["duration_ms"].fillna(0).to_numpy() / 1000
    check_clip_lengths(
        clips["clip_id"].tolist(),
        seconds,
        getattr(detector, "max_seconds", None),
        detector.name,
        getattr(detector, "min_seconds", None),
    )


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
    if int(batch_size) < 1:
        raise LabError(f"batch size must be at least 1, got {batch_size}")

    def report(done: int) -> None:
        if should_stop and should_stop():
            raise KeyboardInterrupt("cancelled")
        if progress:
            progress(done / max(n, 1), f"scored {done}/{n} clips")

    check_window(detector, clips)
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
    labels: str = "original",
) -> Path:
    """Score `part` of split `split_name` and save the predictions table; return its path.

    Clips tagged with any of `exclude_tags` are left out and listed in the sidecar; `labels`:
    the manifest's ("original") or with the dataset's relabels applied ("corrected").
    """
    clips = select_clips(ds, split_name, part, exclude_tags, labels)
    t0 = time.perf_counter()
    logits = score_clips(ds, clips, detector, batch_size, progress, should_stop)
    seconds = time.perf_counter() - t0
    table = predictions.build_table(
        clips, logits, detector=detector.name, adapter=detector.adapter, seed=seed, prompt=detector.prompt
    )
    meta = sidecar(ds, split_name, part, detector.name, detector.info(), table, seconds, exclude_tags, clips)
    return predictions.save(table, meta, name)


def sidecar(ds, split_name, part, detector, info, table, seconds, exclude_tags, clips, per_s=None) -> dict[str, Any]:
    """What a predictions table's JSON sidecar records about how it was made."""
    return {
        "dataset": ds.name,
        "split_name": split_name,
        "part": part,
        "detector": detector,
        **info,
        "seconds": round(seconds, 2),
        "clips_per_s": round((per_s or len(table)) / max(seconds, 1e-9), 2),
        "host": platform.node(),
        "accuracy": float(correct(table["label"], table["logit"]).mean()),
        "excluded_tags": list(exclude_tags),
        "excluded_clips": clips.attrs.get("excluded", []),
        **clips.attrs.get("label_provenance", {"labels": "original"}),
        **cut_to_window(clips, info.get("window_seconds")),
    }


def window_note(meta: dict[str, Any]) -> str:
    """A sentence when a fixed-window detector scored long clips on their start only ('' when none)."""
    cut = meta.get("cut_to_window")
    if not cut:
        return ""
    return (f"{cut['clips']} clip(s) longer than this detector's {cut['seconds']:g} s window were scored on their "
            f"first {cut['seconds']:g} s (e.g. {', '.join(cut['first'])})")  # fmt: skip


def cut_to_window(clips: pd.DataFrame, window: float | None) -> dict[str, Any]:
    """{"cut_to_window": ...} when a detector with a fixed window scored clips longer than it on their start."""
    if not window:
        return {}
    long = clips[clips["duration_ms"].fillna(0).to_numpy() > window * 1000 + 1e-6]
    if long.empty:
        return {}
    return {"cut_to_window": {"seconds": window, "clips": len(long), "first": long["clip_id"].head(5).tolist()}}


def score_prompt_clips(
    ds: Dataset,
    clips: pd.DataFrame,
    detector: Detector,
    prompts: list,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """(prompts, clips, 2) answer scores of several prompts on `clips`, the audio work shared (audio LLMs)."""
    if not hasattr(detector, "score_prompts"):
        raise LabError(f"detector {detector.name!r} takes no prompt: only audio-LLM detectors score prompts")
    n = len(clips)

    def report(done: int) -> None:
        if should_stop and should_stop():
            raise KeyboardInterrupt("cancelled")
        if progress:
            progress(done / max(n, 1), f"scored {done}/{n} clips × {len(prompts)} prompts")

    report(0)
    ids = clips["clip_id"].to_numpy()
    check_window(detector, clips)
    source = DiskClips(ds, ids, clips["duration_ms"].to_numpy())
    return detector.score_prompts(source, 16000, prompts, on_batch=report)


def evaluate_prompts(
    ds: Dataset,
    split_name: str,
    part: str,
    detector: Detector,
    prompts: list,
    *,
    clip_ids: list[str] | None = None,
    names: list[str] | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    exclude_tags: list[str] | tuple[str, ...] = (),
    folder: Path | None = None,
    extra: dict[str, Any] | None = None,
) -> list[Path]:
    """Score several prompts (`prompt_batch.Prompt`) on `part` of a split; one predictions table each.

    The clips are read and encoded once for all prompts. `clip_ids` restricts scoring to those
    clips of the part (a fixed subset, as prompt optimisation uses); every table records its
    prompt and answers, so every later view reads it like any other table. `folder`: where the
    tables go (default results/predictions); `extra`: more sidecar facts (e.g. the prompt study).
    """
    clips = select_clips(ds, split_name, part, exclude_tags)
    if clip_ids is not None:
        unknown = sorted(set(clip_ids) - set(clips["clip_id"]))
        if unknown:
            raise LabError(f"{len(unknown)} chosen clip(s) are not in the {part!r} part, e.g. {unknown[0]!r}")
        keep = clips["clip_id"].isin(set(clip_ids)).to_numpy()
        excluded = clips.attrs.get("excluded", [])
        clips = clips[keep].reset_index(drop=True)
        clips.attrs["excluded"] = excluded
    if names is not None and len(names) != len(prompts):
        raise LabError(f"{len(prompts)} prompts but {len(names)} table names")
    t0 = time.perf_counter()
    scores = score_prompt_clips(ds, clips, detector, prompts, progress, should_stop)
    seconds = time.perf_counter() - t0
    paths = []
    for k, prompt in enumerate(prompts):
        table = predictions.build_table(
            clips, scores[k], detector=detector.name, adapter=detector.adapter, seed=seed, prompt=prompt.text
        )
        info = {**detector.info(), **detector.prompt_info(prompt), "prompts_scored_together": len(prompts)}
        meta = sidecar(ds, split_name, part, detector.name, info, table, seconds, exclude_tags, clips)
        meta["clips_per_s"] = round(len(clips) * len(prompts) / max(seconds, 1e-9), 2)  # clip-prompts per second
        meta.update(extra or {})
        paths.append(predictions.save(table, meta, names[k] if names else None, folder))
    return paths
