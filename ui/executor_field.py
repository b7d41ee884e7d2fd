"""Where a page's work runs: this machine, or a Ray cluster whose resources it shows."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from core.errors import LabError
from core.runs.executors import Executor, check


@st.cache_data(ttl=10, show_spinner=False)
def _cluster(address: str) -> dict:
    return check(address, "status", timeout=60)  # in a child process: the server never becomes a Ray driver


def executor_field(key: str) -> Executor | None:
    """A Ray address field (empty = this machine) and the cluster it names; None while that is unusable.

    Folded under "Advanced" unless an address is set: someone on one machine never needs it."""
    preset = os.environ.get("LAB_RAY_ADDRESS", "")
    with st.expander("Advanced: run on a Ray cluster", expanded=bool(preset or st.session_state.get(key))):
        return _field(key, preset)


def _field(key: str, preset: str) -> Executor | None:
    address = st.text_input(
        "Ray cluster (empty = this machine)",
        preset,
        key=key,
        placeholder="auto, HOST:PORT or ray://HOST:PORT",
        help="Each run, fold or scoring replica becomes a Ray task asking for one GPU (or CPUs on a cluster "
        "without GPUs). Every node must see this lab's data and results folders at the same paths.",
    ).strip()
    if not address:
        return Executor()
    try:
        c = _cluster(address)
    except LabError as exc:
        st.error(str(exc))
        return None
    st.caption(
        f"Ray cluster **{address}**: {len(c['nodes'])} node(s) · GPUs {c['gpus_free']}/{c['gpus']} free · "
        f"CPUs {c['cpus_free']}/{c['cpus']} free"
    )
    st.dataframe(pd.DataFrame(c["nodes"]), hide_index=True, width="stretch")  # already inside an expander
    return Executor("ray", address)
