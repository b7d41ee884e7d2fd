"""Training augmentation for real recordings: what a microphone, a room and a channel do to a voice.

One clip goes through the chain in the order the world applies it: the talker (time stretch,
pitch shift) → the room (a simulated shoebox, pyroomacoustics' image-source method) → noise at a
random SNR (done by the caller, which owns the noise recordings) → the recording gain (quiet
recordings, or clipping above full scale) → the channel (telephone band with 8-bit µ-law, or a low-bit-rate codec).
Every draw comes from the `rng` passed in, so a run's seed reproduces its augmentation.

Why a simulated room beside `conditions.synth_rir`: condition sets need an impulse response whose
RT60 is exactly the level asked for (a psychometric variable), which an exponential noise tail
gives by construction; training needs rooms that sound like rooms (early reflections from walls
at real distances, frequency-dependent decay), which the image-source method gives.
"""

from __future__ import annotations

import functools
import io
from dataclasses import asdict, dataclass

import numpy as np

from core.errors import LabError

# librosa, pyroomacoustics, scipy and soundfile are imported inside functions: importing this module stays cheap

SR = 16_000
TELEPHONE_BAND = (300.0, 3400.0)
CODECS = ("gsm", "mp3", "vorbis")  # GSM 06.10 at 13 kbit/s (8 kHz); MP3 16–32 kbit/s; Vorbis at its lowest quality


