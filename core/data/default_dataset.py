"""The embedded default dataset: built offline, deterministically, from a recipe in this file.

Speech comes from eSpeak NG voices (one group per voice), non-speech from procedural sound
classes and recordings shipped in packages (one group per source). Every base clip is cut to
several durations and mixed with noise at several SNRs; every variant keeps its
`base_clip_id` and is peak-normalised after mixing.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core import atomic
from core.data import audio, speech

# Kept light at import: groups are built in fresh worker processes, and scipy.signal,
# pandas and librosa would cost each of them seconds. Heavier modules are imported lazily.
PROCEDURAL_GROUPS = (
    "white-noise",
    "pink-noise",
    "brown-noise",
    "tones",
    "chirps",
    "clicks",
    "hum",
    "rain",
    "chords",
    "engine",
    "wind",
    "birdsong",
    "bells",
    "siren",
    "dtmf",
)
# Recorded effects shipped in the pygame wheel; house_lo is a music loop, the rest are effects.
RECORDING_GROUPS = ("boom.wav", "car_door.wav", "punch.wav", "whiff.wav", "house_lo.ogg", "secosmic_lo.wav")

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Recipe:
    """Everything that determines the dataset; saved in dataset.json with it."""

    seed: int = 20_261_122
    sample_rate: int = audio.TARGET_SR
    speech_bases_per_group: int = 5
    nonspeech_bases_per_group: int = 4  # 21 non-speech vs 16 speech groups: ~balanced clips
    base_seconds: float = 2.0  # length of a non-speech base clip
    durations_ms: tuple[int, ...] = (200, 500, 1000)
    snrs_db: tuple[float | None, ...] = (None, 20.0, 10.0, 0.0)  # None = clean
    noise_types: tuple[str, ...] = ("white", "pink")
    speech_groups: tuple[str, ...] = tuple(speech.VOICES)
    procedural_groups: tuple[str, ...] = PROCEDURAL_GROUPS
    recording_groups: tuple[str, ...] = RECORDING_GROUPS
    min_active_fraction: float = 0.6  # a crop must be at least this active where possible
    extra: dict = field(default_factory=dict, compare=False)


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def _rng(recipe: Recipe, *parts: str) -> np.random.Generator:
    return np.random.default_rng([recipe.seed, *(_stable_int(p) for p in parts)])


def group_ids(recipe: Recipe) -> list[tuple[str, str, str]]:
    """(group_id, label, kind) for every group of the recipe.

    `recipe.extra["group_prefix"]` names a separate pool's non-speech groups apart (the base
    model's pool uses the same generators with other seeds); pool speakers have own names.
    """
    tag = recipe.extra.get("group_prefix", "")
    out = [(f"spk-{g}", "speech", "voice") for g in recipe.speech_groups]
    out += [(f"{tag}src-{g}", "nonspeech", "procedural") for g in recipe.procedural_groups]
    out += [(f"{tag}rec-{Path(g).stem}", "nonspeech", "recording") for g in recipe.recording_groups]
    return out


def choose_window(x: np.ndarray, sr: int, n: int, rng: np.random.Generator, min_active: float) -> np.ndarray:
    """Cut `n` samples from `x`, preferring windows that are mostly active (never all silence).

    Shorter inputs are zero-padded at a random offset.
    """
    if len(x) <= n:
        out = np.zeros(n, np.float32)
        start = int(rng.integers(0, n - len(x) + 1))
        out[start : start + len(x)] = x
        return out
    act = audio.active_mask(x, sr, threshold_db=-30.0).astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(act)])
    hop = max(1, sr // 100)
    starts = np.arange(0, len(x) - n + 1, hop)
    frac = (csum[starts + n] - csum[starts]) / n
    ok = starts[frac >= min(min_active, frac.max())]
    start = int(rng.choice(ok))
    return x[start : start + n].astype(np.float32)


def _snr_tag(snr: float | None) -> str:
    if snr is None:
        return "clean"
    return f"snr{'m' if snr < 0 else ''}{abs(snr):g}"


def _base_audio(recipe: Recipe, group: str, kind: str, i: int) -> tuple[np.ndarray, str, str]:
    """One base clip of a group: samples at the recipe rate, source name, transcript."""
    sr = recipe.sample_rate
    rng = _rng(recipe, group, f"base{i}")
    n = int(recipe.base_seconds * sr)
    if kind == "voice":
        name = group.removeprefix("spk-")
        text = speech.sentences_for(name, recipe.speech_bases_per_group)[i]
        x, tts_sr = speech.synthesize_sentence(name, text)
        return audio.resample(x, tts_sr, sr), speech.ALL_VOICES[name].name, text
    from core.data import nonspeech

    if kind == "procedural":
        name = group.split("src-", 1)[1]
        x = np.asarray(nonspeech.PROCEDURAL[name](rng, n, sr), dtype=np.float32)
        return x, name, ""
    name = next(r for r in recipe.recording_groups if Path(r).stem == group.split("rec-", 1)[1])
    return nonspeech.recording_variant(name, rng, n, sr), f"pygame:{name}", ""


def build_group(recipe: Recipe, group: str, label: str, kind: str, out_dir: str) -> list[dict]:
    """Render every variant of one group's base clips into out_dir/audio; return manifest rows.

    Runs in a fresh process: eSpeak NG carries hidden state between utterances, so a group
    is only reproducible when its utterances are the first the process speaks.
    """
    sr = recipe.sample_rate
    rows = []
    n_bases = recipe.speech_bases_per_group if kind == "voice" else recipe.nonspeech_bases_per_group
    for i in range(n_bases):
        base, source, text = _base_audio(recipe, group, kind, i)
        base_id = f"{group}-b{i:02d}"
        for dur in recipe.durations_ms:
            n = int(sr * dur / 1000)
            for k, snr in enumerate(recipe.snrs_db):
                clip_id = f"{base_id}-d{dur}-{_snr_tag(snr)}"
                rng = _rng(recipe, clip_id)
                crop = audio.fade(choose_window(base, sr, n, rng, recipe.min_active_fraction), sr)
                noise_type = "none"
                if snr is not None:
                    noise_type = recipe.noise_types[(i + k) % len(recipe.noise_types)]
                    crop, _ = audio.mix_at_snr(crop, audio.coloured_noise(n, noise_type, rng), snr, sr)
                y = audio.peak_normalise(crop)
                rel = f"audio/{clip_id}.wav"
                audio.write_wav(Path(out_dir) / rel, y, sr, atomic_write=False)
                rows.append(
                    {
                        "clip_id": clip_id,
                        "path": rel,
                        "label": label,
                        "group_id": group,
                        "base_clip_id": base_id,
                        "duration_ms": float(dur),
                        "snr_db": np.nan if snr is None else float(snr),
                        "noise_type": noise_type,
                        "content_hash": audio.content_hash(y),
                        "source": source,
                        "text": text,
                        "sample_rate": sr,
                    }
                )
    return rows


def build_default(
    name: str = "default",
    recipe: Recipe | None = None,
    force: bool = False,
    workers: int = 2,
    progress: Progress | None = None,
) -> Path:
    """Build the embedded dataset into data/datasets/<name>; return its folder.

    Built in a temporary sibling folder and renamed into place, so an interrupted build
    leaves any earlier dataset untouched. Existing datasets are kept unless `force`.
    """
    from core.data.datasets import dataset_root

    recipe = recipe or Recipe()
    root = dataset_root(name)
    if (root / "manifest.csv").exists() and not force:
        return root
    t0 = time.perf_counter()
    with atomic.building_dir(root) as tmp:
        groups = group_ids(recipe)
        rows: list[dict] = []
        ctx = multiprocessing.get_context("spawn")
        done = 0
        # Voices need a fresh process each (see build_group); other sources share workers.
        for fresh in (True, False):
            batch = [g for g in groups if (g[2] == "voice") == fresh]
            with ProcessPoolExecutor(max(1, workers), ctx, max_tasks_per_child=1 if fresh else None) as pool:
                futures = {pool.submit(build_group, recipe, g, lab, kind, str(tmp)): g for g, lab, kind in batch}
                for fut in as_completed(futures):
                    rows.extend(fut.result())
                    done += 1
                    if progress:
                        progress(done / len(groups), f"built group {futures[fut]} ({done}/{len(groups)})")
        import pandas as pd

        from core.data.datasets import save_dataset

        manifest = pd.DataFrame(rows).sort_values("clip_id").reset_index(drop=True)
        info = {
            "name": name,
            "kind": "embedded-default",
            "recipe": asdict(recipe),
            "n_clips": len(manifest),
            "build_seconds": round(time.perf_counter() - t0, 2),
            "description": "Synthetic speech (eSpeak NG voices) vs procedural and packaged non-speech.",
        }
        save_dataset(tmp, manifest, info)
    return root
