"""Your own clips: uploaded files or microphone takes, decoded with the lab's checks, kept as a dataset.

Why a dataset of its own kind: a user who records a few clips to probe a detector should be able
to split, audit, score and tag them like any other data, without mixing them into an imported
corpus whose provenance the lab records.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from core import atomic
from core.data.audio import LoadedAudio, content_hash, load_audio, to_pcm16, write_wav
from core.data.datasets import LABELS, Dataset, dataset_root, load_dataset, save_dataset
from core.errors import AudioError, LabError
from core.names import check_name

KIND = "own clips"
SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aiff", ".aif")


MAX_SECONDS = 30.0  # what Try a clip scores of one upload: the audio LLM's window, seconds on 2 cores


def decode_upload(filename: str, data: bytes, max_seconds: float = MAX_SECONDS) -> LoadedAudio:
    """Decode uploaded bytes as the lab decodes any file; errors name the upload, not a temp path.

    The result is the one signal the lab scores, stores and hashes: its first `max_seconds` (a
    longer upload is cut, with a note; an hour would never finish interactively), as the PCM16
    samples a kept clip's WAV will hold, so samples beyond ±1 are clipped here, with a note, not
    scored raw and stored clipped.
    """
    suffix = Path(filename).suffix.lower()
    if suffix and suffix not in SUFFIXES:
        raise AudioError(f"{filename}: not an audio file the lab reads ({', '.join(SUFFIXES)})")
    with tempfile.TemporaryDirectory(prefix="lab-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix or '.wav'}"
        path.write_bytes(data)
        try:
            seconds = _seconds(path)
            long = seconds is not None and seconds > max_seconds
            audio = load_audio(path, end_s=max_seconds if long else None)
        except AudioError as exc:
            raise AudioError(str(exc).replace(str(path), filename)) from None
    notes = list(audio.notes)
    if long:
        notes.append(
            f"cut to its first {max_seconds:g} s of {seconds:.1f} s (Try a clip scores up to {max_seconds:g} s; "
            "import long recordings with 'Cut clips longer than' on the Data page)"
        )
    over = int(np.sum(np.abs(audio.samples) > 1.0))
    if over:
        notes.append(f"{over} sample(s) beyond ±1 (peak {np.max(np.abs(audio.samples)):.2f}) clipped to ±1, as stored")
    samples = (to_pcm16(audio.samples) / 32768.0).astype(np.float32)
    return LoadedAudio(samples, audio.sr, notes)


def _seconds(path: Path) -> float | None:
    """The file's length without decoding it, when its header says (None otherwise)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        return None  # load_audio names the problem
    return info.frames / info.samplerate if 0 < info.frames < 2**62 and info.samplerate else None


def clip_stem(filename: str) -> str:
    """A clip-id-safe stem of a file name ("My take (2).wav" -> "My-take-2")."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(filename).stem).strip("-._")
    return stem[:60] or "clip"


def add_clips(name: str, clips: list[tuple[str, LoadedAudio]], label: str, group: str) -> Dataset:
    """Add (filename, audio) clips with one label and group to the own-clips dataset `name` (made if new).

    Refuses another kind of dataset (an import or the embedded set keeps its provenance) and a clip
    whose samples are already in the dataset. The WAVs are written first, the manifest last, so a
    failure leaves the dataset as it was.
    """
    check_name(name, "dataset")
    check_name(group, "group")
    if label not in LABELS:
        raise LabError(f"label {label!r}: choose {' or '.join(LABELS)}")
    if not clips:
        raise LabError("no clips to add")
    root = dataset_root(name)
    root.mkdir(parents=True, exist_ok=True)
    with atomic.locked(root / ".lock", f"dataset {name}", timeout_s=30):
        if (root / "manifest.csv").exists():
            ds = load_dataset(name)
            if ds.info.get("kind") != KIND:
                raise LabError(
                    f"dataset {name!r} is a {ds.info.get('kind') or 'built or imported'} dataset; add your clips "
                    "to a dataset of your own (a new name)"
                )
            manifest, info = ds.manifest, ds.info
        else:
            manifest, info = pd.DataFrame(), {"kind": KIND, "source": "uploads and recordings"}
        known = dict(zip(manifest.get("content_hash", []), manifest.get("clip_id", [])))
        rows, written = [], []
        try:
            for filename, audio in clips:
                h = content_hash(audio.samples)
                if h in known:
                    raise LabError(f"{filename}: the same audio is already in {name!r} as clip {known[h]!r}")
                clip_id = f"{group}-{clip_stem(filename)}-{h[:6]}"
                path = write_wav(root / "audio" / f"{clip_id}.wav", audio.samples, audio.sr)
                written.append(path)
                known[h] = clip_id
                rows.append({"clip_id": clip_id, "path": f"audio/{clip_id}.wav", "label": label, "group_id": group,
                             "base_clip_id": clip_id, "duration_ms": round(audio.duration_ms, 1),
                             "content_hash": h, "source": f"upload:{filename}"})  # fmt: skip
            save_dataset(root, pd.concat([manifest, pd.DataFrame(rows)], ignore_index=True), info)
        except Exception:
            for path in written:
                path.unlink(missing_ok=True)
            raise
    return load_dataset(name)
