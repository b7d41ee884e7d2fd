"""Speech Detection Lab: Streamlit entry point (navigation over the views in views/).

`st.navigation` runs on every script run, signed in or not: before sign-in every view's URL leads
to the sign-in form (and after signing in, to that view), so no URL reaches a view unsigned
(ui/access.py says why the views are not in a `pages/` folder). Icons are Material Symbols, which
Streamlit bundles: emoji would need a colour-emoji font that a bare Linux browser lacks.
"""

import streamlit as st

from ui.access import gate, sign_in

st.set_page_config(page_title="Speech Detection Lab", page_icon=":material/graphic_eq:", layout="wide")

VIEWS = [  # (file in views/, title, icon); the first is the landing page
    ("data", "Data", "library_music"),
    ("split_audit", "Split & leakage audit", "call_split"),
    ("evaluate", "Evaluate", "speed"),
    ("runs", "Runs", "model_training"),
    ("prompts", "Prompts", "edit_note"),
    ("calibration", "Calibration", "straighten"),
    ("thresholds", "Thresholds", "tune"),
    ("compare", "Compare", "compare_arrows"),
    ("decide", "Decide or abstain", "rule"),
    ("psychometrics", "Psychometrics", "show_chart"),
    ("errors", "Errors", "manage_search"),
    ("label_issues", "Label issues", "fact_check"),
    ("timeline", "Timeline", "timeline"),
    ("try_clip", "Try a clip", "mic"),
    ("report", "Study report", "description"),
]

if gate():  # sign-in when served beyond localhost (ui/access.py)
    pages = [
        st.Page(f"views/{f}.py", title=t, icon=f":material/{i}:", default=not n) for n, (f, t, i) in enumerate(VIEWS)
    ]
    st.navigation(pages).run()
else:
    locked = [st.Page(sign_in, title="Sign in", url_path=f, default=not n) for n, (f, _, _) in enumerate(VIEWS)]
    st.navigation(locked, position="hidden").run()
