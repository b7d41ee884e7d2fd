"""Calibration: fit temperature (or Platt / isotonic) on dev, judge it on test, with reliability diagrams."""

import streamlit as st

from core.analysis.calibration_report import reliability_frame, report
from core.report.figures import reliability_diagram
from core.scoring import predictions
from ui.state import load_table, pick_dev_table, pick_table
from ui.table_export import export_buttons

st.title("Calibration")
st.caption(
    "Fit on **dev**, judge on **test**. An over-confident model (the original research's needed a temperature of "
    "about 10) says 99% when it is right 70% of the time; a temperature fitted on dev fixes that without changing "
    "a single decision. Fitted on the clips it is judged on, it flatters itself: the page warns when that happens."
)
tables = predictions.describe_tables()
c = st.columns([3, 3, 2])
test_name = pick_table("Judge on (test table)", "cal_test", part="test", tables=tables, container=c[0])
dev_name = pick_dev_table(test_name, tables, "cal_dev", container=c[1], allow_self=True)
method = c[2].selectbox("Method", ["temperature", "platt", "isotonic"], key="cal_method")
o = st.columns(3)
n_bins = o[0].slider("Bins", 3, 30, 10, key="cal_bins")
strategy = o[1].radio(
    "Binning",
    ["uniform", "quantile"],
    horizontal=True,
    key="cal_strategy",
    help="uniform = equal-width bins; quantile = equal-mass bins",
)
min_clips = o[2].number_input("Warn below clips per bin", 1, 1000, 20, key="cal_min")

dev, _ = load_table(dev_name)
test, _ = load_table(test_name)
rep, dev_c, test_c = report(dev, test, method, n_bins, strategy, int(min_clips))
st.markdown(
    f"**{method}** fitted on `{dev_name}` ({len(dev)} clips): "
    + ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in rep.params.items())
)
for w in rep.warnings:
    st.warning(w)

cols = [
    "split",
    "stage",
    "accuracy",
    "balanced_accuracy",
    "recall_speech",
    "recall_nonspeech",
    "roc_auc",
    "pr_auc",
    "ece",
    "ece_quantile",
    "mce",
    "brier",
    "nll",
    "n",
]
st.dataframe(rep.table[cols].style.format(precision=4), hide_index=True, width="stretch", key="cal_metrics")
export_buttons(
    rep.table[cols], f"calibration-{method}", f"Calibration ({method}) fitted on dev, judged on test", "cal_x"
)
st.caption(
    "ece: equal-width bins; ece_quantile: equal-mass bins. Accuracy changes only with a non-monotone map "
    "(isotonic ties); temperature keeps the ranking and the decision at p = 0.5."
)

left, right = st.columns(2)
for col, name, table in ((left, "dev", dev_c), (right, "test", test_c)):
    bins = {
        stage: reliability_frame(table, column, n_bins, strategy, min_count=int(min_clips))
        for stage, column in (("before", "p_speech"), ("after", "p_calibrated"))
    }
    col.plotly_chart(reliability_diagram(bins, f"{name} ({len(table)} clips)"), key=f"rel_{name}")
    col.caption(
        "Bars: 95% bootstrap band of each bin's observed frequency; hollow points: fewer than "
        f"{int(min_clips)} clips. Lower panel: clips per bin."
    )
st.download_button(
    "Download the calibrated test table (CSV)",
    test_c.to_csv(index=False).encode(),
    file_name=f"{test_name}-calibrated-{method}.csv",
    mime="text/csv",
)
