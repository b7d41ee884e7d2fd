"""Report: one click writes a self-contained HTML report of a study, and every table as CSV and LaTeX."""

import streamlit as st

from core.errors import LabError
from core.report.study import write_report
from ui.gates_form import detector_names, gates_form
from ui.state import pick_dataset_with_splits

st.title("Study report")
st.caption(
    "Everything the lab knows about one dataset and split, in one HTML file that opens offline: the split and its "
    "leakage audit, fine-tuning runs and their settings, each detector with intervals clustered by group and "
    "calibration fitted on dev, paired comparisons with a verdict, psychometric thresholds on condition sets made "
    "from this dataset, decide-or-abstain and label issues, the worst clips, and the commands that rebuild it all. "
    "Every table is also written as CSV and LaTeX (booktabs) for a paper."
)
ds, splits = pick_dataset_with_splits("Make a split on the Split & leakage audit page first; the report is per split.")
split = st.selectbox("Split", splits, key="rep_split")
with st.expander("Study gates: exit criteria, judged with their intervals (first page of the report)", expanded=False):
    st.caption(
        "Write the criteria the study must meet before you scale it up (e.g. speech recall ≥ 0.5, non-speech recall "
        "≥ 0.95, ECE ≤ 0.2, seed spread ≤ 0.03, leakage ≤ 0). Each is judged pass, fail, or undecided when its "
        "interval straddles the bound; saved with the study and shown on the Runs page too."
    )
    gates_form(ds.name, split, detector_names(ds.name, split))
st.code(f"python -m core report --dataset {ds.name} --split {split}", language="bash")
if st.button("Write the report", type="primary", key="rep_go"):
    with st.status("writing the report…", expanded=True) as status:
        bar = st.progress(0.0)
        try:
            path = write_report(ds.name, split, progress=lambda f, m: bar.progress(min(1.0, f), text=m))
        except LabError as exc:
            status.update(label="failed", state="error")
            st.error(str(exc))
            st.stop()
        status.update(label=f"wrote {path}", state="complete")
    st.session_state["rep_path"] = str(path)
if st.session_state.get("rep_path"):
    from pathlib import Path

    path = Path(st.session_state["rep_path"])
    if path.exists():
        st.success(f"Report: `{path}`; tables (CSV + LaTeX): `{path.parent / 'tables'}`")
        st.download_button("Download the report (HTML)", path.read_bytes(), path.name, "text/html", key="rep_dl")
