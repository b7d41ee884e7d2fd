"""The 'make a condition set' form: launches `python -m core conditions` as a background job."""

from __future__ import annotations

import streamlit as st

from core.data import conditions as cond
from core.data.datasets import dataset_info, list_datasets
from core.data.splits import list_splits
from core.errors import LabError
from core.runs import jobs
from ui.state import get_dataset


def conditions_form() -> None:
    sources = [d for d in list_datasets() if dataset_info(d).get("kind") != "conditions"]
    if not sources:
        st.info("No source dataset yet (Data page).")
        return
    with st.form("conditions", enter_to_submit=False):
        c = st.columns(4)
        source = c[0].selectbox("Source dataset", sources, key="cond_source")
        splits = list_splits(get_dataset(source))
        split = c[1].selectbox("Split", splits or ["(none: make one first)"], key="cond_split")
        part = c[2].selectbox("Base clips from", ["test", "dev", "train"], key="cond_part")
        name = c[3].text_input("New dataset name", f"{source}-psycho", key="cond_name")
        durations = st.multiselect(
            "Durations (ms)",
            list(cond.DURATIONS_MS) + [10, 1500, 2000],
            default=list(cond.DURATIONS_MS),
            key="cond_durations",
        )
        snrs = st.multiselect(
            "SNRs (dB)", [-20.0, -15.0, *cond.SNRS_DB, 15.0, 30.0], default=list(cond.SNRS_DB), key="cond_snrs"
        )
        o = st.columns(4)
        noise = o[0].selectbox(
            "Noise",
            list(cond.NOISES),
            key="cond_noise",
            help="babble: speakers of the split's other parts, never the evaluated groups",
        )
        folder = o[1].text_input(
            "Noise folder (for 'folder')",
            "",
            key="cond_folder",
            placeholder="a folder, or dataset:NAME",
            help="A folder of noise recordings, or dataset:NAME for an imported dataset's non-speech clips.",
        )
        bands = o[2].multiselect("Bands", list(cond.BANDS), default=["clean"], key="cond_bands")
        rooms = o[3].multiselect("Rooms", list(cond.ROOMS), default=["none"], key="cond_rooms")
        bases = st.number_input("Base clips per label", 2, 500, 24, key="cond_bases")
        go = st.form_submit_button("Generate", type="primary")
    if go:
        if not splits:
            st.error("The source dataset has no saved split: make one on the Split & leakage audit page.")
            return
        try:  # refused now, not by a job that fails after starting
            from core.names import check_name
            from ui.access import page_path

            check_name(name, "dataset")
            if noise == "folder":
                from core.data.noise import check_noise, is_dataset

                check_noise(folder if is_dataset(folder) else page_path(folder, "noise folder"))
        except LabError as exc:
            st.error(str(exc))
            return
        args = [
            "conditions",
            "--dataset",
            source,
            "--split",
            split,
            "--part",
            part,
            "--name",
            name,
            "--noise",
            noise,
            "--bases-per-label",
            str(int(bases)),
            "--durations",
            *map(str, sorted(durations)),
            "--snrs",
            *map(str, sorted(snrs)),
            "--bands",
            *(bands or ["clean"]),
            "--rooms",
            *(rooms or ["none"]),
        ]
        if noise == "folder":
            args += ["--noise-folder", folder]
        st.session_state["cond_job"] = jobs.launch("conditions", args, label=f"conditions {name}")
        st.toast(f"making condition set {name}: its progress is listed below")
