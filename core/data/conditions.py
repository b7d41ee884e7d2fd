"""Psychoacoustic condition sets: every base clip at many durations, SNRs, bands and rooms.

Why: accuracy at one operating point hides how a detector fails; the seed characterised
models by accuracy vs duration and vs SNR. A condition set is an ordinary dataset whose
clips are variants of clean base clips; each keeps `base_clip_id`, so bootstraps resample
base clips, and its condition values as columns (duration_ms, snr_db, noise_type, band, reverb).

Processing order of one variant: crop the most active window of the duration (5 ms fades)
→ reverberate (the room acts on the source) → add noise at the SNR → band-limit (the channel
acts on the mixture) → peak-normalise. SNR follows `core.audio.mix_at_snr`: signal power
over noise power, both averaged over the *active* samples of the (reverberant) signal.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core import atomic
from core.data import audio
from core.data.datasets import Dataset, dataset_root, load_dataset, save_dataset
from core.errors import LabError

Progress = Callable[[float, str], None]

DURATIONS_MS = (30, 40, 80, 160, 200, 400, 500, 800, 1000)  # 20 ms gives Qwen2-Audio no audio token
SNRS_DB = (-10.0, -5.0, 0.0, 5.0, 10.0, 20.0)
# Pass bands in Hz: a narrow-band telephone channel and AM broadcast audio (~5 kHz).
BANDS: dict[str, tuple[float, float] | None] = {
    "clean": None,
    "telephone": (300.0, 3400.0),
    "am-radio": (150.0, 4500.0),
}
# Reverberation time RT60 in seconds of the generated rooms.
ROOMS: dict[str, float | None] = {"none": None, "small-room": 0.3, "large-hall": 1.5}
NOISES = ("white", "pink", "babble", "folder")


class ConditionsError(LabError):
    """A condition set cannot be generated as asked."""


@dataclass
class ConditionSpec:
    """What to generate; every field is recorded in the condition set's dataset.json."""

    durations_ms: tuple[int, ...] = DURATIONS_MS
    snrs_db: tuple[float, ...] = SNRS_DB
    include_clean: bool = True
    noise: str = "white"
    noise_folder: str = ""
    bands: tuple[str, ...] = ("clean",)
    rooms: tuple[str, ...] = ("none",)
    bases_per_label: int = 24
    babble_talkers: int = 6
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- signal processing


def band_limit(x: np.ndarray, sr: int, band: tuple[float, float], taper_hz: float = 60.0) -> np.ndarray:
    """Keep only `band` (Hz): zero every DFT bin outside it, raised-cosine taper just inside the edges.

    Zeroing in the frequency domain leaves no energy outside the band at all (a telephone
    channel is far from a brick wall, but the experiment wants a clean band limit); the taper
    inside the edges keeps the ringing of a brick wall down.
    """
    lo, hi = band
    if not 0 <= lo < hi <= sr / 2:
        raise ConditionsError(f"band {band} Hz does not fit below Nyquist ({sr / 2:g} Hz)")
    n = len(x)
    spec = np.fft.rfft(np.asarray(x, np.float64))
    f = np.fft.rfftfreq(n, 1 / sr)
    gain = ((f >= lo) & (f <= hi)).astype(np.float64)
    for edge, inward in ((lo, 1), (hi, -1)):
        d = (f - edge) * inward  # distance inside the band from this edge
        ramp = (d >= 0) & (d < taper_hz)
        gain[ramp] *= 0.5 - 0.5 * np.cos(np.pi * d[ramp] / taper_hz)
    return np.fft.irfft(spec * gain, n).astype(np.float32)


