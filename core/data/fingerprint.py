"""Audio fingerprints for content-level duplicate search: find a clip's copies however they were altered.

Copies to find: renamed or re-encoded (lossless or lossy), gain-changed, shifted or trimmed, and
— how psychoacoustic datasets are built — the same recording with noise added (white, pink or
babble at 10 dB SNR or more), band-limited (telephone, AM radio) or reverberated. Unrelated
clips, including the same word said by another speaker, must not match.

Why a phase-based score decides. A copy keeps the waveform's phase: adding noise at 10 dB SNR
leaves most frequency bins dominated by the original; reverberation keeps the direct sound
(a room at 0 dB direct-to-reverberant ratio still leaves the phase of 1 + tail near the
original's); band-limiting, gain, resampling, lossy codecs and shifts keep it in the band.
Two different recordings share no phase, even of the same word by the same speaker. The score
is a generalised cross-correlation with a partial phase transform (GCC, weighting β = 0.6) of
the clips at 8 kHz in 250–4000 Hz, maximised over every lag and normalised so that a clip and
itself score 1; only lags where the clips overlap by half the shorter one count. On FSDD (real
speech) planted copies with noise at 10 dB, band-limited or reverberated score 0.64–1.0 and
unrelated pairs of the same digit by other speakers at most 0.39; on the embedded dataset
unrelated candidate pairs reach 0.43 (200 ms synthetic voices). The threshold is 0.5
(tests/test_audit.py plants every kind of copy in both).

Why two candidate searches first: a GCC per pair costs three FFTs, so each clip is compared
only with its likeliest copies in other splits: the clips whose spectral profile is closest
(cosine of descriptors, also against what a reverberant copy's profile would be, because a
room colours the spectrum), and the clips sharing most spectral-peak landmarks at a
consistent time offset (pairs of peaks, hashed by frequency and time gap, which survive noise
and band-limiting). Either search alone misses some babble or reverberant copies; together
they put every planted copy among the candidates.

Stationary sounds (a steady tone or hum) carry little phase structure across bins; their
exact copies are found by the sample hash, and the weighting keeps two unrelated tones apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.audio import TARGET_SR, log_mel, resample

GCC_SR = 8000
GCC_BAND = (250.0, 4000.0)
BETA = 0.6  # 1 = pure phase transform; 0 = plain cross-correlation
MIN_OVERLAP = 0.5  # of the shorter clip, at the lag scored
MAX_SECONDS = 10.0  # longer clips are fingerprinted on their first 10 s
N_MELS, FMIN, FMAX, HOP_MS, POOL = 48, 250.0, 3500.0, 10.0, 2
FLOOR_PERCENTILE = 80  # cells below a clip's own 80th percentile are its floor (noise hides there)
ROOMS_S = (0.5, 1.5)  # RT60s whose spectral colouring the descriptor search also tries
PEAKS_PER_S, FAN_OUT, MAX_DT = 15, 4, 30  # landmarks: peaks kept per second, pairs per anchor, frames


@dataclass
class Fingerprint:
    wave: np.ndarray  # float16 at GCC_SR, ≤ MAX_SECONDS: the phase score's input
    descriptors: np.ndarray  # (1 + len(ROOMS_S), d) unit vectors: spectral profile as is, then as if reverberated
    hashes: np.ndarray  # int64 landmark hashes
    times: np.ndarray  # int32 landmark anchor times (frames)

    @property
    def descriptor(self) -> np.ndarray:
        return self.descriptors[0]

    @property
    def samples(self) -> int:
        return len(self.wave)


def _spectrogram(x: np.ndarray, sr: int) -> np.ndarray:
    m = log_mel(x, sr, n_mels=N_MELS, hop_ms=HOP_MS, fmin=FMIN, fmax=FMAX).astype(np.float64)
    t = m.shape[1] // POOL * POOL
    return m[:, :t].reshape(N_MELS, -1, POOL).mean(axis=2) if t >= POOL else m


def reverberate_spectrogram(m: np.ndarray, rt60: float) -> np.ndarray:
    """A log-mel spectrogram as a room would leave it: each band's power plus an exponential tail.

    The tail decays 60 dB in `rt60` and holds as much energy as the direct sound (0 dB
    direct-to-reverberant ratio, as `core.data.conditions` renders rooms).
    """
    frame = HOP_MS * POOL / 1000
    k = np.arange(int(np.ceil(rt60 / frame)) + 1)
    kernel = 10 ** (-6 * k * frame / rt60)
    kernel[0] = 0
    kernel /= kernel.sum()
    p = 10 ** (m / 10)
    tail = np.stack([np.convolve(row, kernel)[: len(row)] for row in p])
    return 10 * np.log10(p + tail)


def _descriptor(m: np.ndarray) -> np.ndarray:
    """Profile and spread of each band above the clip's own floor: noise below the floor drops out."""
    m = np.maximum(m, np.percentile(m, FLOOR_PERCENTILE))
    d = np.concatenate([(m - m.min()).mean(axis=1), (m - m.min()).std(axis=1)])
    d -= d.mean()
    return d / (np.linalg.norm(d) + 1e-12)


