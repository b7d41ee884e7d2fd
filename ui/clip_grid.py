"""Clips as a grid of spectrogram thumbnails, each with its player: a filtered list (errors, label
flags, a map selection) heard and seen a dozen at a time instead of one by one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.data.audio import log_mel
from core.errors import LabError


def thumbnail(x: np.ndarray, sr: int) -> np.ndarray:
    """A log-mel image (64 bands, low frequencies at the bottom) scaled to 0–1 over its top 80 dB."""
    m = log_mel(x, sr, n_mels=64)
    m = np.clip((m - (m.max() - 80.0)) / 80.0, 0.0, 1.0)
    return np.flipud(m)


def clip_grid(ds, clips: pd.DataFrame, key: str, columns: int = 4, per_page: int = 12) -> None:
    """`clips` (clip_id, and label / p_speech when present) as pages of thumbnails with players."""
    if ds is None or clips.empty:
        return
    pages = max(1, int(np.ceil(len(clips) / per_page)))
    page = st.number_input(f"Grid page (of {pages})", 1, pages, 1, key=f"{key}_page") if pages > 1 else 1
    shown = clips.iloc[(page - 1) * per_page : page * per_page]
    cols = st.columns(columns)
    for i, row in enumerate(shown.itertuples(index=False)):
        box = cols[i % columns].container(border=True)
        facts = [str(getattr(row, "label", ""))]
        if hasattr(row, "p_speech"):
            facts.append(f"p(speech) {float(row.p_speech):.2f}")
        box.caption(f"`{row.clip_id}`  \n" + " · ".join(f for f in facts if f))
        try:
            clip = ds.load_clip(row.clip_id)
        except LabError as exc:
            box.error(str(exc))
            continue
        box.image(thumbnail(clip.samples, clip.sr), clamp=True, width="stretch")
        box.audio(clip.samples, sample_rate=clip.sr)
