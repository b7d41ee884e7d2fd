"""The real-voice dataset: clips of 0.5–5 s at 16 kHz cut from recordings Debian packages install.

Every clip's manifest row says where it came from: the package (`source`), its licence, the
recording (`base_clip_id`: every clip of one recording shares it), its original sample rate,
language and kind, and what was done to it (`notes`: resampled from 8 kHz, downmixed, padded,
cut). Groups are real speakers (a voice recording two languages is one group) or sources. The
lab's synthetic voices and procedural sounds can join as one more, clearly labelled source
(`synthetic-` groups, source "synthetic"), so a study can ask whether training on synthetic
speech transfers.

Deterministic: the same packages and seed give the same clips. Built in a temporary folder and
renamed into place, like every dataset.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from core import atomic
from core.data import audio
from core.data.debian_sounds import PACKAGES, Recording, recordings
from core.errors import AudioError

# librosa and pandas are imported inside functions: importing this module stays cheap

Progress = Callable[[float, str], None]
MIN_S, MAX_S = 0.5, 5.0
SPEECH_PER_GROUP = 40  # clips per speaker at most: one voice actor recorded 560 prompts
WINDOWS_PER_TRACK = 6  # music: clips cut from each track
WINDOWS_PER_RECORDING = 3  # a long prompt: at most this many 5 s pieces
SEED = 20_261_206
# the split a first study uses and whose train part the lab base model learnt from: by group, seed 0,
# a test part large enough (about 10 speakers and 6 sources) for clustered intervals to tell detectors apart
STUDY_SPLIT = "default"
STUDY_FRACTIONS = {"train": 0.6, "dev": 0.15, "test": 0.25}


def _rng(*parts: str) -> np.random.Generator:
    import hashlib

    return np.random.default_rng(
        [SEED, int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:8], "little")]
    )


def _orig_rate(path: Path) -> int:
    import soundfile as sf

    return int(sf.info(str(path)).samplerate)


def cut(rec: Recording, x: np.ndarray) -> list[tuple[np.ndarray, list[str]]]:
    """Clips of one recording (16 kHz mono) and what was done to each.

    Music: `WINDOWS_PER_TRACK` windows of random length in [0.5, 5] s at random places (quiet
    windows skipped). Anything else: leading and trailing silence trimmed (40 dB below peak),
    then padded with silence to 0.5 s or cut into pieces of at most 5 s.
    """
    import librosa

    sr = audio.TARGET_SR
    out: list[tuple[np.ndarray, list[str]]] = []
    if rec.kind == "music":
        rng = _rng(str(rec.path))
        for _ in range(WINDOWS_PER_TRACK * 3):
            n = int(rng.uniform(MIN_S, MAX_S) * sr)
            if len(x) <= n:
                break
            start = int(rng.integers(0, len(x) - n))
            piece = x[start : start + n]
            if np.sqrt(np.mean(piece**2)) > 1e-3:
                out.append((piece, [f"window {start / sr:.2f}–{(start + n) / sr:.2f} s of the track"]))
            if len(out) == WINDOWS_PER_TRACK:
                break
        return out
    trimmed, (a, b) = librosa.effects.trim(x, top_db=40)
    if len(trimmed) < 0.15 * sr:
        return []
    notes = [f"silence trimmed to {a / sr:.2f}–{b / sr:.2f} s"] if a > 0 or b < len(x) else []
    if len(trimmed) < MIN_S * sr:
        pad = int(MIN_S * sr) - len(trimmed)
        padded = np.pad(trimmed, (pad // 2, pad - pad // 2))
        return [(padded, [*notes, f"padded with silence from {len(trimmed) / sr:.2f} s to {MIN_S} s"])]
    step = int(MAX_S * sr)
    for k, start in enumerate(range(0, len(trimmed), step)):
        piece = trimmed[start : start + step]
        if len(piece) < MIN_S * sr or k == WINDOWS_PER_RECORDING:
            break
        out.append((piece, [*notes, f"piece {k + 1} (≤ {MAX_S:g} s) of a longer recording"] if len(trimmed) > step
                    else notes))  # fmt: skip
    return out


def clip_rows(rec: Recording, rec_id: str, out_dir: str) -> list[dict]:
    """Cut one recording, write its clips, return their manifest rows."""
    loaded = audio.load_audio(rec.path)
    rate = _orig_rate(rec.path)
    rows = []
    for k, (x, notes) in enumerate(cut(rec, loaded.samples)):
        y = audio.peak_normalise(x)
        clip_id = f"{rec_id}-{k}"
        path = audio.write_wav(Path(out_dir) / "clips" / rec.group / f"{clip_id}.wav", y, atomic_write=False)
        rows.append({
            "clip_id": clip_id, "path": str(path.relative_to(out_dir)), "label": rec.label, "group_id": rec.group,
            "base_clip_id": rec_id, "duration_ms": round(1000 * len(y) / audio.TARGET_SR, 1),
            "content_hash": audio.content_hash(y), "source": rec.package, "licence": rec.licence,
            "original_file": str(rec.path), "original_sample_rate": rate,
            "language": rec.language, "kind": rec.kind, "notes": "; ".join([*loaded.notes, *notes, "peak-normalised"]),
        })  # fmt: skip
    return rows


def _build_many(batch: list[tuple[Recording, str]], out_dir: str) -> tuple[list[dict], list[str]]:
    """Rows of a batch of recordings, and the recordings skipped with why (too short, silent, unreadable)."""
    rows, skipped = [], []
    for rec, rec_id in batch:
        try:
            rows += clip_rows(rec, rec_id, out_dir)
        except AudioError as exc:
            skipped.append(str(exc))
    return rows, skipped


def choose(recs: list[Recording]) -> list[tuple[Recording, str]]:
    """The recordings to cut, with stable ids: every non-speech one; at most `SPEECH_PER_GROUP` of
    each speaker's, drawn with a seeded generator (one voice actor recorded hundreds)."""
    by_group: dict[str, list[Recording]] = {}
    for r in recs:
        by_group.setdefault(r.group, []).append(r)
    chosen = []
    for group, items in sorted(by_group.items()):
        if items[0].label == "speech" and len(items) > SPEECH_PER_GROUP:
            keep = sorted(_rng(group).choice(len(items), SPEECH_PER_GROUP, replace=False))
            items = [items[i] for i in keep]
        chosen += [(r, f"{group}-{r.path.stem}-{i}") for i, r in enumerate(items)]
    return chosen