def synth_rir(rt60: float, sr: int, rng: np.random.Generator, direct_to_reverb_db: float = 0.0) -> np.ndarray:
    """A room impulse response: a direct path, then Gaussian noise with exponential energy decay.

    The decay exp(−6.91·t / RT60) in amplitude drops the energy 60 dB in RT60 seconds (Sabine's
    definition); a 2 ms pre-delay separates the tail from the direct sound. The tail lasts
    1.2 × RT60. The direct-to-reverberant energy ratio is `direct_to_reverb_db`.
    """
    if rt60 <= 0:
        raise ConditionsError(f"RT60 must be positive, got {rt60}")
    n = int(1.2 * rt60 * sr) + 1
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-3 * np.log(10) * t / rt60)
    tail[: int(0.002 * sr)] = 0.0
    tail *= np.sqrt(10 ** (-direct_to_reverb_db / 10) / np.sum(tail**2))
    tail[0] = 1.0
    return tail.astype(np.float64)


def measure_rt60(h: np.ndarray, sr: int, fit_db: tuple[float, float] = (-5.0, -25.0)) -> float:
    """RT60 from an impulse response: Schroeder backward integration, line fit over `fit_db`, ×60/dB."""
    energy = np.asarray(h, np.float64) ** 2
    edc = np.cumsum(energy[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0] + 1e-300)
    hi, lo = fit_db
    sel = (edc_db <= hi) & (edc_db >= lo)
    if sel.sum() < 2:
        raise ConditionsError("impulse response decays too little to measure RT60")
    slope = np.polyfit(np.arange(len(h))[sel] / sr, edc_db[sel], 1)[0]
    return float(-60.0 / slope)


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with the room and keep the clip's length (the tail past the end is cut: durations stay exact)."""
    from scipy.signal import fftconvolve  # lazily: the CLI parser imports this module for its choices

    return fftconvolve(np.asarray(x, np.float64), rir)[: len(x)].astype(np.float32)


