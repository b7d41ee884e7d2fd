"""Speech Detection Lab: Streamlit entry point (navigation over the pages in pages/).

Icons are Material Symbols, which Streamlit bundles: emoji would need a colour-emoji font that a
bare Linux browser lacks.
"""

import streamlit as st

from ui.access import gate

st.set_page_config(page_title="Speech Detection Lab", page_icon=":material/graphic_eq:", layout="wide")
gate()  # sign-in when served beyond localhost (ui/access.py)

PAGES = [
    st.Page("pages/data.py", title="Data", icon=":material/library_music:", default=True),
    st.Page("pages/split_audit.py", title="Split & leakage audit", icon=":material/call_split:"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/speed:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/model_training:"),
    st.Page("pages/prompts.py", title="Prompts", icon=":material/edit_note:"),
    st.Page("pages/calibration.py", title="Calibration", icon=":material/straighten:"),
    st.Page("pages/thresholds.py", title="Thresholds", icon=":material/tune:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/psychometrics.py", title="Psychometrics", icon=":material/show_chart:"),
    st.Page("pages/errors.py", title="Errors", icon=":material/manage_search:"),
    st.Page("pages/try_clip.py", title="Try a clip", icon=":material/mic:"),
    st.Page("pages/report.py", title="Study report", icon=":material/description:"),
]

st.navigation(PAGES).run()