@dataclass(frozen=True)
class Augmentation:
    """How much of each transform a clip may get; zeros switch a transform off (the default: none)."""

    stretch: float = 0.0  # time stretch by a factor in [1 − stretch, 1 + stretch]: 0.1 = 0.9–1.1×
    pitch: float = 0.0  # pitch shift in [−pitch, +pitch] semitones
    room_prob: float = 0.0  # probability of a simulated room
    room_rt60: tuple[float, float] = (0.2, 0.9)  # seconds
    gain_db: tuple[float, float] = (0.0, 0.0)  # recording gain drawn from this range (dB); 0, 0 = off
    telephone_prob: float = 0.0  # probability of the telephone channel (300–3400 Hz, 8 kHz, µ-law)
    codec_prob: float = 0.0  # probability of a low-bit-rate codec (GSM, MP3 or Vorbis, whichever encodes)

    def __post_init__(self) -> None:
        if not 0 <= self.stretch < 0.5:
            raise LabError(f"time stretch must be in [0, 0.5), got {self.stretch}")
        if not 0 <= self.pitch <= 12:
            raise LabError(f"pitch shift must be in [0, 12] semitones, got {self.pitch}")
        for name in ("room_prob", "telephone_prob", "codec_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise LabError(f"{name} is a probability in [0, 1], got {getattr(self, name)}")
        lo, hi = self.room_rt60
        if not 0 < lo <= hi <= 3:
            raise LabError(f"room RT60 range must satisfy 0 < low ≤ high ≤ 3 s, got {self.room_rt60}")
        lo, hi = self.gain_db
        if not -60 <= lo <= hi <= 40:
            raise LabError(f"gain range must satisfy −60 ≤ low ≤ high ≤ 40 dB, got {self.gain_db}")

    @property
    def active(self) -> bool:
        gain = any(self.gain_db)
        return any((self.stretch, self.pitch, self.room_prob, gain, self.telephone_prob, self.codec_prob))

    def to_dict(self) -> dict:
        return asdict(self)


def talker(x: np.ndarray, aug: Augmentation, rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    """Time stretch (phase vocoder: the pitch stays) and pitch shift (the duration stays)."""
    import librosa

    y = np.asarray(x, np.float32)
    if aug.stretch:
        rate = float(rng.uniform(1 - aug.stretch, 1 + aug.stretch))
        y = librosa.effects.time_stretch(y, rate=rate)
    if aug.pitch:
        steps = float(rng.uniform(-aug.pitch, aug.pitch))
        y = librosa.effects.pitch_shift(y, sr=sr, n_steps=steps, res_type="soxr_hq")
    return y.astype(np.float32)


@functools.lru_cache(maxsize=8)
def room_bank(seed: int, rt60: tuple[float, float], n: int = 24, sr: int = SR) -> tuple[np.ndarray, ...]:
    """`n` impulse responses of random shoebox rooms, reproducible from `seed` (simulated once per run).

    Each room: width 3–10 m, depth 3–12 m, height 2.4–4 m, a target RT60 drawn from `rt60`
    turned into wall absorption by Sabine's formula (pyroomacoustics.inverse_sabine), the source
    and the microphone at random places at least 0.5 m from every wall and 0.5 m apart.
    """
    import pyroomacoustics as pra

    rng = np.random.default_rng([seed, 97])
    out = []
    while len(out) < n:
        dims = np.array([rng.uniform(3, 10), rng.uniform(3, 12), rng.uniform(2.4, 4)])
        target = float(rng.uniform(*rt60))
        try:
            absorption, max_order = pra.inverse_sabine(target, dims)
        except ValueError:  # the room is too small for so long a decay: draw another
            continue
        room = pra.ShoeBox(dims, fs=sr, materials=pra.Material(absorption), max_order=min(max_order, 20))
        src, mic = (rng.uniform(0.5, dims - 0.5) for _ in range(2))
        if np.linalg.norm(src - mic) < 0.5:
            continue
        room.add_source(src)
        room.add_microphone(mic)
        room.compute_rir()
        h = np.asarray(room.rir[0][0], np.float64)
        out.append(h / np.max(np.abs(h)))
    return tuple(out)


def in_room(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The clip as heard in the room, its length kept, its peak kept."""
    from scipy.signal import fftconvolve

    peak = float(np.max(np.abs(x))) or 1.0
    y = fftconvolve(np.asarray(x, np.float64), h)[: len(x)]
    m = float(np.max(np.abs(y)))
    return (y * (peak / m) if m > 0 else y).astype(np.float32)


def gain(x: np.ndarray, db: float) -> np.ndarray:
    """Scale by `db` decibels; samples beyond full scale clip, as a recorder's converter does."""
    return np.clip(np.asarray(x, np.float32) * np.float32(10 ** (db / 20)), -1.0, 1.0)


def telephone(x: np.ndarray, sr: int = SR) -> np.ndarray:
    """The narrow-band telephone channel: 300–3400 Hz, sampled at 8 kHz with 8-bit µ-law, back to `sr`."""
    import soxr

    from core.data.conditions import band_limit

    y = soxr.resample(band_limit(np.asarray(x, np.float32), sr, TELEPHONE_BAND), sr, 8000)
    mu = 255.0
    y = np.clip(y, -1.0, 1.0)
    q = np.round((np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu) + 1) / 2 * mu)  # 8-bit code
    y = np.sign(2 * q / mu - 1) * np.expm1(np.abs(2 * q / mu - 1) * np.log1p(mu)) / mu
    return _at_length(soxr.resample(y.astype(np.float32), 8000, sr), len(x))


@functools.cache
def available_codecs() -> tuple[str, ...]:
    """The codecs of `CODECS` this libsndfile can write (GSM is always built in; MP3 needs libsndfile ≥ 1.1)."""
    out = []
    for name in CODECS:
        try:
            _encode(np.zeros(1600, np.float32), name, 0.5)
            out.append(name)
        except Exception:  # noqa: BLE001 - an encoder libsndfile lacks raises its own error types
            continue
    return tuple(out)


def _encode(x: np.ndarray, codec: str, level: float, sr: int = SR) -> np.ndarray:
    import soundfile as sf
    import soxr

    buf = io.BytesIO()
    if codec == "gsm":
        y = soxr.resample(x, sr, 8000)
        sf.write(buf, y, 8000, format="WAV", subtype="GSM610")
        buf.seek(0)
        return soxr.resample(sf.read(buf, dtype="float32")[0], 8000, sr)
    if codec == "mp3":
        sf.write(buf, x, sr, format="MP3", subtype="MPEG_LAYER_III", bitrate_mode="CONSTANT",
                 compression_level=0.6 + 0.4 * level)  # fmt: skip
    elif codec == "vorbis":
        sf.write(buf, x, sr, format="OGG", subtype="VORBIS", compression_level=0.9 + 0.1 * level)
    else:
        raise LabError(f"unknown codec {codec!r}; known: {', '.join(CODECS)}")
    buf.seek(0)
    return sf.read(buf, dtype="float32")[0]


def codec(x: np.ndarray, rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    """Through a low-bit-rate codec drawn from those available, at a random compression level."""
    names = available_codecs()
    if not names:
        raise LabError("no low-bit-rate codec can be written by this libsndfile (GSM 06.10 is missing)")
    name = names[int(rng.integers(len(names)))]
    return _at_length(_encode(np.asarray(x, np.float32), name, float(rng.random()), sr), len(x))


def _at_length(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y, np.float32)
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def before_noise(x: np.ndarray, aug: Augmentation, rng: np.random.Generator, seed: int, sr: int = SR) -> np.ndarray:
    """The talker and the room (what happens before noise joins the clip)."""
    y = talker(x, aug, rng, sr) if (aug.stretch or aug.pitch) else np.asarray(x, np.float32)
    if aug.room_prob and rng.random() < aug.room_prob:
        bank = room_bank(seed, tuple(aug.room_rt60), sr=sr)
        y = in_room(y, bank[int(rng.integers(len(bank)))])
    return y


def after_noise(x: np.ndarray, aug: Augmentation, rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    """The recording gain and then the channel: telephone or codec (at most one, telephone first)."""
    y = gain(x, float(rng.uniform(*aug.gain_db))) if any(aug.gain_db) else np.asarray(x, np.float32)
    if aug.telephone_prob and rng.random() < aug.telephone_prob:
        y = telephone(y, sr)
    elif aug.codec_prob and rng.random() < aug.codec_prob:
        y = codec(y, rng, sr)
    return y


def place(x: np.ndarray, rng: np.random.Generator, longest: float = 2.5, floor_db: tuple = (-65.0, -35.0)):
    """The clip at a random point of a stretch 1–`longest` times its length, over a noise floor
    `floor_db` below its peak: a recording rarely starts and stops with the sound, as trimmed clips do."""
    x = np.asarray(x, np.float32)
    n = int(len(x) * rng.uniform(1.0, longest))
    start = int(rng.integers(0, n - len(x) + 1))
    floor = 10 ** (rng.uniform(*floor_db) / 20) * float(np.max(np.abs(x)) or 1.0)
    y = (rng.standard_normal(n) * floor).astype(np.float32)
    y[start : start + len(x)] += x
    return y


def narrowband(x: np.ndarray, sr: int = SR) -> np.ndarray:
    """Through 8 kHz sampling (nothing above 4 kHz), as FSDD, telephone prompts and old recordings are."""
    import soxr

    return _at_length(soxr.resample(soxr.resample(np.asarray(x, np.float32), sr, 8000), 8000, sr), len(x))


def with_noise(x: np.ndarray, noises: list[np.ndarray], snr_db: tuple[float, float], rng: np.random.Generator):
    """`x` mixed with a random stretch of a random one of `noises` (looped as needed) at an SNR drawn
    from `snr_db`, peak-normalised; the noise step of the chain, shared by runs and the base model."""
    from core.data.audio import mix_at_snr, peak_normalise

    noise = noises[int(rng.integers(len(noises)))]
    noise = np.tile(noise, int(np.ceil(len(x) / len(noise))) + 1)
    start = int(rng.integers(0, len(noise) - len(x) + 1))
    return peak_normalise(mix_at_snr(x, noise[start : start + len(x)], float(rng.uniform(*snr_db)))[0])
