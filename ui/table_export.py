"""Download buttons that hand any table over for a paper: CSV and LaTeX (booktabs)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.report.tables import to_latex


def export_buttons(df: pd.DataFrame, name: str, caption: str = "", key: str = "") -> None:
    """CSV and LaTeX downloads of `df` side by side (the LaTeX compiles with \\usepackage{booktabs})."""
    row = st.container(horizontal=True)
    key = key or name
    row.download_button("CSV", df.to_csv(index=False).encode(), f"{name}.csv", "text/csv", key=f"{key}_csv")
    row.download_button(
        "LaTeX", to_latex(df, caption, f"tab:{name}").encode(), f"{name}.tex", "application/x-tex", key=f"{key}_tex"
    )
