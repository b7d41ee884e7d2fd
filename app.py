"""Speech Detection Lab: Streamlit entry point (navigation over the pages in pages/)."""

import streamlit as st

st.set_page_config(page_title="Speech Detection Lab", page_icon="🎙️", layout="wide")

PAGES = [
    st.Page("pages/data.py", title="Data", icon="🎧", default=True),
    st.Page("pages/split_audit.py", title="Split & leakage audit", icon="🧪"),
    st.Page("pages/evaluate.py", title="Evaluate", icon="📈"),
    st.Page("pages/runs.py", title="Runs", icon="🏋️"),
    st.Page("pages/calibration.py", title="Calibration", icon="🎯"),
    st.Page("pages/thresholds.py", title="Thresholds", icon="🎚️"),
    st.Page("pages/compare.py", title="Compare", icon="⚖️"),
    st.Page("pages/psychometrics.py", title="Psychometrics", icon="📉"),
    st.Page("pages/errors.py", title="Errors", icon="🔎"),
]

st.navigation(PAGES).run()
