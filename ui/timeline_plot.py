"""The Timeline figure: waveform envelope, reference speech, detector curves and their segments, on one time axis."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

MAX_POINTS = 4000  # drawn points per trace: a one-hour curve is thinned, never sent whole


def envelope(x: np.ndarray, sr: int, points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, min, max) of `x` in `points` equal blocks: every peak survives the thinning."""
    n = max(1, len(x) // points)
    m = len(x) // n * n
    blocks = x[:m].reshape(-1, n) if m else x.reshape(1, -1)
    t = (np.arange(len(blocks)) * n + n / 2) / sr
    return t, blocks.min(axis=1), blocks.max(axis=1)


def thin_curve(values: np.ndarray, step: float, points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(times, values) at most `points` long, keeping each block's maximum (a short burst stays visible)."""
    n = max(1, int(np.ceil(len(values) / points)))
    m = len(values) // n * n
    v = values[:m].reshape(-1, n).max(axis=1) if m else values
    if m < len(values):
        v = np.r_[v, values[m:].max()]
    return np.arange(len(v)) * step * n, v


def _bands(fig: go.Figure, segments: np.ndarray, y0: float, y1: float, color: str, name: str, row: int) -> None:
    """Segments as one filled trace (rectangles separated by gaps: one trace, not a shape per segment)."""
    seg = np.asarray(segments, float).reshape(-1, 2)
    a, b, gap = seg[:, :1], seg[:, 1:], np.full((len(seg), 1), np.nan)
    xs = np.hstack([a, a, b, b, a, gap]).ravel()
    ys = np.tile([y0, y1, y1, y0, y0, np.nan], len(seg))
    fig.add_trace(go.Scatter(x=xs if len(seg) else [None], y=ys if len(seg) else [None], fill="toself", mode="lines",
                             line={"width": 0}, fillcolor=color, name=name, hoverinfo="skip", connectgaps=False),
                  row=row, col=1)  # fmt: skip


def timeline(env: tuple[np.ndarray, np.ndarray, np.ndarray], reference: np.ndarray,
             curves: list[tuple[str, np.ndarray, float, np.ndarray]], onset: float, offset: float, errors=None,
             title: str = "") -> go.Figure:  # fmt: skip
    """Waveform above; reference and each detector's curve (with its segments and the thresholds) below.

    `env`: the waveform's `envelope` (computed once per recording, not per move); `curves`: (name, values, step, hypothesis segments) per detector; `errors`: a misses/false-alarm
    table (kind, start, end) to shade on the waveform."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.35, 0.65], vertical_spacing=0.04)
    t, lo, hi = env
    fig.add_trace(go.Scatter(x=np.r_[t, t[::-1]], y=np.r_[hi, lo[::-1]], fill="toself", mode="lines",
                             line={"width": 0.5, "color": "#4c72b0"}, name="waveform", hoverinfo="skip"),
                  row=1, col=1)  # fmt: skip
    if errors is not None and len(errors):
        for kind, color in (("miss", "rgba(214,39,40,0.25)"), ("false alarm", "rgba(255,127,14,0.25)")):
            seg = errors[errors["kind"] == kind][["start", "end"]].to_numpy()
            _bands(fig, seg, float(lo.min()), float(hi.max()), color, kind, 1)
    _bands(fig, reference, 1.02, 1.10, "rgba(44,160,44,0.8)", "reference speech", 2)
    palette = ["#1f77b4", "#9467bd", "#8c564b", "#e377c2"]
    for k, (name, values, step, hyp) in enumerate(curves):
        tc, vc = thin_curve(values, step)
        color = palette[k % len(palette)]
        fig.add_trace(go.Scatter(x=tc, y=vc, mode="lines", line={"shape": "hv", "color": color, "width": 1},
                                 name=f"{name}: p(speech)"), row=2, col=1)  # fmt: skip
        _bands(fig, hyp, 1.12 + 0.1 * k, 1.2 + 0.1 * k, color, f"{name}: segments", 2)
    fig.add_hline(y=onset, line={"dash": "dash", "color": "#333", "width": 1}, row=2, col=1,
                  annotation_text="onset", annotation_position="top left")  # fmt: skip
    if offset != onset:
        fig.add_hline(y=offset, line={"dash": "dot", "color": "#777", "width": 1}, row=2, col=1,
                      annotation_text="offset", annotation_position="bottom left")  # fmt: skip
    fig.update_yaxes(title_text="amplitude", row=1, col=1)
    fig.update_yaxes(title_text="p(speech)", range=[0, 1.22 + 0.1 * len(curves)], row=2, col=1)
    fig.update_xaxes(title_text="time (s)", row=2, col=1)
    fig.update_layout(height=480, title=title, margin={"t": 40, "b": 30}, legend={"orientation": "h", "y": -0.15})
    return fig
