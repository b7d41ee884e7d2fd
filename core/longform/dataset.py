"""Long-form datasets: long recordings, their reference speech turns, groups and a split of recordings.

A long-form dataset is a folder `data/longform/<name>/` with
    recordings.csv   recording_id, path (relative to the folder, or absolute for imported audio
                     left where it is), duration_s, part (train/dev/test), groups (";"-joined
                     speakers or sources heard in it)
    reference.rttm   every speaker turn (speech is their union)
    info.json        how it was made
The embedded set is assembled (`assemble.py`); the importers here read a folder of audio with RTTM
(one file per recording or one for all), a folder of audio with a CSV of (recording, start, end,
label), or a Lhotse recordings + supervisions pair. Their recordings are split by group: two
recordings that share a speaker (or source) always land in the same part, so no voice is heard in
both dev and test (`split_recordings`). Every reference is checked on the way in (segments.py:
negative, empty or self-overlapping turns, turns past the end, unknown recordings, unsorted
lines, each named by file and line) and the folder is built aside and renamed into place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import LabError
from core.longform.segments import check_turns, read_csv, read_rttm, union

# soundfile and lhotse are imported inside functions: importing this module stays cheap

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus")
NONSPEECH_LABELS = {"nonspeech", "non-speech", "non_speech", "music", "noise", "silence", "background"}
GROUP_BY = ("speaker", "recording")


class LongformError(LabError):
    """A long-form dataset cannot be built or read; the message names the file."""


def longform_dir() -> Path:
    from core.paths import data_root

    return data_root() / "longform"


@dataclass
class LongformSet:
    """Recordings (one row each), their reference turns {recording: {speaker: (n, 2)}}, and info."""

    name: str
    root: Path
    recordings: pd.DataFrame
    turns: dict[str, dict[str, np.ndarray]]
    info: dict[str, Any] = field(default_factory=dict)

    def ids(self, part: str | None = None) -> list[str]:
        r = self.recordings if part in (None, "all") else self.recordings[self.recordings["part"] == part]
        return r["recording_id"].tolist()

    def row(self, rec: str) -> pd.Series:
        hit = self.recordings[self.recordings["recording_id"] == rec]
        if hit.empty:
            raise LongformError(f"recording {rec!r} is not in long-form set {self.name!r}")
        return hit.iloc[0]

    def path(self, rec: str) -> Path:
        p = Path(str(self.row(rec)["path"]))
        return p if p.is_absolute() else self.root / p

    def duration(self, rec: str) -> float:
        return float(self.row(rec)["duration_s"])

    def reference(self, rec: str) -> list[np.ndarray]:
        """Per-speaker turns (what skipping overlap needs)."""
        return list(self.turns.get(rec, {}).values())

    def speech(self, rec: str) -> np.ndarray:
        """Reference speech: the union of every speaker's turns."""
        t = self.reference(rec)
        return union(np.concatenate(t)) if t else np.zeros((0, 2))

    def load(self, rec: str) -> np.ndarray:
        """The recording as mono float32 at 16 kHz."""
        from core.data.audio import load_audio

        return load_audio(self.path(rec)).samples


def list_longform() -> list[str]:
    d = longform_dir()
    if not d.exists():
        return []
    return sorted(p.name for p in d.iterdir() if (p / "recordings.csv").exists() and not p.name.startswith("."))


def load_longform(name: str) -> LongformSet:
    """A saved long-form dataset, checked: columns, unique ids, references within each recording."""
    from core import atomic
    from core.csvfiles import read_csv as read_table

    root = longform_dir() / name
    if not (root / "recordings.csv").exists():
        known = ", ".join(list_longform()) or "none yet (python -m core longform build)"
        raise LongformError(f"no long-form dataset {name!r} in {longform_dir()}; known: {known}")
    recs = read_table(root / "recordings.csv", "recordings", ["recording_id", "path", "duration_s", "part"],
                      error=LongformError)  # fmt: skip
    recs["recording_id"] = recs["recording_id"].astype(str)
    dup = recs["recording_id"][recs["recording_id"].duplicated()]
    if len(dup):
        raise LongformError(f"{root / 'recordings.csv'}: recording id {dup.iloc[0]!r} appears twice")
    if "groups" not in recs:
        recs["groups"] = recs["recording_id"]
    recs["groups"] = recs["groups"].fillna("").astype(str)
    durations = dict(zip(recs["recording_id"], recs["duration_s"].astype(float)))
    turns = read_rttm(root / "reference.rttm", durations) if (root / "reference.rttm").exists() else {}
    info = atomic.read_json_object(root / "info.json", "long-form info", LongformError) if (root / "info.json").exists() else {}  # fmt: skip
    return LongformSet(name, root, recs.reset_index(drop=True), turns, info)


