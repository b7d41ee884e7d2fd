"""Background jobs as every page shows them: readable name, progress with ETA, cancel, log, the command line."""

from __future__ import annotations

import time

import streamlit as st

from core.runs import jobs
from core.runs.commands import cli_line


def duration(seconds: float) -> str:
    """'42 s', '3 min 5 s', '1 h 02 min'."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def command(line: str, key: str | None = None) -> None:
    """The equivalent command, to copy (Streamlit's code block has a copy button)."""
    st.caption("Same from a terminal:")
    st.code(line, language="bash")


def job_row(j: dict, key: str) -> None:
    """One job: what it is, where it stands, and what to do about it."""
    cols = st.columns([3, 4, 1])
    started = time.strftime("%H:%M", time.localtime(float(j.get("created", 0))))
    cols[0].markdown(f"**{j['label'] or j['kind']}**  \n{j['state']} · started {started}")
    if j["state"] in ("queued", "running"):
        eta = jobs.eta_seconds(j)
        text = j.get("message", "") + (f" · about {duration(eta)} left" if eta is not None else "")
        cols[1].progress(min(1.0, float(j.get("progress", 0.0))), text=text)
        if cols[2].button("Cancel", key=f"{key}_cancel_{j['id']}"):
            jobs.cancel(j["id"])
    else:
        cols[1].caption(j.get("message", ""))
        if j["state"] == "failed":
            cols[1].code(jobs.log_tail(j["id"], 15) or "(no output)")
    with cols[1].expander("command line"):
        st.code(cli_line(j.get("args", [])), language="bash")


def refresh_when_done(key: str, active: set[str]) -> None:
    """Rerun the whole page when something this view saw running has ended, so what the job wrote
    (a table, a run's metrics) appears without the user navigating away and back: the polling
    fragment alone redraws only itself."""
    seen = st.session_state.get(key, set())
    st.session_state[key] = set(active)
    if seen - set(active):
        st.rerun(scope="app")


def jobs_panel(kind: str, key: str, finished_shown: int = 5, title: str = "Jobs", match: str = "") -> list[dict]:
    """Running jobs of `kind` (labels starting with `match`) and the last few finished; older ones clearable."""
    all_jobs = [j for j in jobs.list_jobs(kind) if str(j.get("label", "")).startswith(match)]
    active = [j for j in all_jobs if j["state"] not in jobs.TERMINAL]
    refresh_when_done(f"_jobs_{key}", {j["id"] for j in active})
    if not all_jobs:
        return []
    done = [j for j in all_jobs if j["state"] in jobs.TERMINAL]
    st.subheader(title)
    for j in active + done[:finished_shown]:
        job_row(j, key)
    if done:
        c = st.columns([3, 1])
        more = len(done) - finished_shown
        c[0].caption(f"{more} older finished jobs not shown" if more > 0 else "")
        if c[1].button("Clear finished", key=f"{key}_clear", help="hides them; their tables stay"):
            jobs.archive_finished(kind, {j["id"] for j in done})
            st.rerun()
    return all_jobs
