"""Thresholds: move the decision threshold and temperature, hear the clips that flip, see the dev→test gap."""

import numpy as np
import pandas as pd
import streamlit as st

from core.analysis.calibration import ece
from core.analysis.calibration_report import fit
from core.analysis.thresholds import ThresholdIndex, dev_to_test, flipped, roc_curve, thin_roc
from core.decision import sigmoid
from core.errors import LabError
from core.report.figures import confusion, roc_with_point
from core.scoring import predictions
from ui.clip_panel import clip_list
from ui.state import get_dataset, load_table, pick_dev_table, pick_table
from ui.table_export import export_buttons

st.title("Thresholds")
st.caption(
    "Pick the threshold on **dev** and judge it on **test**. A threshold tuned on the test set itself always looks "
    "better than it is (the table at the bottom shows by how much); the original research reported 100% that way."
)


@st.cache_resource(show_spinner=False, max_entries=4)
def _decisions(name: str, mtime: float) -> tuple[pd.DataFrame, dict]:
    """The table and sidecar, shared read-only by every move (st.cache_data would hand out a copy each
    time: at 10^6 rows the copy alone costs more than everything a move computes)."""
    return load_table(name)


@st.cache_resource(show_spinner=False, max_entries=8)
def _index(name: str, mtime: float) -> ThresholdIndex:
    table, _ = _decisions(name, mtime)
    return ThresholdIndex.build((table["label"] == "speech").to_numpy(), table["logit"].to_numpy(float))


@st.cache_data(show_spinner=False, max_entries=8)
def _roc(name: str, mtime: float) -> dict:
    """The ROC of the raw logits, thinned to at most 2,000 drawn points (10^6 cut points would be sent per move)."""
    return thin_roc(roc_curve(_index(name, mtime)))


@st.cache_data(show_spinner=False, max_entries=32)
def _transfer(test: str, mtime: float, dev: str, dev_mtime: float, temperature: float) -> pd.DataFrame:
    d, _ = load_table(dev)
    t, _ = load_table(test)
    return pd.DataFrame(dev_to_test(d["label"], d["logit"], t["label"], t["logit"], temperature=temperature))


@st.cache_data(show_spinner=False, max_entries=64)
def _ece(name: str, mtime: float, temperature: float) -> float:
    table, _ = load_table(name)
    return ece((table["label"] == "speech").to_numpy(), sigmoid(table["logit"].to_numpy(float) / temperature))


@st.cache_data(show_spinner=False, max_entries=16)
def _dev_best(name: str, mtime: float, temperature: float) -> float:
    return float(_index(name, mtime).best("balanced_accuracy", temperature))


def _set(value: float) -> None:
    """Move the threshold (both the slider and the typed field) to `value`."""
    v = float(np.clip(round(value, 2), -50, 50))
    st.session_state["thr_t_num"] = v
    st.session_state["thr_t"] = float(np.clip(v, -20, 20))


def _fit_t() -> None:
    t_dev = fit(load_table(dev_name)[0], "temperature").temperature
    st.session_state["thr_temperature"] = round(float(np.clip(t_dev, 0.05, 100)), 2)


def _from_slider() -> None:
    st.session_state["thr_t_num"] = st.session_state["thr_t"]


def _from_number() -> None:
    st.session_state["thr_t"] = float(np.clip(st.session_state["thr_t_num"], -20, 20))


tables = predictions.describe_tables()
c = st.columns(2)
test_name = pick_table("Test table (judge on)", "thr_test", part="test", tables=tables, container=c[0])
dev_name = pick_dev_table(test_name, tables, "thr_dev", container=c[1])
mtime = predictions.resolve(test_name).stat().st_mtime
dev_mtime = predictions.resolve(dev_name).stat().st_mtime if dev_name else 0.0
st.session_state.setdefault("thr_temperature", 1.0)
st.session_state.setdefault("thr_t", 0.0)
st.session_state.setdefault("thr_t_num", 0.0)
st.session_state.setdefault("thr_ref", (0.0, 1.0))


