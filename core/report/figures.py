"""Plotly figures for the pages and the study report (drawing only; the numbers come from the analysis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# plotly is imported inside functions: importing this module stays cheap


def interval_bars(estimate, lower, upper) -> dict:
    """Plotly error bars drawing the interval [lower, upper] around each estimate."""
    return {"type": "data", "symmetric": False, "array": upper - estimate, "arrayminus": estimate - lower}


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
    palette = {"before": "#ef6c00", "after": "#1565c0"}
    spare = iter(["#2e7d32", "#6a1b9a", "#c62828", "#00838f"])
    for name, r in bins.items():
        if r.empty:
            continue
        colour = palette.get(name) or next(spare, "#555555")
        symbols = np.where(r["few"], "circle-open", "circle")
        fig.add_trace(
            go.Scatter(
                x=r["mean_predicted"],
                y=r["fraction_positive"],
                mode="lines+markers",
                line={"color": colour},
                marker={"symbol": symbols, "size": 9, "color": colour},
                legendgroup=name,
                error_y=interval_bars(r["fraction_positive"], r["ci_lower"], r["ci_upper"]),
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
                name=f"{name}: clips per bin",
                marker={"color": colour},
                opacity=0.45,
                legendgroup=name,
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
    fig.update_layout(height=280, margin={"t": 10, "b": 10}, yaxis_autorange="reversed",
                      xaxis_title="the detector says", yaxis_title="the label says")  # fmt: skip
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
                error_x=interval_bars(np.array([est]), np.array([lo]), np.array([hi])),
                name=name,
                showlegend=False,
            )
        )
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    fig.update_layout(xaxis_title=xaxis, height=80 + 50 * len(rows), margin={"t": 10, "b": 10})
    return fig


def stratum_order(value) -> tuple:
    """Panels in numeric order (−10, −5, 0, 5, 10, 20 dB), text after them, 'clean' last."""
    text = str(value)
    if text == "clean":
        return (2, 0.0, text)
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def spaced_ticks(levels: list[float], most: int) -> list[float]:
    """At most `most` of the tested levels as log-axis ticks, never closer than an even share of the
    decades they span (first and last kept): 50, 75, 100, 150 ms labels collided in a narrow panel."""
    if len(levels) <= 2:
        return levels
    logs = np.log10(levels)
    gap = (logs[-1] - logs[0]) / max(1, most - 1) * 0.9
    kept = [0]
    for i in range(1, len(levels) - 1):
        if logs[i] - logs[kept[-1]] >= gap and logs[-1] - logs[i] >= gap:
            kept.append(i)
    kept.append(len(levels) - 1)
    return [levels[i] for i in kept]


# long: one figure's panels, traces and annotations; split up it reads worse
def psychometric_panels(
    curves: dict[tuple[str, str], tuple],
    observed: dict[tuple[str, str], pd.DataFrame],
    axis: str,
    axis_title: str,
    target: float,
) -> go.Figure:
    """Accuracy vs `axis`, one panel per stratum, one colour per detector: points with Wilson bars,
    the fitted curve and the threshold with its bootstrap CI (drawn only when inside the range).

    curves maps (detector, stratum) to (x, y, threshold, (lo, hi), bound); observed to the rows of
    `psychometrics.observed` for that pair.
    """
    strata = sorted({s for _, s in list(curves) + list(observed)}, key=stratum_order)
    detectors = sorted({d for d, _ in list(curves) + list(observed)})
    xs = [np.asarray(o[axis], float) for o in observed.values() if len(o)]
    xs += [np.asarray(f[0], float) for f in curves.values()]
    tested = np.concatenate(xs) if xs else np.array([1.0, 2.0])
    levels_min, levels_max = float(np.nanmin(tested)), float(np.nanmax(tested))
    cols = min(3, max(1, len(strata)))
    rows = int(np.ceil(len(strata) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=strata, shared_yaxes=True)
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    for si, stratum in enumerate(strata):
        r, c = si // cols + 1, si % cols + 1
        for di, det in enumerate(detectors):
            colour = palette[di % len(palette)]
            obs = observed.get((det, stratum))
            if obs is not None and len(obs):
                fig.add_trace(
                    go.Scatter(
                        x=obs[axis],
                        y=obs["accuracy"],
                        mode="markers",
                        marker={"color": colour, "size": 7},
                        error_y=interval_bars(obs["accuracy"], obs["ci_lower"], obs["ci_upper"]),
                        name=det,
                        legendgroup=det,
                        showlegend=si == 0,
                        customdata=obs["n"],
                        hovertemplate="%{x}: %{y:.3f} (n=%{customdata})<extra>" + det + "</extra>",
                    ),
                    row=r,
                    col=c,
                )
            fit = curves.get((det, stratum))
            if fit is None:
                continue
            x, y, thr, (lo, hi), bound = fit
            fig.add_trace(
                go.Scatter(
                    x=x, y=y, mode="lines", line={"color": colour}, name=f"{det} fit", legendgroup=det, showlegend=False
                ),
                row=r,
                col=c,
            )
            if bound is not None:  # outside the tested range: an arrow at the edge, pointing where it lies
                edge = levels_max if bound.startswith(">") else levels_min
                fig.add_trace(
                    go.Scatter(
                        x=[edge],
                        y=[target],
                        mode="markers",
                        marker={"color": colour, "size": 12,
                                "symbol": "triangle-right" if bound.startswith(">") else "triangle-left"},
                        name=f"{det} threshold {bound}",
                        legendgroup=det,
                        showlegend=False,
                        hovertemplate=f"{det}: threshold {bound}<extra></extra>",
                    ),
                    row=r,
                    col=c,
                )  # fmt: skip
            if bound is None and np.isfinite(thr):
                fig.add_trace(
                    go.Scatter(
                        x=[thr],
                        y=[target],
                        mode="markers",
                        marker={"color": colour, "symbol": "diamond", "size": 10},
                        error_x={
                            "type": "data",
                            "symmetric": False,
                            "array": [max(hi - thr, 0)] if np.isfinite(hi) else [0],
                            "arrayminus": [max(thr - lo, 0)] if np.isfinite(lo) else [0],
                        },
                        name=f"{det} threshold",
                        legendgroup=det,
                        showlegend=False,
                    ),
                    row=r,
                    col=c,
                )
    fig.add_hline(y=target, line_dash="dot", line_color="grey")
    fig.add_hline(y=0.5, line_dash="dash", line_color="lightgrey")
    pad = 0.06 * (levels_max - levels_min) if axis != "duration_ms" else 0.0
    if axis == "duration_ms":  # log axis bounded to the tested durations (ticks at the tested levels)
        ticks = spaced_ticks(sorted({float(v) for obs in observed.values() for v in obs[axis]}), 3 + 6 // cols)
        fig.update_xaxes(
            type="log",
            range=[np.log10(levels_min / 1.2), np.log10(levels_max * 1.2)],
            tickvals=ticks or None,
            ticktext=[f"{v:g}" for v in ticks] or None,
        )
    else:
        fig.update_xaxes(range=[levels_min - pad, levels_max + pad])
    fig.update_xaxes(title_text=axis_title)
    fig.update_yaxes(range=[0.3, 1.02], title_text="proportion correct", col=1)
    fig.update_layout(height=330 * rows, margin={"t": 40, "b": 10})
    return fig


def copy_score_evidence(hist: dict, planted: pd.DataFrame, threshold: float) -> go.Figure:
    """Where copy scores fall: the audit's compared pairs (nearly all strangers) against planted copies.

    Top: histogram of every compared pair's score (log counts). Bottom: this dataset's own clips
    copied under each transformation, one dot per copy. The threshold is the dashed line.
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.45, 0.55], vertical_spacing=0.06)
    edges = np.asarray(hist["edges"])
    fig.add_trace(
        go.Bar(
            x=(edges[:-1] + edges[1:]) / 2,
            y=hist["counts"],
            width=np.diff(edges),
            name="pairs compared (candidates in other splits)",
            marker_color="#90a4ae",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=planted["score"],
            y=planted["transform"],
            mode="markers",
            marker={"color": "#c62828", "size": 7, "opacity": 0.7},
            name="planted copies of this dataset's clips",
        ),
        row=2,
        col=1,
    )
    fig.add_vline(x=threshold, line_dash="dash", line_color="black")
    fig.update_yaxes(type="log", title_text="pairs", row=1, col=1)
    fig.update_xaxes(range=[0, 1.01], title_text="copy score", row=2, col=1)
    fig.update_layout(height=520, margin={"t": 30, "b": 10}, legend={"orientation": "h", "y": 1.08})
    return fig


