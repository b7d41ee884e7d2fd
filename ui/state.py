"""Dataset and split selection shared by every page, with cached loading."""

from __future__ import annotations

import streamlit as st

from core.data.datasets import Dataset, first_choice, list_datasets, load_dataset
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


def offer_voices_build() -> None:
    """When the real-voice set is not built: a button that builds it, or the packages it needs."""
    from core.data.debian_sounds import install_hint, missing_packages
    from core.data.voices_dataset import build_voices

    if "voices" in list_datasets():
        return
    missing = missing_packages()
    if missing:
        st.caption(f"The real-voice set is not built: {install_hint(missing)}.")
        return
    if st.button("Build the real-voice set (about 25 s)", key="build_voices"):
        bar = st.progress(0.0, text="starting…")
        build_voices(progress=lambda f, m: bar.progress(f, text=m))
        st.session_state["dataset"] = "voices"
        st.rerun()


def pick_dataset() -> Dataset | None:
    """Sidebar dataset picker; remembers the choice across pages in session state."""
    names = list_datasets()
    if not names:
        offer_default_build()
        return None
    current = st.session_state.get("dataset", first_choice(names))
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


def table_names(tables) -> dict[str, str]:
    from core.scoring.predictions import display_name

    return {r["table"]: display_name(r) for r in tables.to_dict("records")}


def pick_table(
    label: str,
    key: str,
    part: str | None = None,
    exclude: str | None = None,
    tables=None,
    prefer: list[str] | None = None,
    container=None,
    remember: bool = True,
) -> str:
    """A predictions-table picker by readable name (detector, run, dataset/split/part, date); stops the page if none.

    Offers only tables of `part` when there are any (a test picker does not list dev tables), with a
    checkbox for the rest. With `remember`, the choice is kept across pages (`focus_table`): the table
    the user was looking at stays chosen, not the newest one. `tables`: a `describe_tables()` listing.
    """
    from core.scoring import predictions

    where = container or st
    tables = predictions.describe_tables() if tables is None else tables
    if tables.empty:
        st.info(
            "No predictions tables yet. First: **Data** (build the embedded dataset) → **Split & leakage audit** "
            "(make and audit a split) → **Evaluate** (score its dev and test parts with a detector), or train a run "
            "on **Runs**."
        )
        st.stop()
    pool = tables
    has_part = bool(part) and (tables["part"] == part).any()
    if has_part and not st.session_state.get(f"{key}_allparts", False):
        pool = tables[tables["part"] == part]
    names = [n for n in pool["table"].tolist() if n != exclude] or pool["table"].tolist()
    labels = table_names(tables)
    focus = st.session_state.get("focus_table")
    preferred = [n for n in prefer or [] if n in names]
    default = focus if focus in names and remember else (preferred or names)[0]
    if st.session_state.get(key) not in names:
        st.session_state[key] = default
    chosen = where.selectbox(
        label, names, key=key, format_func=lambda n: labels.get(n, n),
        help="A table is named by what made it and what it scored: detector (or run) · dataset/split/part, "
        "e.g. lab-base · voices/default/test = the lab base model on the test part of split 'default' of 'voices'.",
    )  # fmt: skip
    if has_part:
        where.checkbox(f"also list tables of other parts than {part}", False, key=f"{key}_allparts")
    if remember:
        st.session_state["focus_table"] = chosen
    return chosen


def pick_dev_table(test_name: str, tables, key: str, container=None, allow_self: bool = False) -> str | None:
    """The dev table paired with `test_name` (same detector, run and split), chosen automatically.

    Other dev tables can be picked (and, with `allow_self`, the test table itself, marked optimistic);
    without any, the page says how to make one. None = no dev table.
    """
    from core.scoring import predictions

    where = container or st
    labels = table_names(tables)
    devs = tables[tables["part"] == "dev"]["table"].tolist()
    pair = predictions.counterpart(test_name, "dev", tables)
    if not devs and not allow_self:
        where.info("No dev table yet: score the dev part of the same split on Evaluate (the same detector and run).")
        return None
    options = [*([pair] if pair else []), *[d for d in devs if d != pair]] + ([test_name] if allow_self else [])
    state_key = f"{key}_{test_name}"
    if st.session_state.get(state_key) not in options:
        st.session_state[state_key] = options[0]
    chosen = where.selectbox(
        "Dev table (paired automatically with the test table)",
        options,
        key=state_key,
        format_func=lambda n: (
            "the test table itself (optimistic)"
            if n == test_name
            else labels.get(n, n) + ("  ✓ paired" if n == pair else "")
        ),
    )
    if chosen != pair and chosen != test_name:
        where.caption(
            "Note: not the same detector/run as the test table" if pair else "no dev table of this detector/run"
        )
    return chosen


def remember_fields(prefixes: tuple[str, ...]) -> None:
    """Keep the values of this page's fields (widget keys starting with `prefixes`) while the user is
    on other pages: Streamlit drops a widget's state when a run does not draw it, so a form came back
    empty. Call at the top of the page, before its widgets; only value widgets may carry the prefixes
    (a button's state cannot be set)."""
    kept = st.session_state.setdefault("_kept_fields", {})
    for k, v in kept.items():
        if k not in st.session_state:
            st.session_state[k] = v
    for k in list(st.session_state.keys()):
        if isinstance(k, str) and k.startswith(prefixes):
            kept[k] = st.session_state[k]
