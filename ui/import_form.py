"""The Data page's import form: a corpus in any supported format, its first rows previewed before anything is written."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import LabError
from core.runs import jobs
from core.runs.commands import cli_line
from ui.access import page_path

KINDS = {
    "folder": "<root>/<speech|nonspeech>/<group>/*.wav",
    "hf": "a Hugging Face dataset saved with save_to_disk (or an id already in the local cache)",
    "lhotse": "Lhotse recordings + supervisions manifests",
    "musan": "MUSAN: speech/music/noise/<sub-corpus>/*.wav",
    "esc50": "ESC-50: meta/esc50.csv + audio/",
    "voxconverse": "wav + RTTM speaker turns",
    "fsdd": "Free Spoken Digit Dataset recordings/",
    "csv": "a CSV manifest (clip_id, path, label, group_id, base_clip_id)",
}


def _options(kind: str, c) -> tuple[dict, list[str]]:
    """The chosen format's settings: as scanner options, and as `data import` flags."""
    if kind == "hf":
        label = c[0].text_input("Label column", "label", key="imp_label")
        group = c[1].text_input("Group column (speaker/source)", "", key="imp_group")
        speech = c[2].text_input("Values meaning speech (comma-separated)", "", key="imp_speech")
        clip_groups = c[3].checkbox(
            "No group column: each clip its own group", key="imp_clipgroups",
            help="Then no split can keep a speaker on one side; the audit will say so.",
        )  # fmt: skip
        values = [v.strip() for v in speech.split(",") if v.strip()]
        opts = {"label_column": label, "speech_values": values, "group_column": group, "clip_groups": clip_groups}
        flags = [f"--label-column={label}", *[f"--speech-values={v}" for v in values]]
        flags += [f"--group-column={group}"] if group else []
        return opts, flags + (["--clip-groups"] if clip_groups else [])
    if kind == "lhotse":
        sups = c[0].text_input("Supervisions manifest", "", key="imp_sups")
        gaps = c[1].checkbox("Gaps between segments as non-speech", key="imp_gaps")
        longest = c[2].number_input("Cut segments longer than (s)", 1.0, 600.0, 10.0, key="imp_max")
        opts = {"supervisions": sups, "include_gaps": gaps, "max_seconds": float(longest)}
        return opts, [sups, f"--max-seconds={longest}"] + (["--include-gaps"] if gaps else [])
    if kind == "voxconverse":
        gaps = c[0].checkbox("Gaps between turns as non-speech", key="imp_vgaps")
        return {"include_gaps": gaps}, ["--include-gaps"] if gaps else []
    return {}, []


def preview(kind: str, source: str, opts: dict) -> pd.DataFrame:
    """The rows an import would make (no audio decoded, nothing written)."""
    import tempfile
    from pathlib import Path

    from core.data.corpora import hf_preview
    from core.data.importers import SCANNERS

    if kind == "hf":
        info = hf_preview(source, opts["label_column"])
        st.caption(f"{info['rows']} rows; columns {', '.join(info['columns'])}; audio in {info['audio']!r}")
        if info["label_values"]:
            st.caption(f"values of {opts['label_column']!r}: {', '.join(info['label_values'][:30])}")
        with tempfile.TemporaryDirectory() as tmp:  # the mapping on the first rows only
            if not opts["speech_values"]:
                return info["head"]
            rows = SCANNERS["hf"](Path(source), stage=Path(tmp), **opts)
            return rows.drop(columns=["path"]).head(10)
    rows = SCANNERS[kind](Path(source).expanduser().resolve(), **opts)
    return rows.drop(columns=["path"], errors="ignore")


def import_form() -> None:
    """Import a corpus as a background job, after a preview of what it would make."""
    from core.data.importers import FILE_SOURCES

    with st.expander("Import a corpus", expanded=False):
        c = st.columns([1, 3, 1])
        kind = c[0].selectbox("Format", list(KINDS), key="imp_kind", format_func=lambda k: k)
        source = c[1].text_input(
            "Path" + (" (file)" if kind in FILE_SOURCES else " (folder, or a cached id for hf)"), "", key="imp_src"
        )
        name = c[2].text_input("Dataset name", "", key="imp_name")
        st.caption(KINDS[kind])
        opts, flags = _options(kind, st.columns(4))
        c2 = st.columns([1, 1, 2])
        cut = c2[0].number_input(
            "Cut clips longer than (s)", 0.0, 3600.0, 0.0, key="imp_cut",
            help="0 keeps clips whole. Qwen2-Audio and the lab base model take at most 30 s; pieces of one "
            "recording stay together in splits.",
        )  # fmt: skip
        flags += [f"--cut-seconds={cut:g}"] if cut else []
        skip_bad = c2[1].checkbox("Skip unusable clips (listed) instead of stopping", key="imp_skip")
        left, right = st.columns(2)
        if left.button("Preview", key="imp_preview") and source.strip():
            try:
                page_path(source, "corpus")
                rows = preview(kind, source.strip(), opts)
                counts = rows.groupby("label").agg(clips=("clip_id", "size"), groups=("group_id", "nunique")) \
                    if {"label", "group_id"} <= set(rows.columns) else None  # fmt: skip
                if counts is not None:
                    st.dataframe(counts, width="stretch")
                st.dataframe(rows.head(10), hide_index=True, width="stretch")
            except (LabError, OSError, ValueError) as exc:
                st.error(str(exc))
        if right.button("Import", key="imp_go", type="primary"):
            try:
                from core.names import check_name

                check_name(name, "dataset")
                page_path(source, "corpus")
                if not source.strip():
                    raise LabError("give the corpus's path")
            except LabError as exc:
                st.error(str(exc))
                return
            positional = flags[:1] if kind == "lhotse" else []  # the supervisions manifest follows the recordings
            args = ["data", "import", kind, source.strip(), *positional, f"--name={name}", *flags[len(positional) :]]
            args += ["--skip-bad"] if skip_bad else []
            st.session_state["import_job"] = jobs.launch("import", args, label=f"import {kind} as {name}")
        if st.session_state.get("import_job"):
            import_status()


@st.fragment(run_every=1.0)
def import_status() -> None:
    job = st.session_state["import_job"]
    s = jobs.status(job)
    st.progress(min(1.0, float(s.get("progress", 0.0))), text=f"{s['state']}: {s.get('message', '')}")
    st.caption("Same from a terminal:")
    st.code(cli_line(s.get("args", [])), language="bash")
    if s["state"] == "failed":
        st.code(jobs.log_tail(job, 15) or "(no output)")