def group_forest(groups: dict[str, pd.DataFrame], by: str = "group_id") -> go.Figure:
    """Accuracy per held-out group with Wilson 95% intervals, worst at the top; one colour per table.

    `groups` maps a table's label to its `analysis.groups.per_group` frame; the first table's order
    sorts the rows, so a baseline drawn beside it is read group by group.
    """
    colours = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a"]
    first = next(iter(groups.values()))
    order = first[by].astype(str).tolist()
    fig = go.Figure()
    for (name, g), colour in zip(groups.items(), colours):
        g = g.set_index(g[by].astype(str)).reindex(order)
        fig.add_trace(
            go.Scatter(
                x=g["accuracy"],
                y=[f"{i} ({lab})" for i, lab in zip(order, g["label"])],
                mode="markers",
                marker={"color": colour, "size": 9},
                error_x=interval_bars(g["accuracy"], g["ci_lower"], g["ci_upper"]),
                name=name,
                customdata=np.array(order)[:, None],
                hovertemplate="%{y}: %{x:.3f}<extra>" + name + "</extra>",
            )
        )
    fig.add_vline(x=0.5, line_dash="dash", line_color="lightgrey")
    fig.update_layout(
        height=max(300, 22 * len(order) + 120),
        margin={"t": 30, "b": 10},
        xaxis={"title": "accuracy on the held-out group", "range": [0, 1.02]},
        yaxis={"autorange": "reversed"},
        legend={"orientation": "h", "y": 1.04},
    )
    return fig


