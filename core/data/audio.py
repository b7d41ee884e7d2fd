"""Audio I/O and signal operations: load, validate, resample, normalise, mix at an SNR.

Every clip in the lab is float32 mono at `TARGET_SR`. Loading says what it changed
(downmix, resampling) in `LoadedAudio.notes` and refuses what cannot be a usable clip.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from core import atomic
from core.errors import AudioError

# soxr and librosa are imported inside functions: importing this module stays cheap

TARGET_SR = 16_000
PEAK_LEVEL = 10 ** (-1 / 20)  # -1 dBFS: headroom so PCM16 never clips
SILENCE_PEAK = 1e-5  # below this absolute peak a clip is treated as silent
MIN_SAMPLES = 160  # 10 ms at 16 kHz: one feature frame; condition sets go down to 20 ms


@dataclass
class LoadedAudio:
    """Samples (float32 mono at `sr`) and the changes made while loading them."""

    samples: np.ndarray
    sr: int
    notes: list[str] = field(default_factory=list)
    end_s: float | None = None  # a segment's real end when the asked end lay past the file's end

    @property
    def duration_ms(self) -> float:
        return 1000.0 * len(self.samples) / self.sr


def load_audio(
    path: str | os.PathLike[str],
    target_sr: int = TARGET_SR,
    start_s: float | None = None,
    end_s: float | None = None,
) -> LoadedAudio:
    """Read an audio file (optionally a [start_s, end_s) segment) as mono float32 at target_sr.

    Raises AudioError, naming the file, for unreadable, empty, silent or non-finite audio.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if not path.is_file():
        raise AudioError(f"{path}: not an audio file (a {'folder' if path.is_dir() else 'special file'})")
    for name, value in (("start_s", start_s), ("end_s", end_s)):
        if value is not None and (not np.isfinite(value) or value < 0):
            raise AudioError(f"{path}: segment {name} = {value!r} must be a number of seconds ≥ 0")
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise AudioError(f"{path}: segment end {end_s} s is not after its start {start_s} s")
    try:
        info = sf.info(str(path))
        start = int(round((start_s or 0.0) * info.samplerate))
        stop = None if end_s is None else int(round(end_s * info.samplerate))
        frames = int(info.frames) if 0 < info.frames < 2**62 else None  # streamed files may not say
        if frames is not None and start_s is not None and start >= frames:
            raise AudioError(
                f"{path}: segment starts at {start_s} s, at or past the file's end ({frames / info.samplerate:.3f} s)"
            )
        data, sr = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(
            f"{path}: cannot decode audio ({exc}). Corrupt or truncated file, or a format "
            "libsndfile does not read; convert it to WAV or FLAC."
        ) from exc
    notes: list[str] = []
    real_end = None
    if stop is not None and frames is not None and stop > frames + 1:  # past the end by more than rounding
        real_end = frames / info.samplerate
        notes.append(f"segment end {end_s:g} s past the file's end: cut to {real_end:.3f} s")
    _check_not_truncated(path, info.extra_info)
    if data.shape[0] == 0:
        where = "" if start_s is None and end_s is None else f" in segment [{start_s}, {end_s}) s"
        raise AudioError(f"{path}: empty clip (0 samples){where}")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).any(axis=1).sum())
        raise AudioError(f"{path}: {bad} sample(s) are NaN or infinite")
    if data.shape[1] > 1:
        notes.append(f"downmixed {data.shape[1]} channels to mono")
        data = data.mean(axis=1, keepdims=True)
    samples = data[:, 0]
    if sr != target_sr:
        notes.append(f"resampled from {sr} Hz to {target_sr} Hz")
        samples = resample(samples, sr, target_sr)
    if len(samples) < MIN_SAMPLES:
        raise AudioError(
            f"{path}: {1000 * len(samples) / target_sr:.1f} ms of audio; the lab needs at least "
            f"{1000 * MIN_SAMPLES / TARGET_SR:.0f} ms (one feature frame)"
        )
    if np.max(np.abs(samples)) < SILENCE_PEAK:
        raise AudioError(f"{path}: silent clip (peak below {SILENCE_PEAK:g}; all-zero audio)")
    return LoadedAudio(samples.astype(np.float32, copy=False), target_sr, notes, real_end)


_DATA_SIZE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _check_not_truncated(path: Path, log: str) -> None:
    """libsndfile silently reads what is left of a truncated WAV; its log says so: refuse it.

    Streaming writers leave 0 or 0xFFFFFFFF as the data size; those are not truncation.
    """
    m = _DATA_SIZE.search(log or "")
    if m and 0 < int(m[2]) < int(m[1]) < 0xFFFFFFF0:
        raise AudioError(f"{path}: truncated file: header declares {m[1]} bytes of audio, only {m[2]} present")


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """High-quality band-limited resampling (libsoxr, the resampler librosa uses by default)."""
    if orig_sr == target_sr:
        return x.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(x.astype(np.float32), orig_sr, target_sr, quality="HQ").astype(np.float32)


def write_wav(path: str | os.PathLike[str], x: np.ndarray, sr: int = TARGET_SR, atomic_write: bool = True) -> Path:
    """Write 16-bit PCM WAV, atomically (temp file, then rename) unless the caller's folder
    is itself a temporary build folder that will be renamed into place whole."""
    if not np.isfinite(x).all():
        raise AudioError(f"{path}: refusing to write NaN or infinite samples")
    # Quantise here rather than in libsndfile (which scales floats by 32767 on write but
    # by 1/32768 on read), so the file decodes to exactly the samples `content_hash` saw.
    pcm = to_pcm16(x)
    if not atomic_write:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), pcm, sr, subtype="PCM_16", format="WAV")
        return Path(path)
    return atomic.write_with(path, lambda p: sf.write(str(p), pcm, sr, subtype="PCM_16", format="WAV"), ".wav")