def build_voices(
    name: str = "voices",
    force: bool = False,
    workers: int = 2,
    packages: tuple[str, ...] = PACKAGES,
    synthetic: str = "",
    root: Path = Path("/"),
    progress: Progress | None = None,
) -> Path:
    """Build the real-voice dataset into data/datasets/<name>; return its folder.

    `synthetic`: the name of a built synthetic dataset (e.g. "default") whose clean clips join as
    source "synthetic" (their groups prefixed "synthetic-"). A missing Debian package is refused
    with the packages to install.
    """
    import pandas as pd

    from core.data.datasets import dataset_root, load_dataset, save_dataset

    target = dataset_root(name)
    if (target / "manifest.csv").exists() and not force:
        return target
    t0 = time.perf_counter()
    chosen = choose(recordings(packages, root))
    batches = [chosen[i :: max(1, workers * 4)] for i in range(max(1, workers * 4))]
    rows: list[dict] = []
    skipped: list[str] = []
    with atomic.building_dir(target) as tmp:
        with ProcessPoolExecutor(max(1, workers)) as pool:
            for k, (part, left_out) in enumerate(pool.map(_build_many, batches, [str(tmp)] * len(batches))):
                rows += part
                skipped += left_out
                if progress:
                    progress((k + 1) / len(batches), f"cut {len(rows)} clips from {len(chosen)} recordings")
        if synthetic:
            rows += _synthetic_rows(load_dataset(synthetic), Path(tmp))
        manifest = pd.DataFrame(rows).sort_values("clip_id").reset_index(drop=True)
        counts = manifest.groupby("label")["group_id"].nunique().to_dict()
        save_dataset(Path(tmp), manifest, {
            "name": name, "kind": "real-voices", "packages": list(packages), "synthetic": synthetic, "seed": SEED,
            "n_clips": len(manifest), "groups": counts, "build_seconds": round(time.perf_counter() - t0, 1),
            "skipped_recordings": sorted(skipped),
            "description": "Real speech (voice actors, spoken letters and syllables in 23 languages, codec2 "
                           "speakers) vs real music, instrument samples, game effects and desktop sounds, from "
                           "Debian packages; licences per clip.",
        })  # fmt: skip
    study_split(load_dataset(name))
    return target


def study_split(ds):
    """The set's split "default" (`STUDY_FRACTIONS` by group, seed 0), saved on first use."""
    from core.data.splits import list_splits, load_split, make_split, save_split

    if STUDY_SPLIT not in list_splits(ds):
        split = make_split(ds.manifest, STUDY_FRACTIONS, seed=0)
        save_split(ds, STUDY_SPLIT, split, {"fractions": STUDY_FRACTIONS, "seed": 0,
                                             "note": "its train part is the lab base model's training pool"})  # fmt: skip
    return load_split(ds, STUDY_SPLIT)


def _synthetic_rows(ds, out_dir: Path) -> list[dict]:
    """The synthetic dataset's clean clips, linked in as source "synthetic" (groups prefixed)."""
    import os

    rows = []
    clean = ds.manifest[ds.manifest["snr_db"].isna()]
    for r in clean.itertuples():
        src = ds.root / r.path
        dst = out_dir / "clips" / f"synthetic-{r.group_id}" / Path(r.path).name
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, dst)
        rows.append({
            "clip_id": f"synthetic-{r.clip_id}", "path": str(dst.relative_to(out_dir)), "label": r.label,
            "group_id": f"synthetic-{r.group_id}", "base_clip_id": f"synthetic-{r.base_clip_id}",
            "duration_ms": r.duration_ms, "content_hash": r.content_hash, "source": "synthetic",
            "licence": "generated by the lab (eSpeak NG voices: GPL-3+; procedural sounds)",
            "original_file": "", "original_sample_rate": audio.TARGET_SR, "language": "", "kind": "synthetic",
            "notes": f"from dataset {ds.name!r} ({r.source})",
        })  # fmt: skip
    return rows
