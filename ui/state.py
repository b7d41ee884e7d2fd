"""Dataset and split selection shared by every page, with cached loading."""

from __future__ import annotations

import streamlit as st

from core.data.datasets import Dataset, list_datasets, load_dataset
from core.data.default_dataset import build_default
from core.errors import LabError


@st.cache_data(show_spinner=False)
def _load(name: str, mtime: float) -> Dataset:
    return load_dataset(name)


def get_dataset(name: str) -> Dataset:
    """Load a dataset, re-reading it only when its manifest file changes."""
    from core.data.datasets import dataset_root

    manifest = dataset_root(name) / "manifest.csv"
    if not manifest.exists():
        return load_dataset(name)  # raises the LabError that names the known datasets
    return _load(name, manifest.stat().st_mtime)


def offer_default_build() -> None:
    """When no dataset exists, offer to build the embedded one (with progress)."""
    st.info("No dataset yet. The embedded default dataset builds offline in about 15 s.")
    if st.button("Build the embedded default dataset", type="primary"):
        bar = st.progress(0.0, text="starting…")
        build_default(progress=lambda f, m: bar.progress(f, text=m))
        st.rerun()


def pick_dataset() -> Dataset | None:
    """Sidebar dataset picker; remembers the choice across pages in session state."""
    names = list_datasets()
    if not names:
        offer_default_build()
        return None
    current = st.session_state.get("dataset", "default")
    index = names.index(current) if current in names else 0
    name = st.sidebar.selectbox("Dataset", names, index=index, key="dataset_picker")
    st.session_state["dataset"] = name
    try:
        return get_dataset(name)
    except LabError as exc:
        st.error(str(exc))
        return None


def pick_dataset_with_splits(hint: str) -> tuple[Dataset, list[str]]:
    """The sidebar dataset and its saved splits; stops the page (showing `hint`) if either is missing."""
    from core.data.splits import list_splits

    ds = pick_dataset()
    if ds is None:
        st.stop()
    splits = list_splits(ds)
    if not splits:
        st.info(hint)
        st.stop()
    return ds, splits


@st.cache_data(show_spinner=False, max_entries=16)
def _table(path: str, mtime: float):
    from core.scoring import predictions

    return predictions.load(path)


def load_table(name: str):
    """(table, sidecar) of a saved predictions table, cached until the file changes."""
    from core.scoring import predictions

    path = predictions.resolve(name)
    return _table(str(path), path.stat().st_mtime)


def pick_table(
    label: str,
    key: str,
    part: str | None = None,
    exclude: str | None = None,
    tables=None,
    prefer: list[str] | None = None,
) -> str:
    """A predictions-table picker (newest first, preferring `prefer`, then `part`); stops the page if none exist.

    `tables`: the `describe_tables()` listing the page already read (it reads every sidecar).
    """
    from core.scoring import predictions

    tables = predictions.describe_tables() if tables is None else tables
    if tables.empty:
        st.info("No predictions tables yet: score a split on the Evaluate page, or train a run.")
        st.stop()
    names = tables["table"].tolist()
    preferred = [n for n in prefer or [] if n in names and n != exclude]
    preferred += [n for n, p in zip(names, tables["part"]) if p == part and n != exclude] if part else []
    default = preferred[0] if preferred else next((n for n in names if n != exclude), names[0])
    if st.session_state.get(key) not in names:
        st.session_state[key] = default
    return st.selectbox(label, names, key=key)
