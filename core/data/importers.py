"""Importers for real corpora. Audio is read in place (paths in the manifest are absolute);
every clip is decoded once at import to check it and to record duration and content hash.

Formats (and in corpora.py: hf, lhotse, musan):
  esc50        ESC-50 style folder: meta/esc50.csv + audio/ (all non-speech; group = src_file)
  voxconverse  wav + RTTM: speaker turns become speech clips (group = file:speaker);
               optionally the gaps between turns become non-speech clips
  folder       <root>/<label>/<group>/*.wav (label is speech or nonspeech)
  csv          a CSV manifest with clip_id, path, label, group_id, base_clip_id
  fsdd         Free Spoken Digit Dataset: recordings/<digit>_<speaker>_<index>.wav
"""

from __future__ import annotations

import inspect
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from core import atomic
from core.csvfiles import read_csv
from core.data.audio import content_hash, load_audio
from core.data.corpora import gaps, scan_hf, scan_lhotse, scan_musan, segment_rows
from core.data.datasets import LABELS, dataset_root, resolve_path, save_dataset, validate_manifest
from core.data.files import audio_files, check_folder
from core.errors import AudioError, LabError, ManifestError

Progress = Callable[[float, str], None]


def _audio_files(folder: Path, skipped: list[str]) -> list[Path]:
    """The audio files directly in `folder`; what was passed over goes to `skipped` (reported, not dropped)."""
    found = audio_files(folder, recursive=False)
    skipped += found.skipped
    return found.files


def _require_dir(path: Path, what: str) -> Path:
    return check_folder(path, f"{what} folder")


def scan_esc50(root: Path) -> pd.DataFrame:
    meta = root / "meta" / "esc50.csv"
    if not meta.exists():
        raise ManifestError(f"{meta}: not found (an ESC-50 folder has meta/esc50.csv and audio/)")
    df = read_csv(meta, "ESC-50 metadata", ["filename", "category", "src_file"], dtype=str, error=ManifestError)
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
            (t.start, t.end, "speech", f"vox-{rttm.stem}-{t.speaker}",
             f"vox-{rttm.stem}-{t.speaker}-{int(round(t.start * 1000)):07d}")
            for t in turns.itertuples()
        ]  # fmt: skip
        if include_gaps:
            total = sf.info(str(wav)).duration
            for a, b in gaps(list(zip(turns["start"], turns["end"])), total, min_gap):
                spans.append((a, b, "nonspeech", f"vox-{rttm.stem}-background",
                              f"vox-{rttm.stem}-gap-{int(round(a * 1000)):07d}"))  # fmt: skip
        rows += segment_rows(str(wav.resolve()), spans, max_seconds, min_seconds)
    return pd.DataFrame(rows)


def scan_folder(root: Path) -> pd.DataFrame:
    rows, skipped = [], []
    for entry in sorted(_require_dir(root, "dataset").iterdir()):
        if not entry.is_dir() or entry.is_symlink():
            skipped.append(f"{entry}: not a label folder ({', '.join(LABELS)})")
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        if label_dir.name not in LABELS:
            raise ManifestError(f"{label_dir}: label folder must be one of {LABELS}, found {label_dir.name!r}")
        for entry in sorted(label_dir.iterdir()):
            if not entry.is_dir() or entry.is_symlink():
                skipped.append(f"{entry}: not in a group folder (<label>/<group>/<clip>)")
        for group_dir in sorted(p for p in label_dir.iterdir() if p.is_dir() and not p.is_symlink()):
            for f in _audio_files(group_dir, skipped):
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
    out = pd.DataFrame(rows)
    out.attrs["skipped"] = skipped
    return out


def scan_csv(csv_path: Path) -> pd.DataFrame:
    df = validate_manifest(read_csv(csv_path, "manifest", dtype=str, error=ManifestError), source=str(csv_path))
    df["path"] = [str(resolve_path(csv_path.parent, p).resolve()) for p in df["path"]]
    return df


_FSDD_NAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>[A-Za-z]+)_(?P<index>\d+)$")


def scan_fsdd(root: Path) -> pd.DataFrame:
    rec = root / "recordings" if (root / "recordings").is_dir() else _require_dir(root, "FSDD")
    rows, skipped = [], []
    for f in _audio_files(rec, skipped):
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
    out = pd.DataFrame(rows)
    out.attrs["skipped"] = skipped
    return out


