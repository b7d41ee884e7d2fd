"""Errors: every clip with its predictions across runs; filter, listen, tag; systematic vs random errors."""

import pandas as pd
import plotly.express as px
import streamlit as st

from core.analysis.calibration_report import fit as fit_calibrator
from core.analysis.error_analysis import (
    clean_source,
    confident_errors,
    consistently_wrong,
    error_rates,
    filter_clips,
    per_clip,
)
from core.data import annotations
from core.errors import LabError
from core.scoring import predictions
from ui import plots
from ui.clip_grid import clip_grid
from ui.clip_panel import tag_form
from ui.state import get_dataset, load_table, table_names

st.title("Errors")
st.caption(
    "Are errors random or systematic? Pick runs or seeds scored on the same clips: clips wrong in most of them, "
    "and clips wrong with high confidence, are where label noise and leakage hide. Click a row or a point to listen."
)

tables = predictions.describe_tables()
if tables.empty:
    st.info(
        "No predictions tables yet. First: **Data** → **Split & leakage audit** → **Evaluate** (score a split with "
        "one or more detectors), or train a run on **Runs**; then every clip's predictions are here."
    )
    st.stop()
names = tables["table"].tolist()
if "err_tables" not in st.session_state:
    focus = st.session_state.get("focus_table")
    first = tables[tables["table"] == focus].iloc[0] if focus in names else tables.iloc[0]
    same = tables[
        (tables["dataset"] == first["dataset"])
        & (tables["split_name"] == first["split_name"])
        & (tables["part"] == first["part"])
    ]
    st.session_state["err_tables"] = same["table"].head(6).tolist()
readable = table_names(tables)
chosen = st.multiselect(
    "Predictions tables (runs, seeds or detectors on the same clips)",
    names,
    key="err_tables",
    format_func=lambda n: readable.get(n, n),
)
if not chosen:
    st.stop()
c = st.columns([2, 2, 3])
rule = st.session_state.get("decision_rule")
use_rule = bool(rule) and c[0].checkbox(
    "Decide as on the Thresholds page",
    key="err_use_rule",
    help="speech if logit / T > t, with the t and T set there",
)
if use_rule:
    threshold, decision_t = rule["threshold"], rule["temperature"]
    c[0].caption(f"t = {threshold:.3g}, T = {decision_t:.3g} (set for {rule['table']})")
else:
    threshold = c[0].number_input("Decision threshold (log-odds)", -20.0, 20.0, 0.0, 0.1, key="err_threshold")
    decision_t = 1.0
calibrate = c[1].checkbox("Calibrated p (T fitted on each dev table)", key="err_calibrate")
st.caption(
    f"Decisions here: speech if logit / {decision_t:.3g} > {threshold:.3g}"
    + (" — the Thresholds page's rule." if use_rule else " — not the Thresholds page's rule; tick the box to use it.")
    + " Calibrated p only changes the probabilities shown, never a decision."
)

loaded = {n: load_table(n) for n in chosen}
temperatures = {}
if calibrate:
    for n in chosen:
        dev_name = predictions.counterpart(n, "dev", tables)
        if dev_name and dev_name != n:
            temperatures[n] = fit_calibrator(load_table(dev_name)[0], "temperature").temperature
    c[2].caption(
        "T: " + ", ".join(f"{k}: {v:.2f}" for k, v in temperatures.items()) if temperatures else "no dev tables"
    )
try:
    wide = per_clip({n: t for n, (t, _) in loaded.items()}, threshold, temperatures, decision_temperature=decision_t)
except LabError as exc:
    st.error(str(exc))
    st.stop()
dataset_name = loaded[chosen[0]][1].get("dataset", "default")
try:
    ds = get_dataset(dataset_name)
except LabError as exc:
    st.error(str(exc))
    st.stop()
tags = annotations.load(ds)
tag_map = tags.groupby("clip_id")["tag"].agg(", ".join).to_dict()
wide["tags"] = [tag_map.get(c, "") for c in wide["clip_id"]]

with st.expander("Filters", expanded=True):
    f = st.columns(4)
    mis = f[0].selectbox(
        "Show", ["all clips", "misclassified (any run)", *[f"misclassified in {n}" for n in chosen]], key="err_mis"
    )
    labels = f[1].multiselect("Label", ["speech", "nonspeech"], key="err_labels")
    groups = f[2].multiselect("Group", sorted(wide["group_id"].unique()), key="err_groups")
    conf_run = f[3].selectbox("Confidence of run", chosen, key="err_conf_run")
    g = st.columns(3)
    ranges = {}
    for i, col in enumerate(("duration_ms", "snr_db")):
        vals = wide[col].dropna()
        if vals.nunique() > 1:
            lo, hi = float(vals.min()), float(vals.max())
            ranges[col] = g[i].slider(col, lo, hi, (lo, hi), key=f"err_range_{col}")
    conf = g[2].slider("p(speech) of that run", 0.0, 1.0, (0.0, 1.0), 0.01, key="err_conf")