# ---------------------------------------------------------------- splitting recordings by group


def recording_units(groups: dict[str, list[str]]) -> dict[str, str]:
    """{recording: unit}: recordings linked (directly or through others) by a shared group share a unit."""
    from core.data.splits import linked

    find = linked(("r:" + rec, "g:" + g) for rec, gs in groups.items() for g in gs)
    return {rec: find("r:" + rec) for rec in groups}


def split_recordings(groups: dict[str, list[str]], durations: dict[str, float],
                     fractions: dict[str, float] | None = None, seed: int = 0) -> dict[str, str]:  # fmt: skip
    """{recording: part}: recordings linked by a shared group form one unit; units are shuffled by
    `seed` and each goes to the part furthest below its share of the total duration."""
    from core.data.splits import DEFAULT_FRACTIONS

    fractions = {k: v for k, v in (fractions or DEFAULT_FRACTIONS).items() if v > 0}
    units: dict[str, list[str]] = {}
    for rec, unit in sorted(recording_units(groups).items()):
        units.setdefault(unit, []).append(rec)
    order = sorted(units)
    order = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
    total = sum(durations[r] for r in groups) or 1.0
    target = {p: f * total for p, f in fractions.items()}
    have = dict.fromkeys(fractions, 0.0)
    out: dict[str, str] = {}
    for u in order:
        part = max(fractions, key=lambda p: (target[p] - have[p]) / target[p])
        for rec in units[u]:
            out[rec] = part
        have[part] += sum(durations[r] for r in units[u])
    return out


# ---------------------------------------------------------------- importers


def _audio_durations(folder: Path) -> dict[str, tuple[Path, float]]:
    """{stem: (path, seconds)} for the audio files under `folder`; a stem seen twice is refused."""
    import soundfile as sf

    out: dict[str, tuple[Path, float]] = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() not in AUDIO_SUFFIXES or not p.is_file():
            continue
        if p.stem in out:
            raise LongformError(
                f"two recordings are named {p.stem!r}: {out[p.stem][0]} and {p}; ids come from file names"
            )
        try:
            info = sf.info(str(p))
        except Exception as exc:  # libsndfile's many error types
            raise LongformError(f"{p}: cannot read audio ({exc})") from exc
        if info.frames <= 0 or info.samplerate <= 0:
            raise LongformError(f"{p}: empty audio")
        out[p.stem] = (p.resolve(), info.frames / info.samplerate)
    if not out:
        raise LongformError(f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
    return out


def _rttm_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.rglob("*.rttm"))
        if not files:
            raise LongformError(f"{path}: no .rttm files")
        return files
    if not path.exists():
        raise LongformError(f"{path}: reference file not found")
    return [path]


