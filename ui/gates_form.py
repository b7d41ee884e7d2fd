"""Study gates on a page: write them (a small form, saved with the study) and read their verdicts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import LabError
from core.report import gates as G

BADGE = {"pass": "✅ pass", "fail": "❌ fail", "undecided": "❔ undecided"}


def gates_table(dataset: str, split: str, key: str) -> None:
    """The study's gates judged now (nothing shown when it has none)."""
    try:
        t = G.judge(dataset, split)
    except LabError as exc:
        st.error(str(exc))
        return
    if t.empty:
        st.caption("No gates for this study yet: write them on the Study report page.")
        return
    shown = t.assign(verdict=t["verdict"].map(BADGE))
    st.dataframe(shown, hide_index=True, width="stretch", key=key,
                 column_config={c: st.column_config.NumberColumn(c, format="%.3f") for c in ("estimate", "lower", "upper")})  # fmt: skip


def gates_form(dataset: str, split: str, detectors: list[str]) -> None:
    """Add a gate or remove one; the study's gates.json is replaced whole each time."""
    current = G.load_gates(dataset, split)
    with st.form("gates_form", enter_to_submit=False, clear_on_submit=True):
        c = st.columns([3, 1, 1, 2])
        metric = c[0].selectbox("Metric", list(G.METRICS), format_func=G.METRICS.get, key="gate_metric")
        op = c[1].selectbox("Must be", list(G.OPS), format_func={">=": "≥", "<=": "≤"}.get, key="gate_op")
        bound = c[2].number_input("Bound", value=0.5, step=0.01, format="%.3f", key="gate_bound")
        who = c[3].selectbox("For", ["every detector", *detectors], key="gate_who")
        add = st.form_submit_button("Add gate")
    if add:
        gate = G.Gate(metric, op, float(bound), "" if who == "every detector" else who)
        try:
            G.save_gates(dataset, split, [*current, gate])
            st.toast(f"gate added: {gate.text()}")
            current = G.load_gates(dataset, split)
        except LabError as exc:
            st.error(str(exc))
    for i, gate in enumerate(current):
        a, b = st.columns([6, 1])
        a.markdown(f"- {gate.text()}")
        if b.button("Remove", key=f"gate_rm_{i}"):
            G.save_gates(dataset, split, [g for j, g in enumerate(current) if j != i])
            st.rerun()
    if current:
        gates_table(dataset, split, "gates_judged")


def detector_names(dataset: str, split: str) -> list[str]:
    from core.report.listing import scored_tables
    from core.scoring import predictions

    listing = scored_tables(predictions.describe_tables(), dataset, split)
    return sorted({str(d) for d in listing.get("detector", pd.Series(dtype=str))})
