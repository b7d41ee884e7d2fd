"""Importers for corpora as researchers already keep them: Hugging Face datasets, Lhotse manifests, MUSAN.

Each returns the rows of a manifest, like the importers in `importers.py`, and is registered there.
- hf: a dataset saved with `save_to_disk` (or already in the local hub cache; nothing is
  downloaded). Its audio column is read without decoding by `datasets` (no torchcodec): a file
  the row points to that exists here is read in place; embedded bytes are written once, as the
  file they were, into the dataset's `audio/` folder. Labels come from a column whose values are
  mapped to speech/non-speech; groups from a column, or explicitly per clip (then the dataset
  records that no split of it can be speaker-safe, and the audit says so).
- lhotse: a RecordingSet and a SupervisionSet; supervised segments become speech clips grouped
  by speaker, optional gaps between them non-speech, long segments cut to a clip length.
- musan: speech/music/noise with their sub-corpora as groups; music and noise are non-speech,
  and music with vocals (MUSAN's ANNOTATIONS) is tagged `music with vocals`, not silently labelled.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from core.data.files import audio_files
from core.errors import LabError, ManifestError

# lhotse and datasets are imported inside functions: importing this module stays cheap

CLIP_LEVEL_GROUPS = "clip-level groups: no split of this dataset can keep a speaker or source on one side"
VOCALS_TAG = "music with vocals"


def segment_rows(path: str, spans, max_seconds: float, min_seconds: float) -> list[dict]:
    """Manifest rows for (start, end, label, group, stem) spans of one file, long ones cut into pieces."""
    rows = []
    for start, end, label, group, stem in spans:
        for k, s in enumerate(np.arange(start, end, max_seconds)):
            e = min(s + max_seconds, end)
            if e - s >= min_seconds:
                cid = f"{stem}-{k}"
                rows.append({"clip_id": cid, "path": path, "label": label, "group_id": group, "base_clip_id": cid,
                             "start_s": round(float(s), 3), "end_s": round(float(e), 3)})  # fmt: skip
    return rows


def gaps(turns: Sequence[tuple[float, float]], total: float, min_gap: float) -> list[tuple[float, float]]:
    """Stretches of at least `min_gap` seconds covered by no turn, in [0, total]."""
    out, cursor = [], 0.0
    for s, e in [*sorted(turns), (total, total)]:
        if s - cursor >= min_gap:
            out.append((cursor, s))
        cursor = max(cursor, e)
    return out


# ---------------------------------------------------------------- Hugging Face datasets


def _open_hf(source: Path | str, hf_split: str):
    """A `datasets.Dataset` from a save_to_disk folder or the local cache; several splits are joined."""
    import datasets

    path = Path(str(source)).expanduser()
    if path.is_dir():
        try:
            loaded = datasets.load_from_disk(str(path))
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise LabError(f"{path}: not a dataset saved with save_to_disk ({exc})") from exc
    else:
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            loaded = datasets.load_dataset(str(source))
        except Exception as exc:  # any failure to find it offline: one message saying what to do
            raise LabError(
                f"Hugging Face dataset {str(source)!r} is neither a folder here nor in the local cache, and "
                "nothing can be downloaded here. On a machine with internet: `datasets.load_dataset(ID)"
                ".save_to_disk(DIR)`, copy DIR here and import DIR."
            ) from exc
    if isinstance(loaded, datasets.DatasetDict):
        names = [hf_split] if hf_split else list(loaded)
        missing = [n for n in names if n not in loaded]
        if missing:
            raise LabError(f"{source}: no split {missing[0]!r}; it has {', '.join(loaded)}")
        parts = [loaded[n].add_column("hf_split", [n] * len(loaded[n])) for n in names]
        return datasets.concatenate_datasets(parts)
    return loaded


def audio_column(ds) -> str:
    import datasets

    cols = [name for name, f in ds.features.items() if isinstance(f, datasets.Audio)]
    if not cols:
        raise LabError(f"the dataset has no Audio column (columns: {', '.join(ds.column_names)})")
    return cols[0]


def _column_values(ds, column: str) -> list[str]:
    """A column as strings; a ClassLabel column gives its names, not its integers."""
    import datasets

    if column not in ds.column_names:
        raise ManifestError(f"no column {column!r}; the dataset has {', '.join(ds.column_names)}")
    feature, values = ds.features[column], ds[column]
    if isinstance(feature, datasets.ClassLabel):
        return [feature.int2str(int(v)) for v in values]
    return ["" if v is None else str(v) for v in values]


def hf_preview(source, label_column: str, hf_split: str = "", rows: int = 8) -> dict:
    """What an import would see, before anything is written: columns, first rows, the label values."""
    ds = _open_hf(source, hf_split)
    audio = audio_column(ds)
    head = ds.select(range(min(rows, len(ds)))).remove_columns([audio]).to_pandas()
    values = sorted(set(_column_values(ds, label_column))) if label_column in ds.column_names else []
    return {"rows": len(ds), "columns": ds.column_names, "audio": audio, "head": head, "label_values": values}


def scan_hf(
    source: Path, stage: Path, label_column: str = "label", speech_values: Sequence[str] = (),
    nonspeech_values: Sequence[str] = (), group_column: str = "", clip_groups: bool = False, hf_split: str = "",
) -> pd.DataFrame:  # fmt: skip
    """Rows of a Hugging Face dataset; embedded audio is written under `stage`/audio (the dataset being built)."""
    import datasets

    ds = _open_hf(source, hf_split)
    audio = audio_column(ds)
    labels = _column_values(ds, label_column)
    speech = {str(v) for v in speech_values}
    if not speech:
        raise ManifestError(
            f"say which values of {label_column!r} mean speech (--speech-values); its values: "
            f"{', '.join(sorted(set(labels))[:20])}"
        )
    unknown = speech - set(labels)
    if unknown:
        raise ManifestError(f"speech value(s) {sorted(unknown)} do not occur in column {label_column!r}")
    nonspeech = {str(v) for v in nonspeech_values}
    if not group_column and not clip_groups:
        raise ManifestError(
            "give the column that holds the speaker or source (--group-column), or accept clip-level groups "
            "(--clip-groups): then no split can keep a speaker on one side, and the audit will say so"
        )
    groups = _column_values(ds, group_column) if group_column else None
    raw = ds.cast_column(audio, datasets.Audio(decode=False))
    extra = _scalar_columns(raw.remove_columns([audio]).to_pandas())
    own_ids = (
        "clip_id" in extra and extra["clip_id"].astype(str).is_unique and (extra["clip_id"].astype(str) != "").all()
    )
    rows, skipped = [], []
    (stage / "audio").mkdir(parents=True, exist_ok=True)
    for i, item in enumerate(raw[audio]):
        where = f"row {i}" + (f" ({extra['hf_split'][i]})" if "hf_split" in extra else "")
        label = labels[i]
        if label in speech:
            lab = "speech"
        elif not nonspeech or label in nonspeech:
            lab = "nonspeech"
        else:
            skipped.append(f"{where}: label {label!r} is neither a speech nor a non-speech value")
            continue
        path = _row_audio(item, stage / "audio", i, where)
        if path is None:
            skipped.append(f"{where}: no audio (neither bytes nor a file here)")
            continue
        group = f"clip-{i}" if clip_groups and not groups else groups[i]
        if not group:
            raise ManifestError(f"{where}: empty {group_column!r}")
        cid = str(extra["clip_id"][i]) if own_ids else f"hf-{i:07d}"
        base = extra["base_clip_id"][i] if "base_clip_id" in extra and own_ids else cid
        row = {k: extra[k][i] for k in extra if k not in ("path", "duration_ms", "content_hash")}
        row.update(clip_id=cid, path=str(path), label=lab, group_id=str(group), base_clip_id=str(base))
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["skipped"] = skipped
    out.attrs["summary"] = {"clip_level_groups": CLIP_LEVEL_GROUPS} if clip_groups and not groups else {}
    return out


def _scalar_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Columns a manifest can hold: lists and dicts become JSON text."""
    import json

    for col in df.columns:
        if df[col].dtype == object and df[col].map(lambda v: isinstance(v, (list, dict, np.ndarray))).any():
            df[col] = df[col].map(lambda v: json.dumps(v.tolist() if isinstance(v, np.ndarray) else v, default=str))
    return df