def _drop_nonspeech(turns: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    """Rows labelled as non-speech (music, noise, silence …) say where speech is not: not turns."""
    return {r: {s: t for s, t in spk.items() if s.strip().lower() not in NONSPEECH_LABELS} for r, spk in turns.items()}


def read_reference(kind: str, source: Path, reference: Path | None) -> tuple[dict[str, tuple[Path, float]], dict]:
    """(audio {id: (path, seconds)}, turns {id: {speaker: (n, 2)}}) from one of the importers' inputs."""
    if kind == "lhotse":
        return _read_lhotse(source, reference)
    if reference is None:
        raise LongformError(f"the {kind} importer needs the reference too: an RTTM file or folder, or a CSV")
    audio = _audio_durations(source)
    durations = {k: v[1] for k, v in audio.items()}
    turns: dict[str, dict[str, np.ndarray]] = {}
    if kind == "rttm":
        for f in _rttm_files(reference):
            for rec, spk in read_rttm(f, durations).items():
                if rec in turns:
                    raise LongformError(f"{f}: recording {rec!r} also has turns in another RTTM file")
                turns[rec] = spk
    elif kind == "csv":
        turns = read_csv(reference, durations)
    else:
        raise LongformError(f"unknown long-form importer {kind!r}; choose rttm, csv or lhotse")
    turns = _drop_nonspeech(turns)
    if not any(len(t) for spk in turns.values() for t in spk.values()):
        raise LongformError(f"{reference}: no speech turns for any of the {len(audio)} recordings in {source}")
    return audio, turns


def _read_lhotse(recordings: Path, supervisions: Path | None) -> tuple[dict, dict]:
    """Lhotse: every supervision is a speaker turn of its recording (segments kept, not cut into clips)."""
    from lhotse import load_manifest

    if supervisions is None:
        raise LongformError("give the supervisions manifest too: longform import lhotse RECORDINGS SUPERVISIONS")
    try:
        recs, sups = load_manifest(recordings), load_manifest(supervisions)
    except Exception as exc:  # lhotse raises many kinds for a file that is not its manifest
        raise LongformError(f"not a Lhotse manifest pair ({recordings}, {supervisions}): {exc}") from exc
    audio = {}
    for r in recs:
        src = r.sources[0]
        if src.type != "file":
            raise LongformError(f"recording {r.id}: its audio is a {src.type!r} source; the lab reads files")
        audio[r.id] = (Path(src.source).expanduser().resolve(), float(r.duration))
    rows = []
    for i, s in enumerate(sorted(sups, key=lambda s: (s.recording_id, s.start)), start=1):
        rows.append((s.recording_id, s.speaker or f"{s.recording_id}-speaker", float(s.start), float(s.end), i))
    check_turns(rows, f"{supervisions} (supervision, in time order)", {k: v[1] for k, v in audio.items()})
    turns: dict[str, dict[str, list]] = {}
    for rec, spk, a, b, _ in rows:
        turns.setdefault(rec, {}).setdefault(spk, []).append((a, b))
    return audio, {r: {s: np.array(t) for s, t in spk.items()} for r, spk in turns.items()}


def save_longform(name: str, audio: dict[str, tuple[Path, float]], turns: dict[str, dict[str, np.ndarray]],
                  info: dict[str, Any], group_by: str = "speaker", fractions: dict[str, float] | None = None,
                  seed: int = 0, force: bool = False) -> Path:  # fmt: skip
    """Write a long-form dataset folder (audio left where it is), its recordings split by group."""
    from core import atomic
    from core.names import check_name

    check_name(name, "long-form dataset")
    if group_by not in GROUP_BY:
        raise LongformError(f"group recordings by one of {', '.join(GROUP_BY)}, not {group_by!r}")
    unknown = sorted(set(turns) - set(audio))
    if unknown:
        raise LongformError(f"reference turns for recording(s) with no audio: {', '.join(unknown[:5])}")
    target = longform_dir() / name
    if target.exists() and not force:
        raise LongformError(f"long-form dataset {name!r} already exists at {target}; choose another name or use force")
    groups = {r: (sorted(turns.get(r, {})) if group_by == "speaker" else []) or [f"recording:{r}"] for r in audio}
    parts = split_recordings(groups, {r: d for r, (_, d) in audio.items()}, fractions, seed)
    rows = [{"recording_id": r, "path": str(p), "duration_s": round(d, 6), "part": parts[r],
             "groups": ";".join(groups[r])} for r, (p, d) in sorted(audio.items())]  # fmt: skip
    lines = []
    for rec in sorted(turns):
        for spk, t in turns[rec].items():
            lines += [(rec, float(a), f"SPEAKER {rec} 1 {a:.6f} {b - a:.6f} <NA> <NA> {spk} <NA> <NA>") for a, b in t]
    lines.sort(key=lambda x: (x[0], x[1]))
    with atomic.building_dir(target) as tmp:
        (tmp / "reference.rttm").write_text("".join(f"{x[2]}\n" for x in lines))
        atomic.write_csv(tmp / "recordings.csv", pd.DataFrame(rows))
        atomic.write_json(tmp / "info.json", {**info, "name": name, "group_by": group_by, "seed": seed,
                                              "n_recordings": len(rows)})  # fmt: skip
    return target


def import_longform(kind: str, source: str | Path, name: str, reference: str | Path | None = None,
                    group_by: str = "speaker", seed: int = 0, force: bool = False) -> Path:  # fmt: skip
    """Import long recordings with references (`kind`: rttm, csv or lhotse) as long-form dataset `name`."""
    source = Path(source).expanduser()
    ref = Path(reference).expanduser() if reference else None
    if kind != "lhotse" and not source.is_dir():
        raise LongformError(f"{source}: the {kind} importer takes the folder of recordings")
    audio, turns = read_reference(kind, source, ref)
    info = {"kind": f"import:{kind}", "source": str(source.resolve()), "reference": str(ref.resolve()) if ref else ""}
    return save_longform(name, audio, turns, info, group_by=group_by, seed=seed, force=force)