def risk_coverage(curves: dict[str, pd.DataFrame], alpha: float | None = None,
                  point: tuple[float, float] | None = None) -> go.Figure:  # fmt: skip
    """Error among decided clips against the fraction decided, one line per table on the same axes
    (`core.analysis.conformal.risk_coverage` frames); `point`: a fitted rule's (coverage, error) on test."""
    colours = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f"]
    fig = go.Figure()
    for (name, rc), colour in zip(curves.items(), colours * 3):
        step = max(1, len(rc) // 2000)  # thinned for drawing
        fig.add_trace(go.Scatter(x=rc["coverage"][::step], y=rc["error"][::step], mode="lines", name=name,
                                 line={"color": colour}))  # fmt: skip
    if point is not None:
        fig.add_trace(go.Scatter(x=[point[0]], y=[point[1]], mode="markers", name="the fitted rule on test",
                                 marker={"size": 12, "symbol": "x", "color": "black"}))  # fmt: skip
    if alpha is not None:
        fig.add_hline(y=alpha, line={"dash": "dash", "color": "grey"}, annotation_text=f"α = {alpha:g}")
    fig.update_layout(xaxis={"title": "fraction decided (coverage)", "range": [0, 1.02]},
                      yaxis={"title": "error among decided", "rangemode": "tozero"}, height=420,
                      margin={"t": 30, "b": 10}, legend={"orientation": "h", "y": 1.08})  # fmt: skip
    return fig
