"""Which predictions tables a report reads: one split's test tables, a few detectors at most.

Its own module because the report's sections (study, trust, gates) all read the same listing and
study.py assembles them: kept in study.py, the sections would import the module that imports them.
"""

from __future__ import annotations

import pandas as pd

MAX_TABLES = 6  # detectors compared pairwise in the report: 15 pairs at most


def scored_tables(t: pd.DataFrame, dataset: str, split: str) -> pd.DataFrame:
    """Of the `describe_tables()` listing `t`: this split's test tables (newest first, at most MAX_TABLES detectors)."""
    if t.empty:
        return t
    t = t[(t["dataset"] == dataset) & (t["split_name"] == split) & (t["part"] == "test")]
    return t.drop_duplicates(["detector", "adapter"]).head(MAX_TABLES)
