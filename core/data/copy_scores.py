"""How copies score: a dataset's own clips copied as a careless builder would (noise, band limits,
rooms, gain, resampling, shifts, lossy codecs), so the audit's near-copy threshold is an
informed choice for this dataset and a test has copies with a known truth.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from core.data.fingerprint import fingerprint, match_scores

COPY_TRANSFORMS = (
    "white10", "white20", "pink10", "pink20", "babble10", "babble20",
    "telephone", "am-radio", "small-room", "large-hall", "gain", "resampled", "shifted", "lossy",
)  # fmt: skip


def planted_copy(name: str, x: np.ndarray, rng: np.random.Generator, babble: list[np.ndarray]) -> np.ndarray:
    """`x` as a careless dataset builder would copy it (one of COPY_TRANSFORMS), at 16 kHz.

    Noise at 10 or 20 dB SNR (white, pink, or babble from `babble` talkers), a telephone or AM
    band, a small room (RT60 0.3 s) or a large hall (1.5 s), −10 dB gain, resampled through
    8 kHz, shifted by 30 ms, or re-encoded lossily (Ogg Vorbis).
    """
    import io

    import soundfile as sf

    from core.data import conditions as cond
    from core.data.audio import mix_at_snr, peak_normalise, resample

    if name[:-2] in ("white", "pink", "babble"):
        noise = cond.NoiseSource(name[:-2], 16000, babble)(len(x), rng)
        return peak_normalise(mix_at_snr(x, noise, float(name[-2:]))[0])
    if name in ("telephone", "am-radio"):
        return peak_normalise(cond.band_limit(x, 16000, cond.BANDS[name]))
    if name in ("small-room", "large-hall"):
        return peak_normalise(cond.reverberate(x, cond.synth_rir(cond.ROOMS[name], 16000, rng)))
    if name == "gain":
        return (x * 10 ** (-10 / 20)).astype(np.float32)
    if name == "resampled":
        return resample(resample(x, 16000, 8000), 8000, 16000)
    if name == "shifted":
        return np.concatenate([np.zeros(480, np.float32), x])
    if name == "lossy":
        buf = io.BytesIO()
        sf.write(buf, x, 16000, format="OGG", subtype="VORBIS")
        buf.seek(0)
        return sf.read(buf, dtype="float32")[0]
    raise ValueError(f"unknown copy transform {name!r}; choose from {COPY_TRANSFORMS}")


def planted_scores(
    manifest: pd.DataFrame, load: Callable[[pd.Series], np.ndarray], n: int = 12, seed: int = 0
) -> pd.DataFrame:
    """Copy scores of copies of `n` of the manifest's own clips under every COPY_TRANSFORMS.

    Beside the scores of the pairs an audit compared (nearly all strangers), these show where
    this dataset's copies would land, so a threshold is an informed choice. Babble is drawn
    from speech clips outside the ones copied.
    """
    rng = np.random.default_rng(seed)
    picks = manifest.sample(min(n, len(manifest)), random_state=seed)
    talkers = manifest[(manifest["label"] == "speech") & ~manifest["clip_id"].isin(picks["clip_id"])].head(24)
    babble = [load(row) for _, row in talkers.iterrows()] or [load(row) for _, row in picks.iterrows()]
    rows = []
    for _, row in picks.iterrows():
        x = load(row)
        fx = fingerprint(x)
        copies = [fingerprint(np.asarray(planted_copy(t, x, rng, babble), np.float32)) for t in COPY_TRANSFORMS]
        scores, _ = match_scores(copies, [fx] * len(copies))
        rows += [
            {"transform": t, "clip_id": row["clip_id"], "score": float(s)} for t, s in zip(COPY_TRANSFORMS, scores)
        ]
    return pd.DataFrame(rows)


def score_histogram(scores: np.ndarray, bins: int = 50) -> dict[str, list]:
    """Counts of scores in `bins` equal bins over [0, 1] (what the audit view draws; small to save)."""
    counts, edges = np.histogram(np.clip(scores, 0, 1), bins=bins, range=(0.0, 1.0))
    return {"edges": edges.round(4).tolist(), "counts": counts.tolist()}
