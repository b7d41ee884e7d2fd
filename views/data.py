"""Data: browse every clip of a dataset, filter, listen, look at waveform and spectrogram."""

import numpy as np
import pandas as pd
import streamlit as st

from core.data import relabels
from core.data.audit import split_status
from core.data.datasets import condition_columns
from core.data.splits import list_splits, load_split
from core.errors import LabError
from ui import plots
from ui.import_form import import_form
from ui.state import offer_voices_build, pick_dataset


def _text(col: pd.Series) -> pd.Series:
    """Values as text with "(none)" for missing ones (pandas 3 keeps NaN through astype(str))."""
    return col.astype(object).where(col.notna(), "(none)").astype(str)


COLUMN_TITLES = {"clip_id": "clip", "group_id": "group (speaker or source)", "base_clip_id": "base clip",
                 "duration_ms": "duration (ms)", "snr_db": "SNR (dB)", "noise_type": "noise",
                 "corrected_label": "corrected label"}  # fmt: skip

st.title("Data")
st.caption("Speech Detection Lab · step 1 of a study: browse and hear the clips. Next: *Split & leakage audit* "
           "(sidebar), then score detectors on *Evaluate*.")  # fmt: skip
import_form()
offer_voices_build()
ds = pick_dataset()
if ds is None:
    st.stop()

m = ds.manifest
splits = list_splits(ds)
split_name = st.sidebar.selectbox("Split", ["(none)", *splits], key="data_split")
if split_name != "(none)":
    m = m.assign(split=load_split(ds, split_name).to_numpy())
    st.sidebar.caption(f"audit: **{split_status(ds, split_name)}**")

st.caption(
    f"{ds.info.get('description', ds.info.get('kind', ''))} — {len(m)} clips, "
    f"{m['group_id'].nunique()} groups, {m['base_clip_id'].nunique()} base clips"
)

decisions = relabels.current(ds)
if len(decisions):
    fixed = decisions[decisions["decision"] == "relabel"].set_index("clip_id")["label"]
    m = m.assign(corrected_label=m["clip_id"].map(fixed).fillna(m["label"]))
    with st.expander(
        f"Relabels: {len(fixed)} clip(s) relabelled, {len(decisions) - len(fixed)} flag(s) dismissed "
        "(the manifest is unchanged)"
    ):
        st.caption(
            "Every decision, dated (Label issues page or `python -m core relabel`); the last one per clip stands. "
            "A split, run or scoring job uses them only when asked (Labels: corrected / `--labels corrected`), "
            "and records which it used."
        )
        st.dataframe(relabels.log(ds), hide_index=True, width="stretch", key="data_relabels")

with st.expander("Filters", expanded=True):
    c1, c2, c3 = st.columns(3)
    labels = c1.multiselect("Label", sorted(m["label"].unique()), key="f_label")
    groups = c2.multiselect("Group", sorted(m["group_id"].unique()), key="f_group")
    chosen_splits = c3.multiselect("Split", sorted(m["split"].unique()), key="f_split") if "split" in m else []
    c4, c5 = st.columns(2)
    dur = m["duration_ms"].dropna()
    dur_range = None
    if len(dur) and dur.min() < dur.max():
        dur_range = c4.slider(
            "Duration (ms)", float(dur.min()), float(dur.max()), (float(dur.min()), float(dur.max())), key="f_dur"
        )
    snr = m["snr_db"].dropna()
    snr_range, include_clean = None, True
    if len(snr):
        lo, hi = float(snr.min()), float(snr.max())
        if lo < hi:
            snr_range = c5.slider("SNR (dB)", lo, hi, (lo, hi), key="f_snr")
        include_clean = c5.checkbox("include clean clips (no noise added)", value=True, key="f_clean")
    cond_filters = {}
    # a condition worth filtering by has a few values (not a file path per clip); a missing value is "(none)"
    cond_cols = [c for c in condition_columns(m) if c != "corrected_label" and 1 < m[c].nunique() <= 50]
    for col, box in zip(cond_cols, st.columns(max(1, len(cond_cols)))):
        cond_filters[col] = box.multiselect(col, sorted(_text(m[col]).unique()), key=f"f_cond_{col}")

keep = pd.Series(True, index=m.index)
if labels:
    keep &= m["label"].isin(labels)
if groups:
    keep &= m["group_id"].isin(groups)
if chosen_splits:
    keep &= m["split"].isin(chosen_splits)
if dur_range:
    keep &= m["duration_ms"].between(*dur_range)
if snr_range:
    keep &= m["snr_db"].between(*snr_range) | (m["snr_db"].isna() & include_clean)
elif not include_clean:
    keep &= m["snr_db"].notna()
for col, values in cond_filters.items():
    if values:
        keep &= _text(m[col]).isin(values)
view = m[keep]

st.subheader("Counts")
by = ["label", "split"] if "split" in view else ["label"]
counts = view.groupby(by).agg(
    clips=("clip_id", "size"), groups=("group_id", "nunique"), base_clips=("base_clip_id", "nunique")
)
c1, c2 = st.columns([1, 2])
c1.dataframe(counts, width="stretch")
if len(view):
    c2.plotly_chart(plots.group_counts(view), width="stretch")

st.subheader(f"Clips ({len(view)} of {len(m)})")
cols = [
    c
    for c in [
        "clip_id",
        "label",
        "corrected_label",
        "group_id",
        "split",
        "base_clip_id",
        "duration_ms",
        "snr_db",
        *cond_cols,
        "source",
        "text",
    ]
    if c in view.columns
]
st.caption("Tick the box at the start of a row to hear that clip and see its waveform and spectrogram below.")
event = st.dataframe(
    view[cols],
    width="stretch",
    hide_index=True,
    height=320,
    column_config={c: st.column_config.Column(t) for c, t in COLUMN_TITLES.items() if c in cols},
    on_select="rerun",
    selection_mode="single-row",
    key="clip_table",
)
rows = event.selection.rows if event and event.selection else []
clip_id = view["clip_id"].iloc[rows[0]] if rows else (view["clip_id"].iloc[0] if len(view) else None)

if clip_id is not None:
    st.subheader(f"Clip {clip_id}")
    try:
        clip = ds.load_clip(clip_id)
    except LabError as exc:
        st.error(str(exc))
        st.stop()
    row = m[m["clip_id"] == clip_id].iloc[0]
    info = {
        k: row[k]
        for k in ["label", "corrected_label", "group_id", "base_clip_id", "duration_ms", "snr_db", "noise_type"]
        if k in row and not (isinstance(row[k], float) and np.isnan(row[k]))
    }
    st.dataframe(pd.DataFrame([{COLUMN_TITLES.get(k, k): v for k, v in info.items()}]), hide_index=True)
    for note in clip.notes:
        st.caption(f"loaded with: {note}")
    st.audio(clip.samples, sample_rate=clip.sr)
    c1, c2 = st.columns(2)
    c1.plotly_chart(plots.waveform(clip.samples, clip.sr, "waveform"), width="stretch")
    c2.plotly_chart(plots.spectrogram(clip.samples, clip.sr, "log-mel spectrogram"), width="stretch")
