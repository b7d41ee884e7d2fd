"""Map of clips: every clip of a table as a point, coloured by what matters; lasso a region, hear it,
and see whether its error rate really differs from the rest."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.analysis import clip_map
from core.errors import LabError
from core.runs import jobs, registry
from core.scoring import predictions
from ui.clip_grid import clip_grid
from ui.clip_panel import clip_list
from ui.job_status import command, jobs_panel
from ui.state import get_dataset, load_table, pick_table

st.title("Map of clips")
st.caption(
    "Each point is a clip, placed by what a detector's audio encoder hears in it (the lab base model's audio "
    "embeddings, reduced to 2-D): clips that sound alike lie together. Colour by correctness to find where a "
    "detector fails, then draw a lasso around a cluster to hear its clips and test whether its error rate really "
    "differs from the rest."
)

tables = predictions.describe_tables()
name = pick_table("Table", "map_table", tables=tables)
table, meta = load_table(name)
c = st.columns([2, 1])
embeddings = ["lab-base", *[f"run:{r}" for r in registry.finished_runs()]]
embedding = c[0].selectbox("Embedding (whose ears)", embeddings, key="map_embedding",
                           help="An audio LLM's audio embeddings, averaged over the clip: the lab base model, or a run "
                           "you fine-tuned (it hears what it learnt).")  # fmt: skip
method = c[1].radio("Reduction", list(clip_map.METHODS), horizontal=True, key="map_method",
                    format_func={"pca": "PCA", "tsne": "t-SNE"}.get,
                    help="PCA keeps global distances and is instant; t-SNE keeps neighbourhoods (clusters "
                    "stand out) and takes seconds to a minute for thousands of clips.")  # fmt: skip
args = ["map", name, "--embedding", embedding, "--method", method]
command("python -m core " + " ".join(args))

coords, info = clip_map.load_map(name, table, embedding, method)
if coords is None:
    if info:
        st.warning("The saved map was made from an older version of this table: compute it again.")
    if st.button("Compute the map", type="primary", key="map_go"):
        jobs.launch("map", args, label=f"map of {name} ({embedding}, {method})")
        st.rerun()


@st.fragment(run_every=1.0)
def _jobs() -> None:
    jobs_panel("map", "map", title="Map jobs")


_jobs()
if coords is None:
    st.stop()

m = table.merge(coords, on="clip_id", how="inner")
m["correct"] = np.where((m["p_speech"] > 0.5) == (m["label"] == "speech"), "right", "wrong")
m["confidence"] = np.maximum(m["p_speech"], 1 - m["p_speech"])
options = ["correct", "label", "confidence", "p_speech", "group_id"]
options += [col for col in ("noise_type", "snr_db", "duration_ms", "condition", "room", "band") if col in m]
k = st.columns([1, 3])
colour = k[0].selectbox("Colour by", options, key="map_colour")
fig = go.Figure()
if m[colour].dtype.kind in "fi" and m[colour].nunique() > 12:
    fig.add_trace(go.Scattergl(x=m["x"], y=m["y"], mode="markers", customdata=m["clip_id"],
                               marker={"color": m[colour], "colorscale": "Viridis", "size": 5,
                                       "colorbar": {"title": colour}},
                               hovertemplate="%{customdata}<extra></extra>", name=colour))  # fmt: skip
else:
    palette = {"right": "#9e9e9e", "wrong": "#d62728", "speech": "#1565c0", "nonspeech": "#ef6c00"}
    for value, sub in m.groupby(m[colour].astype(str), sort=True):
        fig.add_trace(go.Scattergl(x=sub["x"], y=sub["y"], mode="markers", name=value, customdata=sub["clip_id"],
                                   marker={"size": 5, **({"color": palette[value]} if value in palette else {})},
                                   hovertemplate="%{customdata}<extra>" + value + "</extra>"))  # fmt: skip
fig.update_layout(height=560, dragmode="lasso", margin={"t": 10, "b": 10},
                  xaxis={"title": f"{method} 1", "showticklabels": False},
                  yaxis={"title": f"{method} 2", "showticklabels": False},
                  legend={"orientation": "h", "y": 1.04})  # fmt: skip
k[1].caption(f"{len(m)} clips · embedding {info['embedding']} ({info['dims']} dimensions) · {method.upper()}. "
             "Draw a lasso (or a box) around points; double-click to clear.")  # fmt: skip
event = st.plotly_chart(fig, key="map_chart", on_select="rerun", selection_mode=("lasso", "box"))
points = event.selection.points if event and event.selection else []
picked = {p["customdata"] for p in points if p.get("customdata") is not None}
if not picked:
    st.info("No region selected yet: draw a lasso around some points.")
    st.stop()

inside = m["clip_id"].isin(picked).to_numpy()
try:
    r = clip_map.region_stats(m, inside)
except LabError as exc:
    st.warning(str(exc))
    st.stop()
s = st.columns(4)
s[0].metric("Clips selected", f"{r['n_inside']}", help=f"from {r['groups_inside']} group(s)")
s[1].metric("Error inside", f"{r['error_inside']:.1%}",
            help=f"95% Wilson interval {r['ci_inside'][0]:.1%}–{r['ci_inside'][1]:.1%}")  # fmt: skip
s[2].metric("Error outside", f"{r['error_outside']:.1%}",
            help=f"95% Wilson interval {r['ci_outside'][0]:.1%}–{r['ci_outside'][1]:.1%}")  # fmt: skip
s[3].metric("Fisher's exact p", f"{r['p_value']:.3g}")
if r["groups_inside"] <= 2:
    st.caption("All selected clips come from at most two speakers or sources: a difference may be theirs, not the "
               "region's.")  # fmt: skip
try:
    ds = get_dataset(str(meta.get("dataset", "")))
except LabError:
    ds = None
sel = m[inside].sort_values(["correct", "confidence"], ascending=[False, False])
cols = ["clip_id", "label", "p_speech", "correct", "group_id"]
view = st.radio("Show the selection as", ["grid", "list"], horizontal=True, key="map_view")
if view == "grid":
    clip_grid(ds, pd.DataFrame(sel[cols]), "map_grid")
else:
    clip_list(ds, pd.DataFrame(sel[cols]), "map_list", caption="the selected clips, wrong ones first")