SCANNERS: dict[str, Callable[..., pd.DataFrame]] = {
    "esc50": scan_esc50,
    "voxconverse": scan_voxconverse,
    "folder": scan_folder,
    "csv": scan_csv,
    "fsdd": scan_fsdd,
    "hf": scan_hf,
    "lhotse": scan_lhotse,
    "musan": scan_musan,
}
FILE_SOURCES = ("csv", "lhotse")  # importers whose source is a file, not a folder


def inspect_clips(
    manifest: pd.DataFrame, skip_bad: bool = False, progress: Progress | None = None
) -> tuple[pd.DataFrame, list[str], Counter]:
    """Decode every clip: fill duration_ms and content_hash, collect problems and load notes.

    Returns (manifest of good clips, problems as 'clip (file): reason', counts of notes).
    With skip_bad=False any problem raises AudioError listing them all.
    """
    manifest = validate_manifest(manifest, source="import")
    keep, problems, notes = [], [], Counter()
    durations, hashes, ends = [], [], manifest["end_s"].to_numpy(dtype=float, copy=True)
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
        notes.update(
            m if not m.startswith("segment end") else "segment ends past its file's end: cut there" for m in clip.notes
        )
        if clip.end_s is not None:  # the manifest says where the segment really ends, not where it was asked to
            ends[i] = clip.end_s
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
    manifest = manifest.assign(duration_ms=durations, content_hash=hashes, end_s=ends)
    return manifest[np.array(keep)].reset_index(drop=True), problems, notes


def check_inside(manifest: pd.DataFrame, base: Path, kind: str) -> None:
    """Refuse audio paths that leave the manifest's (or source) folder, links followed, naming them.

    Why: a manifest is data someone else may have written; `../../etc/…` or an absolute path would
    make the lab open any file the server can read (a lab served to a network checks the folder a
    user names, not the files a manifest inside it lists).
    """
    base = base.resolve()
    out = [(i, p) for i, p in enumerate(manifest["path"]) if not Path(p).resolve().is_relative_to(base)]
    if not out:
        return
    where = (lambda i: f"line {i + 2}") if kind == "csv" else (lambda i: f"clip {manifest['clip_id'].iloc[i]}")
    shown = "; ".join(f"{where(i)}: {p}" for i, p in out[:5]) + ("; …" if len(out) > 5 else "")
    raise ManifestError(
        f"{len(out)} audio path(s) lie outside {base}, the folder the {kind} source is in: {shown}. The lab "
        "reads a manifest's audio from under its own folder only; move the manifest up to a folder above the "
        "audio, or from the command line pass --paths-outside-ok"
    )


