"""Runs side by side: a pinned baseline with others overlaid, and a sweep's settings against its metric."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.runs import registry, sweeps
from core.runs.registry import METRIC_KEYS

CURVE_METRICS = ("balanced_accuracy", "accuracy", "ece", "short_noisy_balanced_accuracy")


def _dev_curves(run_ids: list[str]) -> pd.DataFrame:
    frames = []
    for run_id in run_ids:
        log = registry.metrics_log(run_id)
        if not log.empty and (log["type"] == "dev").any():
            frames.append(log[log["type"] == "dev"].assign(run=run_id))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def against_baseline(baseline: str, others: list[str], part: str = "test") -> pd.DataFrame:
    """Final metrics of each run and its difference from the baseline run's (positive = higher)."""
    rows = []
    base = (registry.result(baseline) or {}).get(part, {})
    for run_id in [baseline, *others]:
        res = (registry.result(run_id) or {}).get(part, {})
        row = {"run": run_id + (" (baseline)" if run_id == baseline else "")}
        for m in METRIC_KEYS:
            row[m] = res.get(m)
            if run_id != baseline and res.get(m) is not None and base.get(m) is not None:
                row[f"Δ {m}"] = res[m] - base[m]
        rows.append(row)
    return pd.DataFrame(rows)


def side_by_side() -> None:
    """Pin a baseline run; overlay the dev curves of others on it and list their final metrics against it."""
    runs = registry.list_runs()
    if len(runs) < 2:
        return
    st.subheader("Runs side by side")
    ids = runs["run"].tolist()
    c = st.columns([2, 4, 2])
    if st.session_state.get("cmp_baseline") not in ids:  # the oldest finished run: usually the reference
        finished = runs.loc[runs["state"] == "finished", "run"].tolist()
        st.session_state["cmp_baseline"] = finished[-1] if finished else ids[-1]
    baseline = c[0].selectbox("Baseline (pinned)", ids, key="cmp_baseline")
    others = c[1].multiselect(
        "Overlay", [r for r in ids if r != baseline], default=[r for r in ids if r != baseline][:2], key="cmp_others"
    )
    metric = c[2].selectbox("Dev curve", CURVE_METRICS, key="cmp_metric")
    curves = _dev_curves([baseline, *others])
    if not curves.empty and metric in curves:
        fig = go.Figure()
        for run_id, sub in curves.groupby("run", sort=False):
            pinned = run_id == baseline
            fig.add_trace(
                go.Scatter(
                    x=sub["epoch"], y=sub[metric], mode="lines+markers", name=run_id + (" (baseline)" if pinned else ""),
                    line={"width": 4 if pinned else 2, "dash": "solid" if pinned else "dot"},
                )
            )  # fmt: skip
        bounded = curves[metric].dropna().between(0, 1).all()  # rates and ECE: the axis stops at 1
        fig.update_layout(height=320, xaxis_title="epoch", yaxis_title=f"dev {metric}", margin={"t": 30},
                          showlegend=True, legend={"orientation": "h", "y": 1.12},
                          yaxis_range=[0, 1.02] if bounded else None)  # fmt: skip
        st.plotly_chart(fig, key="cmp_runs_chart")
    table = against_baseline(baseline, others)
    st.dataframe(table.style.format(precision=4), hide_index=True, width="stretch", key="cmp_runs_table")


def sweep_parallel(sweep_id: str, metric: str = "balanced_accuracy") -> None:
    """Parallel coordinates: each finished run of the sweep is a line through its settings to its test metric."""
    _, per_seed = sweeps.results_matrix(sweep_id)
    if per_seed.empty or len(per_seed) < 2:
        return
    frame = per_seed.drop(columns=["run"]).copy()
    dims = []
    for col in frame.columns:
        if frame[col].dtype == object:  # categorical settings (targets) as coded axes with their names
            codes, names = pd.factorize(frame[col])
            dims.append({"label": col, "values": codes, "tickvals": list(range(len(names))), "ticktext": list(names)})
        elif col in (metric, "seed") or frame[col].nunique() > 1 or col not in METRIC_KEYS:
            if col in METRIC_KEYS and col != metric:
                continue
            dims.append({"label": col, "values": frame[col].astype(float)})
    fig = go.Figure(
        go.Parcoords(
            line={"color": frame[metric].astype(float), "colorscale": "Viridis", "showscale": True},
            dimensions=dims,
        )
    )
    fig.update_layout(height=340, margin={"t": 40, "l": 60, "r": 60})
    st.caption(f"Each line is a run: its settings and its test {metric} (colour). Drag along an axis to filter.")
    st.plotly_chart(fig, key=f"sweep_parcoords_{sweep_id}")
