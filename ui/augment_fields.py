"""The Runs form's augmentation fields: what real recordings need, each a TrainConfig setting (0 = off)."""

from __future__ import annotations

import streamlit as st

# (setting, label, max, step, help)
FIELDS = (
    ("stretch", "Time stretch ±", 0.45, 0.05, "A factor in [1 − x, 1 + x]: 0.1 = 0.9–1.1× (the pitch stays)."),
    ("pitch", "Pitch shift ± semitones", 12.0, 0.5, "A shift in [−x, +x] semitones (the duration stays)."),
    ("room_prob", "Room (probability)", 1.0, 0.05,
     "Reverberation of a simulated shoebox room (pyroomacoustics' image-source method, RT60 0.2–0.9 s)."),
    ("telephone_prob", "Telephone (probability)", 1.0, 0.05, "300–3400 Hz at 8 kHz with 8-bit µ-law."),
    ("codec_prob", "Low bit rate (probability)", 1.0, 0.05, "GSM 06.10 (13 kbit/s), MP3 16–32 kbit/s or Vorbis."),
)  # fmt: skip


def augment_fields(prefix: str = "run") -> dict:
    """Number inputs in one row; returns the TrainConfig keyword arguments."""
    st.caption("Augmentation for real recordings (0 = off; recorded in the run's config, reproducible from its seed)")
    cols = st.columns(len(FIELDS) + 2)
    out: dict = {
        name: float(col.number_input(label, 0.0, hi, 0.0, step, key=f"{prefix}_{name}", help=why))
        for col, (name, label, hi, step, why) in zip(cols, FIELDS)
    }
    why = "Recording gain drawn from [low, high] dB: below 0 quieter recordings, above 0 clipping at full scale."
    low = cols[-2].number_input("Gain low (dB)", -60.0, 0.0, 0.0, 1.0, key=f"{prefix}_gain_low", help=why)
    high = cols[-1].number_input("Gain high (dB)", 0.0, 40.0, 0.0, 1.0, key=f"{prefix}_gain_high", help=why)
    out["gain_db"] = (float(low), float(high))
    return out
