"""Plotly figures for the evaluation pages (drawing only; the numbers come from core)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def reliability_diagram(bins: dict[str, pd.DataFrame], title: str = "") -> go.Figure:
    """Observed frequency vs mean predicted probability per bin, with bootstrap bands and counts.

    `bins` maps a curve name (e.g. "before", "after") to `calibration.reliability_bands` output.
    Bins flagged `few` are drawn hollow.
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.04)
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"}, name="perfect"),
        row=1,
        col=1,
    )
    for name, r in bins.items():
        if r.empty:
            continue
        symbols = np.where(r["few"], "circle-open", "circle")
        fig.add_trace(
            go.Scatter(
                x=r["mean_predicted"],
                y=r["fraction_positive"],
                mode="lines+markers",
                marker={"symbol": symbols, "size": 9},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": r["ci_upper"] - r["fraction_positive"],
                    "arrayminus": r["fraction_positive"] - r["ci_lower"],
                },
                customdata=np.stack([r["count"], r["lower"], r["upper"]], axis=1),
                hovertemplate="bin %{customdata[1]:.2f}–%{customdata[2]:.2f}<br>n=%{customdata[0]}"
                "<br>predicted %{x:.3f}<br>observed %{y:.3f}<extra>" + name + "</extra>",
                name=name,
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Bar(
                x=(r["lower"] + r["upper"]) / 2,
                y=r["count"],
                width=r["upper"] - r["lower"],
                name=f"{name} n",
                opacity=0.5,
                showlegend=False,
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(title_text="fraction speech", range=[-0.02, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="clips", row=2, col=1)
    fig.update_xaxes(title_text="predicted p(speech)", range=[0, 1], row=2, col=1)
    fig.update_layout(title=title, height=480, margin={"t": 40, "b": 10}, barmode="overlay")
    return fig


def roc_with_point(fpr: np.ndarray, tpr: np.ndarray, point: tuple[float, float], auc: float) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"ROC (AUC {auc:.3f})"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"}, name="chance"))
    fig.add_trace(
        go.Scatter(x=[point[0]], y=[point[1]], mode="markers", marker={"size": 14, "color": "red"}, name="threshold")
    )
    fig.update_layout(
        xaxis_title="false positive rate",
        yaxis_title="true positive rate (speech recall)",
        height=380,
        margin={"t": 20, "b": 10},
    )
    return fig


def confusion(tp: int, fn: int, fp: int, tn: int) -> go.Figure:
    z = [[tp, fn], [fp, tn]]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=["predicted speech", "predicted non-speech"],
            y=["speech", "non-speech"],
            text=z,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
        )
    )
    fig.update_layout(height=260, margin={"t": 10, "b": 10}, yaxis_autorange="reversed")
    return fig


def intervals(rows: list[tuple[str, float, float, float]], xaxis: str) -> go.Figure:
    """A forest plot: one (name, estimate, low, high) row per line."""
    fig = go.Figure()
    for name, est, lo, hi in rows:
        fig.add_trace(
            go.Scatter(
                x=[est],
                y=[name],
                mode="markers",
                marker={"size": 10},
                error_x={"type": "data", "symmetric": False, "array": [hi - est], "arrayminus": [est - lo]},
                name=name,
                showlegend=False,
            )
        )
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    fig.update_layout(xaxis_title=xaxis, height=80 + 50 * len(rows), margin={"t": 10, "b": 10})
    return fig
