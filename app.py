"""Speech Detection Lab: Streamlit entry point (navigation over the views in views/).

`st.navigation` runs on every script run, signed in or not: before sign-in every view's URL leads
to the sign-in form (and after signing in, to that view), so no URL reaches a view unsigned
(ui/access.py says why the views are not in a `pages/` folder). Icons are Material Symbols, which
Streamlit bundles: emoji would need a colour-emoji font that a bare Linux browser lacks.
"""

import streamlit as st

from ui.access import gate, sign_in

st.set_page_config(page_title="Speech Detection Lab", page_icon=":material/graphic_eq:", layout="wide")

SECTIONS = {  # the sidebar, in the order of a study: {section: [(file in views/, title, icon)]}
    "1 · Data": [
        ("data", "Data", "library_music"),
        ("split_audit", "Split & leakage audit", "call_split"),
    ],
    "2 · Score and train": [
        ("evaluate", "Evaluate", "speed"),
        ("runs", "Runs", "model_training"),
        ("prompts", "Prompts", "edit_note"),
    ],
    "3 · Analyse": [
        ("calibration", "Calibration", "straighten"),
        ("thresholds", "Thresholds", "tune"),
        ("compare", "Compare", "compare_arrows"),
        ("decide", "Decide or abstain", "rule"),
        ("psychometrics", "Psychometrics", "show_chart"),
        ("errors", "Errors", "manage_search"),
        ("label_issues", "Label issues", "fact_check"),
        ("clip_map", "Map of clips", "scatter_plot"),
    ],
    "4 · Over time, try, report": [
        ("timeline", "Timeline", "timeline"),
        ("try_clip", "Try a clip", "mic"),
        ("report", "Study report", "description"),
    ],
}
VIEWS = [v for views in SECTIONS.values() for v in views]  # the first is the landing page

if gate():  # sign-in when served beyond localhost (ui/access.py)
    pages = {
        section: [
            st.Page(f"views/{f}.py", title=t, icon=f":material/{i}:", default=(f == VIEWS[0][0])) for f, t, i in views
        ]
        for section, views in SECTIONS.items()
    }
    st.sidebar.caption("**Speech Detection Lab** — speech vs non-speech detectors, studied honestly")
    st.navigation(pages).run()
else:
    locked = [st.Page(sign_in, title="Sign in", url_path=f, default=not n) for n, (f, _, _) in enumerate(VIEWS)]
    st.navigation(locked, position="hidden").run()
