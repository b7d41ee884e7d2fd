"""Thresholds: drag the decision threshold and temperature; see the dev→test gap of a chosen threshold."""

import numpy as np
import pandas as pd
import streamlit as st

from core.analysis.calibration import ece
from core.analysis.calibration_report import fit
from core.analysis.thresholds import ThresholdIndex, dev_to_test, roc_curve
from core.decision import sigmoid
from core.scoring import predictions
from ui.charts import confusion, roc_with_point
from ui.state import load_table, pick_table

st.title("Thresholds")
st.caption(
    "The seed reported 100% on test with threshold 1.256 — a threshold picked on test. Choose thresholds on dev; "
    "the table below shows what each does on test."
)


@st.cache_data(show_spinner=False, max_entries=8)
def _index(name: str, mtime: float) -> ThresholdIndex:
    table, _ = load_table(name)
    return ThresholdIndex.build((table["label"] == "speech").to_numpy(), table["logit"].to_numpy(float))


@st.cache_data(show_spinner=False, max_entries=8)
def _roc(name: str, mtime: float) -> dict:
    return roc_curve(_index(name, mtime))


@st.cache_data(show_spinner=False, max_entries=64)
def _ece(name: str, mtime: float, temperature: float) -> float:
    table, _ = load_table(name)
    return ece((table["label"] == "speech").to_numpy(), sigmoid(table["logit"].to_numpy(float) / temperature))


tables = predictions.describe_tables()
c = st.columns([3, 3])
with c[0]:
    test_name = pick_table("Predictions table (test)", "thr_test", part="test", tables=tables)
names = tables["table"].tolist()
dev_default = predictions.counterpart(test_name, "dev", tables)
dev_options = ["(none)"] + names
dev_name = c[1].selectbox(
    "Dev table (to choose thresholds and T on)",
    dev_options,
    index=dev_options.index(dev_default) if dev_default else 0,
    key=f"thr_dev_{test_name}",
)
dev_name = None if dev_name == "(none)" else dev_name
mtime = predictions.resolve(test_name).stat().st_mtime
index = _index(test_name, mtime)

s = st.columns([2, 2, 1])
if dev_name and s[2].button("Use T fitted on dev", key="thr_fit_t"):
    t_dev = fit(load_table(dev_name)[0], "temperature").temperature
    st.session_state["thr_temperature"] = round(float(np.clip(t_dev, 0.1, 20)), 2)
st.session_state.setdefault("thr_temperature", 1.0)
temperature = s[0].slider("Temperature T (logit / T)", 0.1, 20.0, step=0.01, key="thr_temperature")
scale = s[1].radio("Threshold in", ["log-odds", "probability"], horizontal=True, key="thr_scale")
if scale == "log-odds":
    threshold = st.slider("Decision threshold (speech if logit / T > threshold)", -10.0, 10.0, 0.0, 0.01, key="thr_t")
else:
    p = st.slider("Decision threshold (speech if p > threshold)", 0.001, 0.999, 0.5, 0.001, key="thr_p")
    threshold = float(np.log(p) - np.log1p(-p))

m = {k: float(v) for k, v in index.metrics(threshold, temperature).items()}
k = st.columns(5)
k[0].metric("Accuracy", f"{m['accuracy']:.4f}")
k[1].metric("Balanced accuracy", f"{m['balanced_accuracy']:.4f}")
k[2].metric("Speech recall", f"{m['recall_speech']:.4f}")
k[3].metric("Non-speech recall", f"{m['recall_nonspeech']:.4f}")
k[4].metric("ECE at this T", f"{_ece(test_name, mtime, temperature):.4f}")

left, right = st.columns(2)
left.plotly_chart(confusion(int(m["tp"]), int(m["fn"]), int(m["fp"]), int(m["tn"])), key="thr_confusion")
roc = _roc(test_name, mtime)  # from the raw logits: T changes no ranking, so neither the curve nor its area
right.plotly_chart(roc_with_point(roc["fpr"], roc["tpr"], (m["fpr"], m["recall_speech"]), roc["auc"]), key="thr_roc")
# the one decision rule: the Errors page offers to apply exactly this (t, T)
st.session_state["decision_rule"] = {
    "table": test_name,
    "threshold": float(threshold),
    "temperature": float(temperature),
}

st.subheader("Chosen on dev, judged on test")
if not dev_name:
    st.info("Pick a dev table to choose thresholds on it (max balanced accuracy, Youden's J).")
else:
    dev, _ = load_table(dev_name)
    test, _ = load_table(test_name)
    rows = pd.DataFrame(dev_to_test(dev["label"], dev["logit"], test["label"], test["logit"], temperature=temperature))
    st.dataframe(rows.style.format(precision=4), hide_index=True, width="stretch", key="thr_transfer")
    gap = rows.iloc[3]["test balanced accuracy"] - rows.iloc[1]["test balanced accuracy"]
    st.caption(
        f"Choosing the threshold on test instead of dev would report {gap:+.4f} balanced accuracy more "
        "than the honest figure."
    )