misclassified_in = (
    None
    if mis == "all clips"
    else ("any" if mis.startswith("misclassified (any") else mis.removeprefix("misclassified in "))
)
shown = filter_clips(
    wide,
    misclassified_in=misclassified_in,
    labels=labels,
    groups=groups,
    ranges=ranges,
    confidence=conf if conf != (0.0, 1.0) else None,
    run=conf_run,
)
st.markdown(f"**{len(shown)}** of {len(wide)} clips")
id_cols = [
    c
    for c in ("clip_id", "label", "group_id", "base_clip_id", "duration_ms", "snr_db", "noise_type", "band", "reverb")
    if c in shown
]
run_cols = [c for c in shown.columns if " · " in c]
view = shown[[*id_cols, "frac_wrong", "tags", *run_cols]]
event = st.dataframe(
    view, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row", key="err_table", height=320
)
st.download_button(
    "Export the filtered table (CSV)", view.to_csv(index=False).encode(), "errors.csv", "text/csv", key="err_export"
)
if st.toggle("Hear the filtered clips as a grid", False, key="err_grid"):
    clip_grid(ds, pd.DataFrame(shown[["clip_id", "label"]]).assign(p_speech=shown[f"p · {conf_run}"].to_numpy()),
              "err_grid")  # fmt: skip

plot = shown.assign(clip=shown["clip_id"], logit=shown[f"logit · {conf_run}"])
x_axis = "duration_ms" if shown["duration_ms"].nunique() > 1 else "group_id"
fig = px.strip(
    plot, x=x_axis, y="logit", color="label", custom_data=["clip"], height=320, hover_data=["clip_id", "frac_wrong"]
)
fig.add_hline(y=threshold, line_dash="dot")
fig.update_layout(margin={"t": 10, "b": 10}, yaxis_title=f"logit · {conf_run}")
point = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key="err_plot")

selected = None
if event and event.selection and event.selection.rows:
    selected = view.iloc[event.selection.rows[0]]["clip_id"]
elif point and point.selection and point.selection.get("points"):
    data = point.selection["points"][0].get("customdata")
    selected = data[0] if isinstance(data, list) else data
if selected is None and len(view):
    selected = view.iloc[0]["clip_id"]

if selected is not None:
    row = wide[wide["clip_id"] == selected].iloc[0]
    st.subheader(f"Clip {selected}")
    verdicts = " · ".join(
        f"{readable.get(n, n)}: logit {row[f'logit · {n}']:+.2f}, p {row[f'p · {n}']:.3f} "
        + ("**✓ right**" if row[f"correct · {n}"] else "**✗ wrong**")
        for n in chosen
    )
    st.markdown(f"label **{row['label']}**, group `{row['group_id']}` — {verdicts}")
    clip = ds.load_clip(selected)
    st.audio(clip.samples, sample_rate=clip.sr)
    p1, p2 = st.columns(2)
    p1.plotly_chart(plots.waveform(clip.samples, clip.sr, "waveform"), key="err_wave")
    p2.plotly_chart(plots.spectrogram(clip.samples, clip.sr, "log-mel spectrogram"), key="err_spec")
    source_name, base_id = clean_source(ds.manifest, ds.info, selected)
    base_ds = get_dataset(source_name) if source_name else ds
    if base_id:
        base = base_ds.load_clip(base_id)
        st.markdown(f"Base clip `{base_id}` ({base_ds.name}), clean:")
        st.audio(base.samples, sample_rate=base.sr)
    tag_form(ds, selected, "err_tag")

st.subheader("Consistently wrong")
min_frac = st.slider("Wrong in at least this fraction of the runs", 0.0, 1.0, 0.5, 0.05, key="err_min_frac")
cw = consistently_wrong(wide, max(min_frac, 1e-9))
st.dataframe(
    cw[[*id_cols, "runs_wrong", "runs", "frac_wrong", "mean_abs_logit_wrong", "tags"]].head(200),
    hide_index=True,
    width="stretch",
    key="err_consistent",
)
cols = [
    c
    for c in ("duration_ms", "snr_db", "noise_type", "band", "reverb")
    if c in wide and wide[c].nunique(dropna=False) > 1
]
if cols:
    across = st.selectbox("Error rate by group ×", cols, key="err_heat_cols")
    rates = error_rates(wide, "group_id", across)
    heat = px.imshow(
        rates,
        color_continuous_scale="Reds",
        zmin=0,
        zmax=1,
        aspect="auto",
        text_auto=".2f",
        labels={"color": "fraction wrong"},
        height=max(300, 22 * len(rates)),
    )
    heat.update_xaxes(type="category")
    st.plotly_chart(heat, key="err_heat")
    st.caption(
        "Mean fraction of runs wrong per cell. Random errors spread thinly; systematic ones make hot rows "
        "(a group) or columns (a condition)."
    )

st.subheader("Confident errors")
k = st.columns(2)
run = k[0].selectbox("Run", chosen, key="err_conf_errors_run")
min_abs = k[1].slider("|logit / T − threshold| at least", 0.0, 20.0, 3.0, 0.5, key="err_min_abs")
ce = confident_errors(wide, run, min_abs, threshold, decision_t)
st.dataframe(
    ce[[*id_cols, "confidence", f"p · {run}", "tags"]].head(200), hide_index=True, width="stretch", key="err_confident"
)
