"""Try a clip: upload files or record from the microphone; every offline detector's p(speech); keep them."""

import pandas as pd
import streamlit as st

from core.data.datasets import dataset_info, list_datasets
from core.data.own_clips import KIND, SUFFIXES, add_clips, decode_upload
from core.detectors import REGISTRY, make_detector
from core.detectors.lab_base import LIMITS as LAB_BASE_LIMITS
from core.errors import LabError
from core.runs import registry
from core.scoring.clips import offline_detectors, score_clips
from ui import plots

st.title("Try a clip")
st.caption(
    "Hear what a detector says about your own audio. Upload files or record a take; each is decoded as the lab "
    "decodes any clip (mono, 16 kHz; its first 30 s) and scored by every detector that runs here offline and every run you fine-tuned. Keep the clips in a "
    "dataset of your own to split, score and tag them like any other data."
)


@st.cache_resource(show_spinner="loading detector…", max_entries=8)
def _detector(name: str):
    if name.startswith("run:"):  # a fine-tuned run: its base, adapter, prompt and answers
        return registry.run_detector(name.removeprefix("run:"))
    return make_detector(name)


c = st.columns([3, 2])
uploads = c[0].file_uploader(
    "Audio files", type=[s.lstrip(".") for s in SUFFIXES], accept_multiple_files=True, key="try_files"
)
take = c[1].audio_input("…or record from the microphone", key="try_mic")
files = [(u.name, u.getvalue()) for u in uploads or []] + ([("microphone.wav", take.getvalue())] if take else [])
if not files:
    st.info("Upload a WAV/FLAC/OGG/MP3 file or record a take to start.")
    st.stop()

clips, problems = {}, []
for filename, data in files:
    name = filename if filename not in clips else f"{len(clips)}-{filename}"
    try:
        clips[name] = decode_upload(filename, data)
    except LabError as exc:
        problems.append(str(exc))
for p in problems:
    st.error(p)
if not clips:
    st.stop()

available = offline_detectors()
runs = [f"run:{r}" for r in registry.finished_runs()]
chosen = st.multiselect(
    "Detectors", available + runs, default=available + runs[:1], key="try_detectors",
    format_func=lambda n: f"{n} — fine-tuned here (Runs page)" if n.startswith("run:") else f"{n} — {REGISTRY[n].group}",
    help="Every detector that runs offline, and every run you fine-tuned that finished (newest first).",
)  # fmt: skip
if not chosen:
    st.info("Choose at least one detector.")
    st.stop()
with st.spinner("scoring…"):
    scores = score_clips({n: a.samples for n, a in clips.items()}, chosen, make=_detector)
for err in scores.loc[scores["error"] != "", ["detector", "error"]].drop_duplicates("detector").itertuples():
    st.error(f"{err.detector}: {err.error}")
wide = scores.pivot(index="clip", columns="detector", values="p_speech").reindex(list(clips))[chosen]
st.subheader("p(speech)")
st.dataframe(
    wide,
    width="stretch",
    key="try_scores",
    column_config={d: st.column_config.ProgressColumn(d, min_value=0.0, max_value=1.0, format="%.3f") for d in chosen},
)
st.caption("p(speech) above 0.5 means the detector says speech at its default threshold (log-odds 0).")
st.caption(LAB_BASE_LIMITS)

for name, audio in clips.items():
    with st.expander(f"{name} — {audio.duration_ms / 1000:.2f} s", expanded=len(clips) == 1):
        for note in audio.notes:
            st.caption(note)
        st.audio(audio.samples, sample_rate=audio.sr)
        p1, p2 = st.columns(2)
        p1.plotly_chart(plots.waveform(audio.samples, audio.sr, "waveform"), key=f"try_wave_{name}")
        p2.plotly_chart(plots.spectrogram(audio.samples, audio.sr, "log-mel spectrogram"), key=f"try_spec_{name}")

st.subheader("Keep these clips")
own = [n for n in list_datasets() if dataset_info(n).get("kind") == KIND]
with st.form("try_keep"):
    k = st.columns([2, 1, 2])
    target = k[0].selectbox("Dataset", [*own, "(new dataset)"], key="try_target")
    label = k[1].selectbox("Label", ["speech", "nonspeech"], key="try_label")
    group = k[2].text_input("Group (speaker or source)", "me", key="try_group")
    new_name = st.text_input("New dataset name (when '(new dataset)')", "my-clips", key="try_new_name")
    keep = st.form_submit_button("Add the clips", type="primary")
if keep:
    name = new_name.strip() if target == "(new dataset)" else target
    try:
        ds = add_clips(name, list(clips.items()), label, group.strip())
    except LabError as exc:
        st.error(str(exc))
    else:
        counts = pd.Series(ds.manifest["label"]).value_counts().to_dict()
        st.success(
            f"added {len(clips)} clip(s) to {name!r} ({len(ds.manifest)} clips: {counts}). Pick it in the sidebar of "
            "the Data page; make a split when it has speech and non-speech from several groups."
        )
