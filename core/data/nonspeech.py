"""Non-speech sources of the embedded dataset: procedural sound classes and packaged recordings.

Each source is one group. Procedural generators are pure functions of an RNG, so a base
clip is reproducible from its seed. Real recordings are the sound effects that ship inside
the `pygame` wheel (`pygame/examples/data`), read from disk without importing pygame.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import signal as sps

from core.data.audio import TARGET_SR, coloured_noise, load_audio, resample

Generator = Callable[[np.random.Generator, int, int], np.ndarray]


def _t(n: int, sr: int) -> np.ndarray:
    return np.arange(n) / sr


def _env(n: int, sr: int, attack: float, decay: float) -> np.ndarray:
    """Attack-decay envelope: linear rise over `attack` s, exponential fall with time constant `decay` s."""
    t = _t(n, sr)
    return np.minimum(t / max(attack, 1e-4), 1.0) * np.exp(-np.maximum(t - attack, 0) / decay)


def _place(out: np.ndarray, event: np.ndarray, start: int) -> None:
    end = min(len(out), start + len(event))
    if start < end:
        out[start:end] += event[: end - start]


def white_noise(rng, n, sr):
    return coloured_noise(n, "white", rng)


def pink_noise(rng, n, sr):
    return coloured_noise(n, "pink", rng)


def brown_noise(rng, n, sr):
    return coloured_noise(n, "brown", rng)


def tones(rng, n, sr):
    """A steady sinusoid with a few harmonics and slight vibrato."""
    f0 = rng.uniform(200, 2000)
    t = _t(n, sr)
    phase = 2 * np.pi * f0 * t + rng.uniform(0.5, 3) * np.sin(2 * np.pi * rng.uniform(3, 6) * t)
    return sum(rng.uniform(0.1, 1) / k * np.sin(k * phase) for k in range(1, 4))


def chirps(rng, n, sr):
    """Repeated frequency sweeps (up or down), linear or logarithmic."""
    out = np.zeros(n)
    period = int(sr * rng.uniform(0.15, 0.5))
    f0, f1 = sorted(rng.uniform(200, 6000, 2))
    method = rng.choice(["linear", "logarithmic"])
    seg_t = _t(period, sr)
    seg = sps.chirp(seg_t, f0, seg_t[-1], f1, method=method) * np.hanning(period)
    if rng.random() < 0.5:
        seg = seg[::-1]
    for start in range(0, n, period):
        _place(out, seg, start)
    return out


def clicks(rng, n, sr):
    """Impulse trains (clock ticks, tapping): short broadband clicks at jittered intervals."""
    out = np.zeros(n)
    rate = rng.uniform(3, 15)
    pos = 0.0
    while pos < n:
        click = rng.standard_normal(int(sr * 0.003)) * _env(int(sr * 0.003), sr, 0.0002, 0.0008)
        _place(out, click, int(pos))
        pos += sr / rate * rng.uniform(0.7, 1.3)
    return out


def hum(rng, n, sr):
    """Mains hum: 50 or 60 Hz with odd-heavy harmonics and a little noise."""
    f0 = rng.choice([50.0, 60.0])
    t = _t(n, sr)
    x = sum(rng.uniform(0.2, 1) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) for k in range(1, 12))
    return x + 0.02 * rng.standard_normal(n)


def rain(rng, n, sr):
    """Rain-like texture: many short band-passed droplets on a soft noise bed."""
    out = 0.05 * coloured_noise(n, "pink", rng)
    for _ in range(int(rng.uniform(80, 250) * n / sr)):
        m = int(sr * rng.uniform(0.002, 0.01))
        drop = rng.standard_normal(m) * _env(m, sr, 0.0005, m / sr / 4)
        fc = rng.uniform(1500, 6000)
        b, a = sps.butter(2, [fc * 0.7 / (sr / 2), min(fc * 1.3 / (sr / 2), 0.99)], "band")
        _place(out, sps.lfilter(b, a, drop) * rng.uniform(0.2, 1), int(rng.integers(0, n)))
    return out


def chords(rng, n, sr):
    """Music-like: a sequence of chords of harmonic notes with plucked envelopes."""
    out = np.zeros(n)
    root = 110 * 2 ** (rng.integers(0, 24) / 12)
    step = int(sr * rng.uniform(0.25, 0.6))
    for start in range(0, n, step):
        chord = root * 2 ** (np.array([0, rng.choice([3, 4]), 7, rng.choice([10, 11, 12])]) / 12)
        chord *= 2 ** (rng.choice([0, 2, 5, 7, -5]) / 12)
        t = _t(step * 2, sr)
        note = sum(np.sin(2 * np.pi * f * k * t) / k**1.5 for f in chord for k in range(1, 5))
        _place(out, note * _env(len(t), sr, 0.005, rng.uniform(0.1, 0.4)), start)
    return out


def engine(rng, n, sr):
    """Engine-like: low pulse train (firing rate) through a resonant low-pass, with rumble."""
    f0 = rng.uniform(20, 60)
    t = _t(n, sr)
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 0.5 * t))) / sr
    pulses = np.maximum(np.sin(phase), 0) ** 8
    b, a = sps.butter(2, rng.uniform(300, 900) / (sr / 2))
    return sps.lfilter(b, a, pulses + 0.3 * coloured_noise(n, "brown", rng))


def wind(rng, n, sr):
    """Wind: band-passed noise whose centre and level drift slowly."""
    x = coloured_noise(n, "pink", rng)
    b, a = sps.butter(2, [rng.uniform(200, 500) / (sr / 2), rng.uniform(1200, 3000) / (sr / 2)], "band")
    t = _t(n, sr)
    gust = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t + rng.uniform(0, 6)) ** 2
    return sps.lfilter(b, a, x) * gust


def birdsong(rng, n, sr):
    """Whistled bird-like syllables: fast frequency-modulated tones in bursts."""
    out = np.zeros(n)
    pos = int(sr * rng.uniform(0, 0.1))
    while pos < n:
        m = int(sr * rng.uniform(0.04, 0.15))
        t = _t(m, sr)
        fc, depth, fm = rng.uniform(2500, 6000), rng.uniform(300, 1500), rng.uniform(10, 40)
        syl = np.sin(2 * np.pi * fc * t + depth / fm * np.sin(2 * np.pi * fm * t)) * np.hanning(m)
        _place(out, syl, pos)
        pos += m + int(sr * rng.uniform(0.03, 0.2))
    return out


def bells(rng, n, sr):
    """Bells: inharmonic partials with long exponential decays, struck a few times."""
    out = np.zeros(n)
    f0 = rng.uniform(300, 1200)
    ratios = np.array([0.5, 1.0, 1.19, 1.56, 2.0, 2.51, 2.66, 3.01])
    for start in np.sort(rng.integers(0, n // 2, rng.integers(1, 4))):
        t = _t(n - start, sr)
        strike = sum(
            np.exp(-t / rng.uniform(0.2, 1.2)) * np.sin(2 * np.pi * f0 * r * t) / (i + 1) for i, r in enumerate(ratios)
        )
        _place(out, strike, int(start))
    return out


def siren(rng, n, sr):
    """Alarm/siren: a square-ish tone whose pitch sweeps up and down."""
    t = _t(n, sr)
    lo, hi = sorted(rng.uniform(500, 1800, 2))
    f = lo + (hi - lo) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    return np.tanh(3 * np.sin(phase))


def dtmf(rng, n, sr):
    """Telephone DTMF key tones: pairs of sinusoids in ~80 ms bursts with gaps."""
    low, high = [697, 770, 852, 941], [1209, 1336, 1477]
    out = np.zeros(n)
    pos = 0
    while pos < n:
        m = int(sr * rng.uniform(0.06, 0.12))
        t = _t(m, sr)
        tone = np.sin(2 * np.pi * rng.choice(low) * t) + np.sin(2 * np.pi * rng.choice(high) * t)
        _place(out, tone * np.hanning(m) ** 0.2, pos)
        pos += m + int(sr * rng.uniform(0.04, 0.1))
    return out


PROCEDURAL: dict[str, Generator] = {
    "white-noise": white_noise,
    "pink-noise": pink_noise,
    "brown-noise": brown_noise,
    "tones": tones,
    "chirps": chirps,
    "clicks": clicks,
    "hum": hum,
    "rain": rain,
    "chords": chords,
    "engine": engine,
    "wind": wind,
    "birdsong": birdsong,
    "bells": bells,
    "siren": siren,
    "dtmf": dtmf,
}


def packaged_recordings_dir() -> Path | None:
    """Folder of pygame's example sounds, found without importing pygame; None if absent."""
    spec = importlib.util.find_spec("pygame")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "examples" / "data"
    return folder if folder.is_dir() else None


def recording_variant(name: str, rng: np.random.Generator, n: int, sr: int = TARGET_SR) -> np.ndarray:
    """One base clip from a packaged recording: speed-perturbed (0.8–1.25×) and placed at a random offset."""
    folder = packaged_recordings_dir()
    if folder is None:
        raise FileNotFoundError("pygame's example sounds are missing: pip install -r requirements.txt")
    x = load_audio(folder / name, target_sr=sr).samples
    factor = rng.uniform(0.8, 1.25)
    x = resample(x, int(round(sr * factor)), sr)  # playing faster or slower, as tape speed would
    out = np.zeros(n, np.float32)
    if len(x) >= n:
        start = int(rng.integers(0, len(x) - n + 1))
        return x[start : start + n].copy()
    _place(out, x, int(rng.integers(0, n - len(x) + 1)))
    return out
