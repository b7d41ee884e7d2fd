"""One titled part of a report: text, tables and figures (shared by the report's section builders)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Section:
    """A titled part of the report: text, tables (name, caption, frame) and Plotly figures."""

    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, str, pd.DataFrame]] = field(default_factory=list)
    figures: list = field(default_factory=list)
