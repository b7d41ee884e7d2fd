"""Step ② of the Psychometrics page: score a condition set with several detectors (one background job each)."""

from __future__ import annotations

import streamlit as st

from core.runs import jobs, registry
from core.runs.commands import cli_line
from core.scoring.clips import offline_detectors

PSY_LABEL = "conditions: "  # the scoring jobs this page lists start their label with it


def _finished_runs() -> dict[str, str]:
    """Finished runs on the lab base model: {label: adapter folder}."""
    runs = registry.list_runs()
    if runs.empty:
        return {}
    out = {}
    for r in runs[runs["state"] == "finished"].itertuples():
        if not registry.config(r.run).get("base_model"):
            out[f"lab-base + run {r.run}"] = str(registry.runs_dir() / r.run / "adapter")
    return out


def scoring_form(condition_sets: list[str]) -> None:
    """Choose a condition set and detectors (offline ones and fine-tuned runs); start one job per detector."""
    runs = _finished_runs()
    options = offline_detectors() + list(runs)
    with st.form("psy_score", enter_to_submit=False):
        c = st.columns([2, 4])
        name = c[0].selectbox("Condition set", condition_sets, key="psy_score_set")
        chosen = c[1].multiselect("Detectors", options, default=offline_detectors()[:2], key="psy_score_detectors")
        go = st.form_submit_button("Score", type="primary")
    if not go:
        return
    if not chosen:
        st.error("Choose at least one detector.")
        return
    for det in chosen:
        args = ["evaluate", f"--dataset={name}", "--split=conditions", "--part=test"]
        args += ["--detector=lab-base", f"--adapter={runs[det]}"] if det in runs else [f"--detector={det}"]
        jobs.launch("evaluate", args, label=f"{PSY_LABEL}{det} on {name}")
        st.caption(cli_line(args))
    st.toast(f"scoring {name} with {len(chosen)} detector(s): progress below; curves appear in step ③")