def import_dataset(
    kind: str,
    source: str | Path,
    name: str,
    *,
    skip_bad: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    cut_seconds: float | None = None,
    paths_outside_ok: bool = False,
    **options,
) -> Path:
    """Scan `source` with the `kind` importer, check every clip and save data/datasets/<name>.

    `cut_seconds`: clips longer than this are cut into pieces of at most this length (see
    `cut_long_clips`), so long recordings fit a model's window (Qwen2-Audio: 30 s).
    `paths_outside_ok` (the command line only, never a page): audio listed by a manifest may lie
    outside the manifest's folder; otherwise such paths are refused (`check_inside`).
    """
    if cut_seconds is not None and not (np.isfinite(cut_seconds) and cut_seconds >= 1):
        raise LabError(f"cut length must be at least 1 s, got {cut_seconds}")
    if kind not in SCANNERS:
        raise LabError(f"unknown importer {kind!r}; choose from {', '.join(SCANNERS)}")
    root = dataset_root(name)
    if root.exists() and not force:
        raise LabError(f"dataset {name!r} already exists at {root}; choose another name or use force")
    source = Path(source).expanduser()
    if kind in FILE_SOURCES:
        if source.is_dir():
            raise LabError(f"{source}: the {kind} importer takes a manifest file, not a folder")
        check_folder(source.parent, "manifest's folder")
    elif kind == "hf" and not source.exists():
        source = Path(str(options.pop("hub_id", "")) or str(source))  # an id: looked up in the local cache
    else:
        check_folder(source, "source folder")
    source = source.resolve() if source.exists() else source
    from core import atomic
    from core.atomic import building_dir, locked

    # one import of a name at a time (a second waits, then replaces or is refused): never a crash
    with locked(root.parent / f".{name}.lock", f"dataset {name!r}"):
        atomic.clean_debris(root.parent)  # what a killed import left
        if root.exists() and not force:
            raise LabError(f"dataset {name!r} already exists at {root}; choose another name or use force")
        with building_dir(root) as tmp:
            # an importer whose audio is not in files of its own (a Hugging Face dataset's embedded
            # bytes) writes it into the dataset being built: it appears with the dataset or not at all
            stage = {"stage": tmp} if "stage" in inspect.signature(SCANNERS[kind]).parameters else {}
            scanned = SCANNERS[kind](source, **stage, **options)
            if scanned.empty:
                raise ManifestError(f"{source}: the {kind} importer found no clips")
            if kind in FILE_SOURCES and not paths_outside_ok:  # what a manifest lists; folders are walked, not listed
                check_inside(scanned, source.parent, kind)
            passed_over = list(scanned.attrs.get("skipped", []))
            notes_extra = dict(scanned.attrs.get("summary", {}))
            manifest, problems, notes = inspect_clips(scanned, skip_bad=skip_bad, progress=progress)
            if cut_seconds is not None:
                manifest, cut_problems, cut_note = cut_long_clips(manifest, cut_seconds, skip_bad, progress)
                problems += cut_problems
                notes_extra.update(cut_note)
            problems = passed_over + problems
            inside = [Path(p).is_relative_to(tmp) for p in manifest["path"]]
            manifest["path"] = [str(Path(p).relative_to(tmp)) if i else p for p, i in zip(manifest["path"], inside)]
            info = {
                "name": name,
                "kind": f"import:{kind}",
                "source": str(source),
                "options": {**options, **({"cut_seconds": cut_seconds} if cut_seconds is not None else {})},
                "n_clips": len(manifest),
                "skipped": problems,
                "load_notes": dict(notes),
                **({"summary": notes_extra} if notes_extra else {}),
            }
            save_dataset(tmp, manifest, info)
            for tag_rows in scanned.attrs.get("tags", []):  # e.g. MUSAN's music with vocals
                _write_tags(tmp, manifest, *tag_rows)
    return root


def cut_long_clips(
    manifest: pd.DataFrame, seconds: float, skip_bad: bool = False, progress: Progress | None = None
) -> tuple[pd.DataFrame, list[str], dict[str, str]]:
    """Clips longer than `seconds` cut into pieces of at most `seconds` (a last piece under 0.2 s dropped).

    Each piece is a segment (start_s, end_s) of the same file, decoded and hashed on its own.
    The pieces keep their clip's `base_clip_id` and group, so a split keeps a recording's pieces
    on one side: they share its speaker and its room. Returns (manifest, problems, note).
    """
    long = manifest["duration_ms"].to_numpy() > seconds * 1000 + 1e-6
    if not long.any():
        return manifest, [], {}
    rows = []
    for row in manifest[long].to_dict("records"):
        start = 0.0 if pd.isna(row["start_s"]) else float(row["start_s"])
        span = (start, start + row["duration_ms"] / 1000, row["label"], row["group_id"], row["clip_id"])
        rows += [{**row, **piece, "base_clip_id": row["base_clip_id"]}
                 for piece in segment_rows(row["path"], [span], seconds, 0.2)]  # fmt: skip
    pieces, problems, _ = inspect_clips(pd.DataFrame(rows), skip_bad=skip_bad, progress=progress)
    out = validate_manifest(pd.concat([manifest[~long], pieces], ignore_index=True), source="cut clips")
    note = {"cut into pieces": f"{int(long.sum())} clip(s) longer than {seconds:g} s cut into {len(pieces)} pieces"}
    return out, problems, note


def _write_tags(root: Path, manifest: pd.DataFrame, tag: str, clip_ids: list[str], note: str) -> None:
    """Tag imported clips (Errors page, --exclude-tags) so a flag of the source is seen, not lost."""
    from datetime import UTC, datetime

    from core.data.annotations import COLUMNS

    keep = [c for c in clip_ids if c in set(manifest["clip_id"])]
    if keep:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        rows = pd.DataFrame({"clip_id": keep, "tag": tag, "note": note, "created": now})[COLUMNS]
        atomic.write_csv(root / "annotations.csv", rows)
