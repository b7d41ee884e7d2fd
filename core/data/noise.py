"""Where noise for augmentation and condition sets comes from: a folder of recordings, or any
imported dataset's non-speech clips (`dataset:NAME`, e.g. an imported MUSAN), so a corpus
imported once serves as noise without copying it into a plain folder.

A dataset's clips tagged `music with vocals` (MUSAN's annotation) are left out: a noise that
contains a voice would teach "speech" as "non-speech".
"""

from __future__ import annotations

import numpy as np

from core.errors import LabError

PREFIX = "dataset:"
NOT_NOISE_TAGS = ("music with vocals",)


def is_dataset(spec: str) -> bool:
    return str(spec).startswith(PREFIX)


def _dataset_clips(spec: str):
    from core.data import annotations
    from core.data.datasets import load_dataset

    ds = load_dataset(spec[len(PREFIX) :].strip())
    m = ds.manifest
    excluded = annotations.tagged(ds, NOT_NOISE_TAGS)
    ids = [c for c in m.loc[m["label"] == "nonspeech", "clip_id"] if c not in excluded]
    if not ids:
        raise LabError(f"noise {spec!r}: dataset {ds.name!r} has no non-speech clips to use as noise")
    return ds, ids


def check_noise(spec: str) -> int:
    """How many noise recordings `spec` gives; an error naming the problem when none (checked before a job)."""
    if is_dataset(spec):
        return len(_dataset_clips(spec)[1])
    from core.data.files import noise_files

    return len(noise_files(spec))


def load_noises(spec: str, target_sr: int = 16000) -> list[np.ndarray]:
    """The noise recordings of `spec` (a folder, or `dataset:NAME`), as mono float arrays at `target_sr`."""
    from core.data.audio import load_audio, resample

    if is_dataset(spec):
        ds, ids = _dataset_clips(spec)
        out = []
        for cid in ids:
            clip = ds.load_clip(cid)
            out.append(clip.samples if clip.sr == target_sr else resample(clip.samples, clip.sr, target_sr))
        return out
    from core.data.files import noise_files

    return [load_audio(p, target_sr=target_sr).samples for p in noise_files(spec)]
