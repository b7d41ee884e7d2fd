"""Importers for real corpora. Audio is read in place (paths in the manifest are absolute);
every clip is decoded once at import to check it and to record duration and content hash.

Formats:
  esc50        ESC-50 style folder: meta/esc50.csv + audio/ (all non-speech; group = src_file)
  voxconverse  wav + RTTM: speaker turns become speech clips (group = file:speaker);
               optionally the gaps between turns become non-speech clips
  folder       <root>/<label>/<group>/*.wav (label is speech or nonspeech)
  csv          a CSV manifest with clip_id, path, label, group_id, base_clip_id
  fsdd         Free Spoken Digit Dataset: recordings/<digit>_<speaker>_<index>.wav
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from core.data.audio import content_hash, load_audio
from core.data.datasets import LABELS, dataset_root, resolve_path, save_dataset, validate_manifest
from core.errors import AudioError, LabError, ManifestError

Progress = Callable[[float, str], None]
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3"}


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise LabError(f"{path}: {what} folder not found")
    return path


def scan_esc50(root: Path) -> pd.DataFrame:
    meta = root / "meta" / "esc50.csv"
    if not meta.exists():
        raise ManifestError(f"{meta}: not found (an ESC-50 folder has meta/esc50.csv and audio/)")
    df = pd.read_csv(meta, dtype=str)
    need = ["filename", "category", "src_file"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ManifestError(f"{meta}: missing column(s) {missing}; found {list(df.columns)}")
    audio = _require_dir(root / "audio", "ESC-50 audio")
    stem = df["filename"].str.rsplit(".", n=1).str[0]
    return pd.DataFrame(
        {
            "clip_id": "esc50-" + stem,
            "path": [str((audio / f).resolve()) for f in df["filename"]],
            "label": "nonspeech",
            "group_id": "esc50-" + df["src_file"].astype(str),
            "base_clip_id": "esc50-" + stem,
            "category": df["category"],
            "fold": df["fold"] if "fold" in df.columns else "",
        }
    )


def parse_rttm(path: Path) -> pd.DataFrame:
    """SPEAKER lines of an RTTM file as (file, start, end, speaker); errors name the line."""
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0] != "SPEAKER":
            continue
        try:
            start, dur = float(parts[3]), float(parts[4])
            speaker = parts[7]
        except (IndexError, ValueError) as exc:
            raise ManifestError(f"{path}: line {i}: not an RTTM SPEAKER line ({line.strip()!r})") from exc
        if dur <= 0:
            continue
        rows.append({"file": parts[1], "start": start, "end": start + dur, "speaker": speaker})
    return pd.DataFrame(rows, columns=["file", "start", "end", "speaker"])


def scan_voxconverse(
    root: Path, min_seconds: float = 0.2, max_seconds: float = 10.0, include_gaps: bool = False, min_gap: float = 0.5
) -> pd.DataFrame:
    """Speech clips from speaker turns (long turns cut into ≤ max_seconds pieces)."""
    import soundfile as sf

    wav_dir = root / "audio" if (root / "audio").is_dir() else root
    rttm_dir = root / "rttm" if (root / "rttm").is_dir() else root
    rttms = sorted(rttm_dir.glob("*.rttm"))
    if not rttms:
        raise ManifestError(f"{rttm_dir}: no .rttm files (expected <name>.rttm beside <name>.wav)")
    rows = []
    for rttm in rttms:
        wav = wav_dir / f"{rttm.stem}.wav"
        if not wav.exists():
            raise ManifestError(f"{rttm}: no matching audio file {wav}")
        turns = parse_rttm(rttm)
        spans = [
            (
                t.start,
                t.end,
                "speech",
                f"vox-{rttm.stem}-{t.speaker}",
                f"vox-{rttm.stem}-{t.speaker}-{int(round(t.start * 1000)):07d}",
            )
            for t in turns.itertuples()
        ]
        if include_gaps:
            total = sf.info(str(wav)).duration
            cursor = 0.0
            for s, e in [*sorted(zip(turns["start"], turns["end"])), (total, total)]:
                if s - cursor >= min_gap:
                    spans.append(
                        (
                            cursor,
                            s,
                            "nonspeech",
                            f"vox-{rttm.stem}-background",
                            f"vox-{rttm.stem}-gap-{int(round(cursor * 1000)):07d}",
                        )
                    )
                cursor = max(cursor, e)
        for start, end, label, group, stem in spans:
            # long spans are cut into pieces of at most max_seconds; pieces shorter than min_seconds dropped
            for k, s in enumerate(np.arange(start, end, max_seconds)):
                e = min(s + max_seconds, end)
                if e - s >= min_seconds:
                    rows.append(
                        {
                            "clip_id": f"{stem}-{k}",
                            "path": str(wav.resolve()),
                            "label": label,
                            "group_id": group,
                            "base_clip_id": f"{stem}-{k}",
                            "start_s": round(s, 3),
                            "end_s": round(e, 3),
                        }
                    )
    return pd.DataFrame(rows)


def scan_folder(root: Path) -> pd.DataFrame:
    rows = []
    for label_dir in sorted(p for p in _require_dir(root, "dataset").iterdir() if p.is_dir()):
        if label_dir.name not in LABELS:
            raise ManifestError(f"{label_dir}: label folder must be one of {LABELS}, found {label_dir.name!r}")
        for group_dir in sorted(p for p in label_dir.iterdir() if p.is_dir()):
            for f in _audio_files(group_dir):
                cid = f"{label_dir.name}-{group_dir.name}-{f.stem}"
                rows.append(
                    {
                        "clip_id": cid,
                        "path": str(f.resolve()),
                        "label": label_dir.name,
                        "group_id": group_dir.name,
                        "base_clip_id": cid,
                    }
                )
    if not rows:
        raise ManifestError(f"{root}: no audio under <label>/<group>/ (labels: {', '.join(LABELS)})")
    return pd.DataFrame(rows)


def scan_csv(csv_path: Path) -> pd.DataFrame:
    if not csv_path.is_file():
        raise ManifestError(f"{csv_path}: manifest not found")
    df = validate_manifest(pd.read_csv(csv_path, dtype=str), source=str(csv_path))
    df["path"] = [str(resolve_path(csv_path.parent, p).resolve()) for p in df["path"]]
    return df


_FSDD_NAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>[A-Za-z]+)_(?P<index>\d+)$")


def scan_fsdd(root: Path) -> pd.DataFrame:
    rec = root / "recordings" if (root / "recordings").is_dir() else _require_dir(root, "FSDD")
    rows = []
    for f in _audio_files(rec):
        m = _FSDD_NAME.match(f.stem)
        if not m:
            raise ManifestError(f"{f}: name is not <digit>_<speaker>_<index>.wav")
        rows.append(
            {
                "clip_id": f"fsdd-{f.stem}",
                "path": str(f.resolve()),
                "label": "speech",
                "group_id": f"fsdd-{m['speaker']}",
                "base_clip_id": f"fsdd-{f.stem}",
                "digit": m["digit"],
            }
        )
    return pd.DataFrame(rows)


SCANNERS: dict[str, Callable[..., pd.DataFrame]] = {
    "esc50": scan_esc50,
    "voxconverse": scan_voxconverse,
    "folder": scan_folder,
    "csv": scan_csv,
    "fsdd": scan_fsdd,
}


def inspect_clips(
    manifest: pd.DataFrame, skip_bad: bool = False, progress: Progress | None = None
) -> tuple[pd.DataFrame, list[str], Counter]:
    """Decode every clip: fill duration_ms and content_hash, collect problems and load notes.

    Returns (manifest of good clips, problems as 'clip (file): reason', counts of notes).
    With skip_bad=False any problem raises AudioError listing them all.
    """
    manifest = validate_manifest(manifest, source="import")
    keep, problems, notes = [], [], Counter()
    durations, hashes = [], []
    n = len(manifest)
    for i, row in enumerate(manifest.itertuples(index=False)):
        start = None if pd.isna(row.start_s) else float(row.start_s)
        end = None if pd.isna(row.end_s) else float(row.end_s)
        try:
            clip = load_audio(row.path, start_s=start, end_s=end)
        except AudioError as exc:
            problems.append(f"clip {row.clip_id}: {exc}")
            keep.append(False)
            durations.append(np.nan)
            hashes.append("")
            continue
        notes.update(clip.notes)
        keep.append(True)
        durations.append(round(clip.duration_ms, 3))
        hashes.append(content_hash(clip.samples))
        if progress and (i % 100 == 0 or i == n - 1):
            progress((i + 1) / n, f"checked {i + 1}/{n} clips")
    if problems and not skip_bad:
        shown = "\n  ".join(problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise AudioError(
            f"{len(problems)} clip(s) cannot be used:\n  {shown}{more}\n"
            "Fix or remove them, or import with skip_bad (CLI: --skip-bad)."
        )
    manifest = manifest.assign(duration_ms=durations, content_hash=hashes)
    return manifest[np.array(keep)].reset_index(drop=True), problems, notes


def import_dataset(
    kind: str,
    source: str | Path,
    name: str,
    *,
    skip_bad: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    **options,
) -> Path:
    """Scan `source` with the `kind` importer, check every clip and save data/datasets/<name>."""
    if kind not in SCANNERS:
        raise LabError(f"unknown importer {kind!r}; choose from {', '.join(SCANNERS)}")
    root = dataset_root(name)
    if root.exists() and not force:
        raise LabError(f"dataset {name!r} already exists at {root}; choose another name or use force")
    source = Path(source).expanduser().resolve()
    scanned = SCANNERS[kind](source, **options)
    if scanned.empty:
        raise ManifestError(f"{source}: the {kind} importer found no clips")
    manifest, problems, notes = inspect_clips(scanned, skip_bad=skip_bad, progress=progress)
    info = {
        "name": name,
        "kind": f"import:{kind}",
        "source": str(source),
        "options": options,
        "n_clips": len(manifest),
        "skipped": problems,
        "load_notes": dict(notes),
    }
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.importing-", dir=root.parent))
    try:
        save_dataset(tmp, manifest, info)
        if root.exists():
            shutil.rmtree(root)
        tmp.rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