def to_pcm16(x: np.ndarray) -> np.ndarray:
    """Quantise float samples the way a PCM16 WAV stores them."""
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def content_hash(x: np.ndarray) -> str:
    """SHA-256 (first 16 hex digits) of the decoded samples as PCM16.

    Hashing decoded samples, not file bytes, makes a renamed copy or a lossless re-encode
    (WAV → FLAC, other header) hash the same.
    """
    return hashlib.sha256(to_pcm16(x).tobytes()).hexdigest()[:16]


def peak_normalise(x: np.ndarray, peak: float = PEAK_LEVEL) -> np.ndarray:
    """Scale so max |x| == peak. Peak, not RMS: RMS normalisation erases the SNR cue."""
    m = float(np.max(np.abs(x))) if len(x) else 0.0
    if m < SILENCE_PEAK:
        raise AudioError("cannot peak-normalise a silent clip")
    return (x * (peak / m)).astype(np.float32)


def frame_energy_db(x: np.ndarray, sr: int, frame_ms: float = 20.0) -> np.ndarray:
    """Per-frame mean power in dB (non-overlapping frames; the last partial frame included)."""
    n = max(1, int(sr * frame_ms / 1000))
    pad = (-len(x)) % n
    frames = np.pad(x.astype(np.float64), (0, pad)).reshape(-1, n)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)


def active_mask(x: np.ndarray, sr: int, threshold_db: float = -40.0, frame_ms: float = 20.0) -> np.ndarray:
    """Boolean per-sample mask of the clip's active part.

    A sample is active when its 20 ms frame has power within `threshold_db` of the loudest
    frame. This is the part over which the lab defines signal power for an SNR, so a short
    event padded with silence gets the SNR a listener would hear during the event.
    """
    n = max(1, int(sr * frame_ms / 1000))
    e = frame_energy_db(x, sr, frame_ms)
    frames_on = e >= e.max() + threshold_db
    return np.repeat(frames_on, n)[: len(x)]


def mix_at_snr(
    signal: np.ndarray, noise: np.ndarray, snr_db: float, sr: int = TARGET_SR
) -> tuple[np.ndarray, np.ndarray]:
    """Add `noise` scaled so that signal/noise power over the signal's active part is `snr_db`.

    SNR = 10·log10(P_s / P_n), both powers averaged over the same active samples of the
    signal (see `active_mask`). Returns (mixture, scaled_noise); the mixture is not normalised.
    """
    if len(noise) < len(signal):
        raise AudioError(f"noise has {len(noise)} samples, signal {len(signal)}: noise too short")
    noise = noise[: len(signal)].astype(np.float64)
    mask = active_mask(signal, sr)
    p_s = np.mean(signal[mask].astype(np.float64) ** 2)
    p_n = np.mean(noise[mask] ** 2)
    if p_n <= 0:
        raise AudioError("noise is silent over the signal's active part")
    scaled = noise * np.sqrt(p_s / (p_n * 10 ** (snr_db / 10)))
    return (signal + scaled).astype(np.float32), scaled.astype(np.float32)


def measure_snr(signal: np.ndarray, scaled_noise: np.ndarray, sr: int = TARGET_SR) -> float:
    """The SNR in dB of a signal and the noise added to it, by the `mix_at_snr` definition."""
    mask = active_mask(signal, sr)
    p_s = np.mean(signal[mask].astype(np.float64) ** 2)
    p_n = np.mean(scaled_noise[mask].astype(np.float64) ** 2)
    return float(10 * np.log10(p_s / p_n))


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """White, pink (1/f) or brown (1/f²) Gaussian noise of unit RMS, shaped in the frequency domain."""
    exponents = {"white": 0.0, "pink": 1.0, "brown": 2.0}
    if colour not in exponents:
        raise ValueError(f"noise colour must be one of {sorted(exponents)}, got {colour!r}")
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    spec *= f ** (-exponents[colour] / 2)
    y = np.fft.irfft(spec, n)
    y -= y.mean()
    return (y / (np.sqrt(np.mean(y**2)) + 1e-12)).astype(np.float32)


def fade(x: np.ndarray, sr: int, ms: float = 5.0) -> np.ndarray:
    """Raised-cosine fade in and out, so crops do not start or end with a click."""
    n = min(int(sr * ms / 1000), len(x) // 2)
    if n == 0:
        return x
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n, dtype=np.float32))
    y = x.copy()
    y[:n] *= ramp
    y[-n:] *= ramp[::-1]
    return y


def log_mel(
    x: np.ndarray,
    sr: int = TARGET_SR,
    n_mels: int = 64,
    hop_ms: float = 10.0,
    fmin: float = 50.0,
    fmax: float | None = None,
) -> np.ndarray:
    """Log-mel spectrogram in dB (n_mels × frames), 25 ms windows, for display and fingerprints."""
    import librosa

    hop = int(sr * hop_ms / 1000)
    mel = librosa.feature.melspectrogram(
        y=x.astype(np.float32),
        sr=sr,
        n_fft=512,
        win_length=int(sr * 0.025),
        hop_length=hop,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax or sr / 2,
        power=2.0,
        center=True,
    )
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).astype(np.float32)
