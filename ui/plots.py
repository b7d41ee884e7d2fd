"""Plotly figures for the pages (figures only; no Streamlit calls)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.data.audio import log_mel


def waveform(x: np.ndarray, sr: int, title: str = "") -> go.Figure:
    """Waveform; long clips are drawn as a min/max envelope so the browser stays fast."""
    step = max(1, len(x) // 4000)
    if step > 1:
        n = len(x) // step * step
        frames = x[:n].reshape(-1, step)
        t = np.arange(frames.shape[0]) * step / sr
        fig = go.Figure(
            [
                go.Scatter(x=t, y=frames.max(1), line=dict(width=0.8), name="max"),
                go.Scatter(x=t, y=frames.min(1), line=dict(width=0.8), fill="tonexty", name="min"),
            ]
        )
    else:
        fig = go.Figure(go.Scatter(x=np.arange(len(x)) / sr, y=x, line=dict(width=0.8)))
    fig.update_layout(
        title=title,
        height=220,
        margin=dict(l=10, r=10, t=30, b=10),
        showlegend=False,
        xaxis_title="time (s)",
        yaxis_title="amplitude",
        yaxis_range=[-1, 1],
    )
    return fig


def spectrogram(x: np.ndarray, sr: int, title: str = "") -> go.Figure:
    m = log_mel(x, sr, n_mels=64)
    t = np.arange(m.shape[1]) * 0.01
    fig = go.Figure(
        go.Heatmap(
            z=m,
            x=t,
            y=np.arange(m.shape[0]),
            colorscale="Viridis",
            zmin=m.max() - 80,
            zmax=m.max(),
            colorbar=dict(title="dB"),
        )
    )
    fig.update_layout(
        title=title, height=260, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="time (s)", yaxis_title="mel band"
    )
    return fig


def group_counts(manifest: pd.DataFrame) -> go.Figure:
    """Clips per group, coloured by split if there is one, else by label."""
    colour = "split" if "split" in manifest.columns else "label"
    keys = list(dict.fromkeys(["group_id", colour, "label"]))
    counts = manifest.groupby(keys).size().reset_index(name="clips")
    fig = px.bar(counts, x="group_id", y="clips", color=colour, pattern_shape="label", height=320)
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=10), xaxis_title="group", xaxis_tickangle=-60)
    return fig