def _landmarks(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of pairs of spectral peaks (anchor band, band step, time gap) and their anchor times."""
    from scipy.ndimage import maximum_filter

    floor = np.percentile(m, FLOOR_PERCENTILE)
    peak = (m == maximum_filter(m, size=(3, 7))) & (m > floor)
    f, t = np.nonzero(peak)
    keep = max(4, int(PEAKS_PER_S * m.shape[1] * POOL * HOP_MS / 1000))
    order = np.argsort(-m[f, t], kind="stable")[:keep]
    f, t = f[order], t[order]
    by_time = np.argsort(t, kind="stable")
    f, t = f[by_time], t[by_time]
    hashes, times = [], []
    for i in range(len(t)):
        n = 0
        for j in range(i + 1, len(t)):
            dt = t[j] - t[i]
            if dt > MAX_DT:
                break
            df = f[j] - f[i]
            if dt < 1 or abs(df) > 15:
                continue
            hashes.append((int(f[i]) // 2 << 12) | ((int(df) + 15) // 2 << 6) | int(dt))
            times.append(t[i])
            n += 1
            if n >= FAN_OUT:
                break
    return np.array(hashes, np.int64), np.array(times, np.int32)


def fingerprint(x: np.ndarray, sr: int = TARGET_SR) -> Fingerprint:
    """Everything the duplicate search needs of one clip (its first MAX_SECONDS)."""
    x = np.asarray(x, np.float32)[: int(sr * MAX_SECONDS)]
    m = _spectrogram(x, sr)
    descriptors = np.stack([_descriptor(m), *(_descriptor(reverberate_spectrogram(m, r)) for r in ROOMS_S)])
    hashes, times = _landmarks(m)
    wave = resample(x, sr, GCC_SR) if sr != GCC_SR else x
    return Fingerprint(wave.astype(np.float16), descriptors.astype(np.float32), hashes, times)


def phase_scores(
    waves_a: list[np.ndarray], waves_b: list[np.ndarray], beta: float = BETA, min_overlap: float = MIN_OVERLAP
) -> tuple[np.ndarray, np.ndarray]:
    """GCC score of each pair (a_i, b_i), maximised over lags, and the lag in ms (a[t + lag] ≈ b[t]).

    Cross-spectrum A·B̄ in the band, weighted by |A·B̄|^(−β), inverse-transformed; divided by
    2·√(Σ|A|^(2−2β)·Σ|B|^(2−2β))/nfft, its value for a clip against itself, so scores lie in
    [0, 1] (Cauchy–Schwarz). Only lags where the clips overlap by `min_overlap` of the shorter
    one count: a shifted or trimmed copy overlaps its original mostly, while two short unrelated
    clips can line up a few pitch pulses at the edge. One batched FFT per pair length class.
    """
    n = len(waves_a)
    out, lags = np.zeros(n), np.zeros(n, int)
    if not n:
        return out, lags
    need = np.array([len(a) + len(b) for a, b in zip(waves_a, waves_b)])
    nffts = 1 << np.ceil(np.log2(np.maximum(need, 2))).astype(int)
    for nfft in np.unique(nffts):
        idx = np.flatnonzero(nffts == nfft)
        freqs = np.fft.rfftfreq(int(nfft), 1 / GCC_SR)
        band = (freqs >= GCC_BAND[0]) & (freqs <= GCC_BAND[1])
        step = max(1, int(2e7 // nfft))
        for s in range(0, len(idx), step):
            part = idx[s : s + step]
            a = np.zeros((len(part), int(nfft)), np.float32)
            b = np.zeros_like(a)
            for r, i in enumerate(part):
                a[r, : len(waves_a[i])] = waves_a[i]
                b[r, : len(waves_b[i])] = waves_b[i]
            fa, fb = np.fft.rfft(a, axis=1)[:, band], np.fft.rfft(b, axis=1)[:, band]
            cross = fa * np.conj(fb)
            mag = np.abs(cross)
            spec = np.zeros((len(part), len(freqs)), np.complex128)
            spec[:, band] = np.where(mag > 0, cross / np.maximum(mag, 1e-30) ** beta, 0)
            r = np.fft.irfft(spec, int(nfft), axis=1)
            norm = 2 * np.sqrt((np.abs(fa) ** (2 - 2 * beta)).sum(1) * (np.abs(fb) ** (2 - 2 * beta)).sum(1)) / nfft
            k = np.arange(int(nfft))
            k = np.where(k > nfft // 2, k - nfft, k)[None, :]  # r[k] = Σ a[t + k] b[t]
            la = np.array([len(waves_a[i]) for i in part])[:, None]
            lb = np.array([len(waves_b[i]) for i in part])[:, None]
            overlap = np.minimum(lb, la - k) - np.maximum(0, -k)
            r = np.where(overlap >= min_overlap * np.minimum(la, lb), r, -np.inf)
            best = r.argmax(axis=1)
            out[part] = np.where(norm > 0, r[np.arange(len(part)), best] / np.maximum(norm, 1e-30), 0.0)
            lags[part] = np.round(k[0, best] * 1000 / GCC_SR).astype(int)
    return np.clip(out, 0.0, 1.0), lags


def match_scores(fps_a: list[Fingerprint], fps_b: list[Fingerprint]) -> tuple[np.ndarray, np.ndarray]:
    """Copy score of each pair (`phase_scores` of their waves) and the lag in ms."""
    return phase_scores([f.wave.astype(np.float32) for f in fps_a], [f.wave.astype(np.float32) for f in fps_b])
