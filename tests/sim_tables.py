"""Predictions tables with a known truth, built on the embedded dataset's clips (no model needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.data.splits import make_split, save_split, select_clips
from core.scoring import predictions


def simulated_logits(
    labels: np.ndarray, temperature: float, rng: np.random.Generator, sigma: float = 2.0
) -> np.ndarray:
    """Log-odds z drawn so that z is the true log-odds of speech (z | y ~ N(±σ²/2, σ²)), times T."""
    sign = np.where(np.asarray(labels) == "speech", 1.0, -1.0)
    z = rng.normal(sign * sigma**2 / 2, sigma)
    return temperature * z


def make_tables(ds, split_name: str = "simsplit", seed: int = 5) -> dict[str, str]:
    """Save dev and test tables of two simulated detectors; return {"<det>-<part>": table name}."""
    save_split(ds, split_name, make_split(ds.manifest, seed=seed), {"seed": seed})
    rng = np.random.default_rng(seed)
    names = {}
    for det, t in (("sim-overconfident", 6.0), ("sim-calibrated", 1.0)):
        for part in ("dev", "test"):
            clips = select_clips(ds, split_name, part)
            z = simulated_logits(clips["label"].to_numpy(), t, rng)
            table = predictions.build_table(clips, np.stack([z / 2, -z / 2], axis=1), detector=det, seed=seed)
            name = f"{det}-{part}"
            predictions.save(
                table,
                {"dataset": ds.name, "split_name": split_name, "part": part, "detector": det, "seed": seed},
                name=name,
            )
            names[name] = name
    return names


def load(name: str) -> pd.DataFrame:
    return predictions.load(predictions.resolve(name))[0]