def _row_audio(item: dict | None, folder: Path, i: int, where: str) -> Path | None:
    """The row's audio as a file: the file it names when that exists here, else its bytes written once."""
    if not item:
        return None
    named = item.get("path")
    if not item.get("bytes") and named and Path(named).is_file():
        return Path(named).resolve()
    data = item.get("bytes")
    if not data:
        return None
    suffix = Path(named).suffix.lower() if named and Path(named).suffix else ".wav"
    if suffix not in (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"):
        raise ManifestError(f"{where}: audio in {suffix!r} bytes, which the lab cannot read")
    target = folder / f"{i:07d}{suffix}"
    target.write_bytes(data)  # inside the dataset being built: appears whole with it, or not at all
    return target


# ---------------------------------------------------------------- Lhotse


def scan_lhotse(
    source: Path, supervisions: str = "", include_gaps: bool = False, max_seconds: float = 10.0,
    min_seconds: float = 0.2, min_gap: float = 0.5,
) -> pd.DataFrame:  # fmt: skip
    """Supervised segments as speech clips grouped by speaker; gaps between them optionally non-speech."""
    from lhotse import load_manifest

    if not supervisions:
        raise ManifestError("give the supervisions manifest too: data import lhotse RECORDINGS SUPERVISIONS")
    try:
        recordings, sups = load_manifest(source), load_manifest(supervisions)
    except Exception as exc:  # lhotse raises many kinds for a file that is not its manifest
        raise ManifestError(f"not a Lhotse manifest pair ({source}, {supervisions}): {exc}") from exc
    by_rec: dict[str, list] = {}
    for s in sups:
        by_rec.setdefault(s.recording_id, []).append(s)
    rows: list[dict] = []
    for rec_id, segs in by_rec.items():
        if rec_id not in recordings:
            raise ManifestError(f"supervision {segs[0].id}: recording {rec_id!r} is not in {source}")
        rec = recordings[rec_id]
        src = rec.sources[0]
        if src.type != "file":
            raise ManifestError(f"recording {rec_id}: its audio is a {src.type!r} source; the lab reads files")
        path = str(Path(src.source).expanduser().resolve())
        spans = []
        for s in segs:
            if s.start < 0 or s.end > rec.duration + 1e-3:
                raise ManifestError(f"supervision {s.id}: {s.start:.3f}–{s.end:.3f} s lies outside {rec_id} "
                                    f"({rec.duration:.3f} s)")  # fmt: skip
            speaker = s.speaker or f"{rec_id}-unknown"
            spans.append((s.start, s.end, "speech", speaker, f"lh-{s.id}"))
        if include_gaps:
            for a, b in gaps([(s.start, s.end) for s in segs], rec.duration, min_gap):
                spans.append((a, b, "nonspeech", f"{rec_id}-background", f"lh-{rec_id}-gap-{int(round(a * 1000)):07d}"))
        rows += segment_rows(path, spans, max_seconds, min_seconds)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- MUSAN

MUSAN_LABELS = {"speech": "speech", "music": "nonspeech", "noise": "nonspeech"}


def _vocals(annotations: Path) -> dict[str, bool]:
    """MUSAN music ANNOTATIONS: file, genre, vocals Y/N, artist … → file stem → has vocals."""
    out = {}
    for line in annotations.read_text(errors="replace").splitlines():
        parts = line.split()
        flags = [p for p in parts[1:4] if p in ("Y", "N")]
        if parts and flags:
            out[parts[0]] = flags[0] == "Y"
    return out


def scan_musan(source: Path) -> pd.DataFrame:
    """MUSAN's <category>/<sub-corpus>/*.wav; sub-corpora are the groups."""
    root = source / "musan" if (source / "musan").is_dir() else source
    found = [c for c in MUSAN_LABELS if (root / c).is_dir()]
    if not found:
        raise ManifestError(f"{root}: not MUSAN-shaped (expected speech/, music/ and/or noise/ folders)")
    rows, vocal_ids = [], []
    skipped = [f"{p}: not a MUSAN category ({', '.join(MUSAN_LABELS)}): passed over"
               for p in sorted(root.iterdir()) if p.is_dir() and p.name not in MUSAN_LABELS]  # fmt: skip
    for category in found:
        for sub in sorted(p for p in (root / category).iterdir() if p.is_dir() and not p.is_symlink()):
            vocals = _vocals(sub / "ANNOTATIONS") if category == "music" and (sub / "ANNOTATIONS").is_file() else {}
            listing = audio_files(sub, what=f"MUSAN {category}/{sub.name}")
            skipped += listing.skipped
            for f in listing.files:
                cid = f"musan-{category}-{sub.name}-{f.stem}"
                has_vocals = vocals.get(f.stem)
                rows.append({"clip_id": cid, "path": str(f.resolve()), "label": MUSAN_LABELS[category],
                             "group_id": f"musan-{category}-{sub.name}", "base_clip_id": cid, "source": category,
                             "vocals": "" if has_vocals is None else ("yes" if has_vocals else "no")})  # fmt: skip
                if has_vocals:
                    vocal_ids.append(cid)
    out = pd.DataFrame(rows)
    out.attrs["skipped"] = skipped
    out.attrs["tags"] = [
        (VOCALS_TAG, vocal_ids, "MUSAN ANNOTATIONS: vocals Y (labelled non-speech; review or exclude)")
    ]
    out.attrs["summary"] = {"music_with_vocals": len(vocal_ids)}
    return out
