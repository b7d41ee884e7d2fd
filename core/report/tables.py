"""Tables for a paper: CSV and LaTeX (booktabs) from one frame, written atomically."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from core import atomic


def _tex_escape(text: str) -> str:
    """Text safe inside a LaTeX cell: & % $ # _ { } ~ ^ \\ escaped."""
    table = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
             "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}  # fmt: skip
    text = re.sub(r"[\\&%$#_{}~^]", lambda m: table[m.group()], str(text))
    return re.sub("[" + "".join(UNICODE) + "]", lambda m: UNICODE[m.group()], text)


# characters the lab's own labels use that pdflatex's default input encoding cannot set
UNICODE = {"·": r"$\cdot$", "−": "$-$", "–": "--", "—": "---", "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$",
           "±": r"$\pm$", "→": r"$\rightarrow$", "α": r"$\alpha$", "δ": r"$\delta$", "σ": r"$\sigma$",
           "≈": r"$\approx$", "²": r"$^2$", "✓": r"$\surd$", "✗": r"$\times$", "Δ": r"$\Delta$",
           "β": r"$\beta$", "µ": r"$\mu$", "μ": r"$\mu$", "…": r"\ldots{}"}  # fmt: skip


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "", precision: int = 3) -> str:
    """A booktabs table (\\toprule/\\midrule/\\bottomrule) of `df`, numbers to `precision` decimals.

    pandas' Styler writes it; headers and text cells are escaped so ids like `rec-a_b` compile.
    """
    out = df.copy()
    out.columns = [_tex_escape(c) for c in out.columns]
    for col in out.columns:
        if out[col].dtype == object or isinstance(out[col].dtype, pd.StringDtype):
            out[col] = out[col].map(
                lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else _tex_escape(v)
            )
    styler = out.style.hide(axis="index").format(precision=precision, na_rep="")
    return styler.to_latex(
        hrules=True,
        caption=_tex_escape(caption) if caption else None,
        label=label or None,
        position_float="centering" if caption or label else None,
        environment="table" if caption or label else None,
    )


def write_table(df: pd.DataFrame, folder: str | Path, name: str, caption: str = "") -> tuple[Path, Path]:
    """`name`.csv and `name`.tex in `folder` (each written to a temp file, then renamed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv = atomic.write_csv(folder / f"{name}.csv", df)
    tex = atomic.write_text(folder / f"{name}.tex", to_latex(df, caption, f"tab:{name}"))
    return csv, tex