@st.fragment
def decision_panel() -> None:
    """Everything a threshold or T move changes; reruns alone, so the numbers follow the slider."""
    index = _index(test_name, mtime)
    s = st.columns([2, 2, 2, 2])
    temperature = s[0].number_input(
        "Temperature T (logit / T)", 0.05, 100.0, step=0.1, key="thr_temperature", help="1 = the raw logits"
    )
    if dev_name:
        s[1].button("Use T fitted on dev", key="thr_fit_t", on_click=_fit_t, help="temperature scaling fitted on dev")
    if dev_name:
        best = _dev_best(dev_name, dev_mtime, float(temperature))
        s[2].button(
            f"Apply dev threshold ({best:+.2f})",
            key="thr_apply_dev",
            on_click=_set,
            args=(best,),
            help="the threshold with the best balanced accuracy on dev, at this T",
        )
    s[3].button("Reset to 0", key="thr_reset", on_click=_set, args=(0.0,))
    t = st.columns([4, 1])
    t[0].slider(
        "Decision threshold on log-odds (speech if logit / T > threshold)",
        -20.0,
        20.0,
        step=0.1,
        key="thr_t",
        on_change=_from_slider,
    )
    threshold = float(
        t[1].number_input("…or type it", -50.0, 50.0, step=0.05, key="thr_t_num", on_change=_from_number, format="%.2f")
    )
    p = float(sigmoid(threshold))
    p_text = f"{p:.3f}" if 0.001 <= p <= 0.999 else (f"1 − {1 - p:.1e}" if p > 0.5 else f"{p:.1e}")
    st.caption(f"Speech when p(speech) at T = {temperature:g} exceeds **{p_text}**.")

    m = {k: float(v) for k, v in index.metrics(threshold, float(temperature)).items()}
    k = st.columns(5)
    k[0].metric("Accuracy", f"{m['accuracy']:.4f}")
    k[1].metric("Balanced accuracy", f"{m['balanced_accuracy']:.4f}")
    k[2].metric("Speech recall", f"{m['recall_speech']:.4f}")
    k[3].metric("Non-speech recall", f"{m['recall_nonspeech']:.4f}")
    k[4].metric("ECE at this T", f"{_ece(test_name, mtime, float(temperature)):.4f}")
    left, right = st.columns(2)
    left.plotly_chart(confusion(int(m["tp"]), int(m["fn"]), int(m["fp"]), int(m["tn"])), key="thr_confusion")
    roc = _roc(test_name, mtime)  # from the raw logits: T changes no ranking, so neither the curve nor its area
    right.plotly_chart(
        roc_with_point(roc["fpr"], roc["tpr"], (m["fpr"], m["recall_speech"]), roc["auc"]), key="thr_roc"
    )
    # the one decision rule: the Errors page offers to apply exactly this (t, T)
    st.session_state["decision_rule"] = {"table": test_name, "threshold": threshold, "temperature": float(temperature)}

    st.subheader("Clips that flip")
    ref_t, ref_T = st.session_state["thr_ref"]
    f = st.columns([3, 1, 1])
    f[0].markdown(
        f"Between the reference rule (threshold **{ref_t:+.2f}**, T **{ref_T:g}**) and the current one "
        f"(**{threshold:+.2f}**, T **{temperature:g}**): each clip whose decision changes, closest to the threshold first."
    )
    if f[1].button("Pin current as reference", key="thr_pin"):
        st.session_state["thr_ref"] = (threshold, float(temperature))
        st.rerun(scope="fragment")
    if f[2].button("Reference = default", key="thr_unpin"):
        st.session_state["thr_ref"] = (0.0, 1.0)
        st.rerun(scope="fragment")
    table, meta = _decisions(test_name, mtime)
    flips = flipped(table, ref_t, threshold, ref_T, float(temperature), limit=300)
    n, fixed = flips.attrs["n_flipped"], flips.attrs["n_fixed"]
    st.caption(f"{n} clips flip: {fixed} now right, {n - fixed} now wrong.")
    try:
        ds = get_dataset(meta.get("dataset", ""))
    except LabError:
        ds = None
        st.caption(f"dataset {meta.get('dataset')!r} is not here: the clips cannot be played")
    clip_list(ds, flips, "thr_flips", tag=False, limit=300, total=n)

    st.subheader("Chosen on dev, judged on test")
    if not dev_name:
        st.info("Pick a dev table to choose thresholds on it (max balanced accuracy, Youden's J).")
        return
    rows = _transfer(test_name, mtime, dev_name, dev_mtime, float(temperature))
    st.dataframe(rows.style.format(precision=4), hide_index=True, width="stretch", key="thr_transfer")
    export_buttons(rows, "thresholds-dev-to-test", "Thresholds chosen on dev, judged on test", key="thr_transfer_x")
    gap = rows.iloc[3]["test balanced accuracy"] - rows.iloc[1]["test balanced accuracy"]
    st.caption(
        f"Choosing the threshold on test instead of dev would report {gap:+.4f} balanced accuracy more "
        "than the honest figure."
    )


decision_panel()