def active_window(x: np.ndarray, sr: int, n: int) -> np.ndarray:
    """The `n` samples of `x` with the most active (above −30 dB re peak frame) samples; earliest on ties."""
    if n >= len(x):
        return np.asarray(x, np.float32)
    act = audio.active_mask(x, sr, threshold_db=-30.0).astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(act)])
    hop = max(1, sr // 1000)
    starts = np.arange(0, len(x) - n + 1, hop)
    start = int(starts[np.argmax(csum[starts + n] - csum[starts])])
    return np.asarray(x[start : start + n], np.float32)


# ---------------------------------------------------------------- noise sources


class NoiseSource:
    """Noise of any length: coloured Gaussian, babble of outside talkers, or a folder of recordings."""

    def __init__(self, kind: str, sr: int, pool: list[np.ndarray] | None = None, talkers: int = 6):
        if kind not in NOISES:
            raise ConditionsError(f"noise must be one of {NOISES}, got {kind!r}")
        if kind in ("babble", "folder") and not pool:
            raise ConditionsError(f"{kind} noise needs recordings to draw from; none were found")
        self.kind, self.sr, self.pool, self.talkers = kind, sr, pool or [], talkers

    def _segment(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        if len(x) < n:
            x = np.tile(x, int(np.ceil(n / len(x))) + 1)
        start = int(rng.integers(0, len(x) - n + 1))
        seg = x[start : start + n].astype(np.float64)
        return seg / (np.sqrt(np.mean(seg**2)) + 1e-12)

    def __call__(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.kind in ("white", "pink"):
            return audio.coloured_noise(n, self.kind, rng)
        if self.kind == "folder":
            return self._segment(self.pool[int(rng.integers(len(self.pool)))], n, rng).astype(np.float32)
        picks = rng.choice(len(self.pool), size=min(self.talkers, len(self.pool)), replace=False)
        mix = sum(self._segment(self.pool[i], n, rng) for i in picks)
        return (mix / (np.sqrt(np.mean(mix**2)) + 1e-12)).astype(np.float32)


def _babble_pool(ds: Dataset, exclude_groups: set[str], limit: int = 64) -> tuple[list[np.ndarray], list[str]]:
    """Clean speech of groups outside the evaluated ones (the longest clip of each base clip)."""
    m = ds.manifest
    cand = m[(m["label"] == "speech") & ~m["group_id"].isin(exclude_groups) & m["snr_db"].isna()]
    cand = cand.sort_values("duration_ms", ascending=False).drop_duplicates("base_clip_id").head(limit)
    if cand.empty:
        raise ConditionsError(
            f"babble needs speech from groups outside the evaluated ones; dataset {ds.name!r} has none "
            "(evaluate one part of a split, so the other parts supply the talkers)"
        )
    return [ds.load_clip(c).samples for c in cand["clip_id"]], sorted(set(cand["group_id"]))


def _folder_pool(spec: str, sr: int) -> list[np.ndarray]:
    """Noise recordings from a folder, or an imported dataset's non-speech clips (`dataset:NAME`)."""
    from core.data.noise import load_noises

    try:
        return load_noises(spec, target_sr=sr)
    except LabError as exc:
        raise ConditionsError(str(exc)) from None


# ---------------------------------------------------------------- the condition set


def base_clips(ds: Dataset, clips: pd.DataFrame, per_label: int, seed: int) -> pd.DataFrame:
    """Clean base material: per base_clip_id its longest clean clip, `per_label` of each label.

    Chosen round-robin over groups, so every group of the part is represented before any repeats.
    """
    clean = clips[clips["snr_db"].isna()].sort_values(["duration_ms", "clip_id"], ascending=[False, True])
    clean = clean.drop_duplicates("base_clip_id")
    if clean.empty:
        raise ConditionsError("no clean clips (snr_db empty) to build conditions from")
    rng = np.random.default_rng(seed)
    out = []
    for _label, sub in clean.groupby("label"):
        sub = sub.sample(frac=1.0, random_state=int(rng.integers(2**31)))
        sub = sub.assign(_rank=sub.groupby("group_id").cumcount()).sort_values(["_rank", "group_id"])
        out.append(sub.head(per_label).drop(columns="_rank"))
    return pd.concat(out).sort_values("clip_id").reset_index(drop=True)


def variant_id(base: str, dur: int, snr: float | None, band: str, room: str) -> str:
    s = "clean" if snr is None else f"snr{'m' if snr < 0 else ''}{abs(snr):g}"
    return f"{base}~d{dur}-{s}-{band}-{room}"


def render_variant(
    x: np.ndarray,
    sr: int,
    dur_ms: int,
    snr: float | None,
    band: str,
    rir: np.ndarray | None,
    noise: NoiseSource,
    rng: np.random.Generator,
) -> tuple[np.ndarray, float]:
    """One variant of a clean clip; returns (audio, SNR measured back from the mixed parts)."""
    n = int(round(sr * dur_ms / 1000))
    y = audio.fade(active_window(x, sr, n), sr, ms=min(5.0, dur_ms / 4))
    if rir is not None:
        y = reverberate(y, rir)
    measured = float("nan")
    if snr is not None:
        y, scaled = audio.mix_at_snr(y, noise(len(y), rng), snr, sr)
        measured = audio.measure_snr(y - scaled, scaled, sr)
    if BANDS[band] is not None:
        y = band_limit(y, sr, BANDS[band])
    return audio.peak_normalise(y), measured


# long: the build in order (check, pick clips, render every condition, write, publish) under one temp folder
def generate(
    source: Dataset,
    split: str,
    part: str,
    name: str,
    spec: ConditionSpec | None = None,
    force: bool = False,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Dataset:
    """Build the condition set `name` from clean clips of `source`'s split part; a split `conditions` marks all as test.

    Written into a temporary folder and renamed into place: an interrupted build leaves nothing half-made.
    """
    from core.data.splits import save_split, select_clips

    spec = spec or ConditionSpec()
    for b in spec.bands:
        if b not in BANDS:
            raise ConditionsError(f"band must be one of {sorted(BANDS)}, got {b!r}")
    for r in spec.rooms:
        if r not in ROOMS:
            raise ConditionsError(f"room must be one of {sorted(ROOMS)}, got {r!r}")
    if not spec.durations_ms or min(spec.durations_ms) <= 0:
        raise ConditionsError(f"durations must be positive milliseconds, got {spec.durations_ms}")
    if not all(np.isfinite(s) for s in spec.snrs_db):
        raise ConditionsError(f"SNRs must be finite numbers of dB, got {spec.snrs_db}")
    if spec.bases_per_label < 1:
        raise ConditionsError(f"bases per label must be at least 1, got {spec.bases_per_label}")
    if not spec.snrs_db and not spec.include_clean:
        raise ConditionsError("no condition to render: give SNRs, or keep the clean variants")
    root = dataset_root(name)
    if (root / "manifest.csv").exists() and not force:
        raise ConditionsError(f"dataset {name!r} exists; choose another name or pass force")
    t0 = time.perf_counter()
    clips = select_clips(source, split, part)
    bases = base_clips(source, clips, spec.bases_per_label, spec.seed)
    sr = audio.TARGET_SR
    pool, babble_groups = [], []
    if spec.noise == "babble":
        pool, babble_groups = _babble_pool(source, set(clips["group_id"]))
    elif spec.noise == "folder":
        pool = _folder_pool(spec.noise_folder, sr)
    noise = NoiseSource(spec.noise, sr, pool, spec.babble_talkers)
    rirs = {
        r: synth_rir(ROOMS[r], sr, np.random.default_rng([spec.seed, i])) for i, r in enumerate(spec.rooms) if ROOMS[r]
    }
    snrs: list[float | None] = ([None] if spec.include_clean else []) + [float(s) for s in spec.snrs_db]
    rows = []
    with atomic.building_dir(root) as tmp:
        for i, b in enumerate(bases.itertuples(index=False)):
            if should_stop and should_stop():
                raise KeyboardInterrupt
            x = source.load_clip(b.clip_id).samples
            durations = [d for d in spec.durations_ms if d <= len(x) / sr * 1000 + 0.5]  # not past the clip's end
            for dur, snr, band, room in itertools.product(durations, snrs, spec.bands, spec.rooms):
                cid = variant_id(b.base_clip_id, dur, snr, band, room)
                rng = np.random.default_rng([spec.seed, *cid.encode()])
                y, measured = render_variant(x, sr, dur, snr, band, rirs.get(room), noise, rng)
                rel = f"audio/{cid}.wav"
                audio.write_wav(tmp / rel, y, sr, atomic_write=False)
                rows.append(
                    {
                        "clip_id": cid,
                        "path": rel,
                        "label": b.label,
                        "group_id": b.group_id,
                        "base_clip_id": b.base_clip_id,
                        "source_clip_id": b.clip_id,
                        "duration_ms": float(dur),
                        "snr_db": np.nan if snr is None else snr,
                        "snr_measured_db": measured,
                        "noise_type": "none" if snr is None else spec.noise,
                        "band": band,
                        "reverb": room,
                        "rt60_s": ROOMS[room] or 0.0,
                        "content_hash": audio.content_hash(y),
                        "source": f"{source.name}:{b.clip_id}",
                    }
                )
            if progress:
                progress((i + 1) / len(bases), f"base clip {i + 1}/{len(bases)}: {b.clip_id}")
        manifest = pd.DataFrame(rows)
        info = {
            "name": name,
            "kind": "conditions",
            "source": {"dataset": source.name, "split": split, "part": part},
            "spec": asdict(spec),
            "base_clips": len(bases),
            "babble_groups": babble_groups,
            "n_clips": len(manifest),
            "build_seconds": round(time.perf_counter() - t0, 2),
            "snr_definition": "10·log10(P_signal/P_noise) over the active samples of the signal (core.audio.mix_at_snr)",
        }
        save_dataset(tmp, manifest, info)
    ds = load_dataset(name)
    save_split(ds, "conditions", pd.Series(["test"] * len(ds.manifest)), {"kind": "conditions", "source": name})
    return ds
