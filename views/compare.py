"""Compare: two detectors on the same clips (McNemar, clustered bootstrap, power) and seeds aggregated."""

import pandas as pd
import streamlit as st

from core.analysis.compare import aggregate, compare, disagreements, verdict
from core.errors import LabError
from core.report.figures import intervals
from core.runs import sweeps
from core.scoring import predictions
from ui.clip_panel import clip_list
from ui.state import get_dataset, load_table, pick_table, table_names
from ui.table_export import export_buttons

st.title("Compare")
st.caption(
    "Clips of one speaker or source are not independent: the interval that resamples **groups** is the honest "
    "one; the naive row bootstrap is shown beside it so the difference is visible."
)
tables = predictions.describe_tables()
c = st.columns(2)
with c[0]:
    a_name = pick_table("Detector A (predictions table)", "cmp_a", part="test", tables=tables)
same = predictions.peers(a_name, tables)  # tables scored on A's clips
with c[1]:
    b_name = pick_table(
        "Detector B (scored on the same clips)",
        "cmp_b",
        part="test",
        exclude=a_name,
        tables=tables,
        prefer=same,
        remember=False,
    )
if b_name == a_name:
    st.info("Only one predictions table: score a second detector (or run) on the same split and part on Evaluate.")
    st.stop()
o = st.columns(4)
thr_a = o[0].number_input("Threshold A (log-odds)", value=0.0, step=0.1, key="cmp_ta")
thr_b = o[1].number_input("Threshold B (log-odds)", value=0.0, step=0.1, key="cmp_tb")
n_boot = o[2].select_slider("Bootstrap resamples", [500, 1000, 2000, 5000, 10000], 2000, key="cmp_boot")
delta = o[3].number_input("Difference to power for (0 = observed)", 0.0, 1.0, 0.0, 0.01, key="cmp_delta")

try:
    res = compare(load_table(a_name)[0], load_table(b_name)[0], thr_a, thr_b, int(n_boot), delta or None)
except LabError as exc:
    st.error(str(exc))
    st.info(
        f"Tables scored on A's clips: {', '.join(same)}"
        if same
        else "No other table is scored on A's clips: score another detector on the same split and part (Evaluate page)."
    )
    st.stop()

for w in res.warnings:
    st.warning(w)
if res.only_in_a or res.only_in_b:
    st.warning(
        f"Only the {res.n_clips} clips scored by both are compared ({res.only_in_a} only in A, "
        f"{res.only_in_b} only in B)."
    )
labels = table_names(tables)
st.info(
    f"**Verdict.** {verdict(res, 'A (' + labels.get(a_name, a_name) + ')', 'B (' + labels.get(b_name, b_name) + ')')}"
)
k = st.columns(4)
for i, key in enumerate(("a", "b")):
    lo, hi = res.wilson[key]
    k[i].metric(f"Accuracy {key.upper()}", f"{res.accuracy[key]:.4f}", help=f"Wilson 95% CI {lo:.4f}–{hi:.4f}")
    k[i].caption(f"Wilson 95%: {lo:.4f}–{hi:.4f}")
k[2].metric("McNemar exact p", f"{res.mcnemar['exact']:.4g}")
k[2].caption(f"mid-p {res.mcnemar['midp']:.4g} · χ² (cc) {res.mcnemar['chi2']:.4g}")
k[3].metric("Clips / groups", f"{res.n_clips} / {res.n_groups}")

left, right = st.columns([2, 3])
t = res.table
left.dataframe(
    pd.DataFrame(
        [[t[0, 0], t[0, 1]], [t[1, 0], t[1, 1]]], index=["A right", "A wrong"], columns=["B right", "B wrong"]
    ),
    key="cmp_table",
)
summary = pd.DataFrame(
    [{"A": labels.get(a_name, a_name), "B": labels.get(b_name, b_name), "clips": res.n_clips, "groups": res.n_groups,
      "accuracy A": res.accuracy["a"], "accuracy B": res.accuracy["b"], "A - B": res.diff,
      "CI lower (by group)": res.ci_clustered[0], "CI upper (by group)": res.ci_clustered[1],
      "McNemar exact p": res.mcnemar["exact"]}]
)  # fmt: skip
with left:
    export_buttons(summary, "comparison", "Paired comparison of two detectors", key="cmp_x")
right.plotly_chart(
    intervals(
        [
            ("clustered by group", res.diff, *res.ci_clustered),
            ("naive (by clip)", res.diff, *res.ci_naive),
        ],
        "accuracy difference A − B (95% paired bootstrap CI)",
    ),
    key="cmp_ci",
)
st.subheader("Paired disagreements")
st.caption(
    "The clips one detector gets right and the other wrong: McNemar's test counts only these. Listen to them "
    "before trusting a difference; tag the ones whose label is wrong or that are not what the test means to measure."
)
flips = disagreements(load_table(a_name)[0], load_table(b_name)[0], thr_a, thr_b)
try:
    ds = get_dataset(load_table(a_name)[1].get("dataset", ""))
except LabError:
    ds = None
d = st.columns(2)
for col, who in zip(d, ("A", "B")):
    with col:
        sub = flips[flips["right"] == who].drop(columns="right")
        st.markdown(f"**{who} right, {'B' if who == 'A' else 'A'} wrong: {len(sub)} clips**")
        clip_list(ds, sub, f"cmp_dis_{who}", caption="most confident error first", limit=300)

st.subheader("Power")
pw = res.power
if pw.get("clips") is None:
    st.info(pw["note"])
else:
    st.markdown(
        f"To detect a difference of **{pw['delta']:.3f}** at α = {pw['alpha']} with {pw['power']:.0%} power "
        f"(discordant rate {pw['discordant_rate']:.3f}): **{pw['clips_if_independent']} clips** if clips were "
        f"independent; with the observed clustering (ICC {pw['icc']:.2f}, {pw['clips_per_group']:.0f} clips per "
        f"group) **{pw['clips']} clips in about {pw['groups']} groups**. The current test set: {res.n_clips} clips "
        f"in {res.n_groups} groups."
    )

st.subheader("Seeds of one configuration")
sweep_ids = sweeps.list_sweeps()
mode = st.radio("Aggregate", ["predictions tables", "a sweep"], horizontal=True, key="agg_mode")
if mode == "a sweep":
    if not sweep_ids:
        st.info("No sweeps yet (Runs page).")
    else:
        sweep = st.selectbox("Sweep", sweep_ids, key="agg_sweep")
        matrix, per_seed = sweeps.results_matrix(sweep)
        st.dataframe(matrix, hide_index=True, width="stretch", key="agg_matrix")
        st.dataframe(per_seed, hide_index=True, width="stretch", key="agg_per_seed")
else:
    chosen = st.multiselect("Tables (one configuration, different seeds)", tables["table"].tolist(), key="agg_tables")
    if chosen:
        per, summary = aggregate({n: load_table(n)[0] for n in chosen})
        st.dataframe(summary.style.format(precision=4), hide_index=True, width="stretch", key="agg_summary")
        st.dataframe(per.style.format(precision=4), hide_index=True, width="stretch", key="agg_per")
