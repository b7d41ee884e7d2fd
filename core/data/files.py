"""Finding audio files under a folder a user names: bounded, never following links, and honest about skips.

A path typed into a page or a flag may point anywhere: at a tree with symbolic-link loops, at
a system tree such as /proc (endless or unreadable), at a folder named like an audio file.
The walk never follows links to folders, stops at a depth and a file count, refuses system
trees outright, and returns every entry it passed over with the reason, so an importer can
report each skipped file instead of dropping it silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import LabError

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3"}
SYSTEM_TREES = ("/proc", "/sys", "/dev", "/run", "/boot")
MAX_DEPTH = 8
MAX_FILES = 1_000_000


@dataclass
class Found:
    """Audio files found, in sorted order, and what was passed over ('path: reason')."""

    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def check_folder(path: str | os.PathLike[str], what: str = "folder") -> Path:
    """`path` as an existing folder outside the system trees; a LabError saying what is wrong otherwise."""
    if not str(path).strip():
        raise LabError(f"give the {what}: a folder path")
    p = Path(path).expanduser()
    resolved = p.resolve()
    if any(resolved == Path(t) or Path(t) in resolved.parents for t in SYSTEM_TREES):
        raise LabError(f"{p}: a system tree ({resolved}), not a {what}; the lab does not read it")
    if not p.exists():
        raise LabError(f"{what} {str(p)!r} not found")
    if not p.is_dir():
        raise LabError(f"{what} {str(p)!r} is a file; expected a folder")
    return p


def audio_files(folder: str | os.PathLike[str], recursive: bool = True, what: str = "folder") -> Found:
    """The audio files under `folder` (by extension), and every entry passed over with its reason."""
    root = check_folder(folder, what)
    found = Found()
    base_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=lambda e: found.skipped.append(
        f"{e.filename}: unreadable ({e.strerror})")):  # fmt: skip
        here = Path(dirpath)
        for d in list(dirnames):
            p = here / d
            if p.is_symlink():
                found.skipped.append(f"{p}: a link to a folder (not followed)")
                dirnames.remove(d)
            elif p.suffix.lower() in AUDIO_EXTENSIONS:
                found.skipped.append(f"{p}: a folder named like an audio file")
        if not recursive:
            dirnames.clear()
        elif len(here.parts) - base_depth >= MAX_DEPTH:
            for d in dirnames:
                found.skipped.append(f"{here / d}: deeper than {MAX_DEPTH} levels (not searched)")
            dirnames.clear()
        dirnames.sort()
        for f in sorted(filenames):
            p = here / f
            if p.suffix.lower() not in AUDIO_EXTENSIONS:
                continue
            if p.is_symlink() and not p.exists():
                found.skipped.append(f"{p}: a broken link")
            elif not p.is_file():
                found.skipped.append(f"{p}: not a regular file")
            else:
                found.files.append(p)
                if len(found.files) > MAX_FILES:
                    raise LabError(f"{root}: more than {MAX_FILES:,} audio files; import a smaller folder")
    found.files.sort()
    return found


def noise_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The audio files of a noise folder (searched recursively); an error when there are none."""
    found = audio_files(folder, what="noise folder")
    if not found.files:
        note = f" ({len(found.skipped)} entries passed over, e.g. {found.skipped[0]})" if found.skipped else ""
        kinds = "/".join(sorted(AUDIO_EXTENSIONS, key=lambda e: (e != ".wav", e)))
        raise LabError(f"noise folder {str(folder)!r} holds no {kinds} files{note}")
    return found.files
