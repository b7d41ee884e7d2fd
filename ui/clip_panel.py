"""One clip to hear and tag, shared by the pages that list clips (Errors, Thresholds, Compare)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.data import annotations, relabels
from core.errors import LabError
from ui import plots


def chosen_tag(preset: str, typed: str) -> str:
    """The tag to save: typed text wins over the preset (a typed tag was once ignored for the preset)."""
    return typed.strip() or ("" if preset == "other…" else preset)


def tag_form(ds, clip_id: str, key: str) -> None:
    """Tag `clip_id` of `ds` (a preset or your own words) and list/remove its tags."""
    with st.form(f"{key}_form", clear_on_submit=True):  # empty again for the next clip
        t = st.columns([2, 2, 3])
        preset = t[0].selectbox("Tag", [*annotations.SUGGESTED, "other…"], key=f"{key}_choice")
        typed = t[1].text_input("…or your own tag", "", key=f"{key}_other", help="what you type here is saved")
        note = t[2].text_input("Note", "", key=f"{key}_note")
        add = st.form_submit_button("Tag clip")
    if add:
        tag = chosen_tag(preset, typed)
        try:
            annotations.set_tag(ds, clip_id, tag, note)
            st.success(
                f"tagged {clip_id}: {tag} (saved in {annotations.path(ds).name}; leave tagged clips out on Evaluate "
                "or Runs)"
            )
        except LabError as exc:
            st.error(str(exc))
    mine = annotations.load(ds)
    mine = mine[mine["clip_id"] == clip_id]
    for i, r in enumerate(mine.itertuples()):
        a, b = st.columns([6, 1])
        a.markdown(f"Tag **{r.tag}** {r.note} — {r.created}")
        if b.button("Remove", key=f"{key}_untag_{i}"):
            annotations.remove_tag(ds, clip_id, r.tag)
            st.rerun()


def verdict_form(ds, clip_id: str, suggested: str, key: str) -> None:
    """Confirm a flagged label as wrong (relabel it to the other label) or dismiss the flag; both dated,
    kept in relabels.csv beside the manifest (never in it), and shown with their history."""
    original = str(ds.row(clip_id)["label"])
    other = "nonspeech" if original == "speech" else "speech"
    with st.form(f"{key}_form", enter_to_submit=False, clear_on_submit=True):
        c = st.columns([3, 4])
        c[0].markdown(f"Manifest label **{original}**; the scores suggest **{suggested}**.")
        note = c[1].text_input("Why (saved with the decision)", "", key=f"{key}_note")
        b = st.columns([1, 1, 3])
        relabel = b[0].form_submit_button(f"Relabel → {other}", type="primary")
        dismiss = b[1].form_submit_button("Label is right")
    if relabel or dismiss:
        try:
            relabels.decide(ds, clip_id, "relabel" if relabel else "dismiss", other if relabel else "", note)
            st.success(f"{clip_id}: " + (f"relabelled {original} → {other}" if relabel else f"kept as {original}")
                       + f" (saved in {relabels.path(ds).name}; the manifest is unchanged — choose *Labels: corrected* "
                       "on Evaluate or Runs to use it)")  # fmt: skip
        except LabError as exc:
            st.error(str(exc))
    history = relabels.log(ds)
    history = history[history["clip_id"] == clip_id]
    if len(history):
        st.caption("Decisions on this clip (the last one stands): " + "; ".join(
            f"{r.created}: {r.decision} {r.original}→{r.label}" + (f" ({r.note})" if r.note else "")
            for r in history.itertuples()))  # fmt: skip


def play(ds, clip_id: str, key: str, figures: bool = False) -> None:
    """The clip's audio player (and waveform/spectrogram when `figures`); a clip that cannot load says why."""
    try:
        clip = ds.load_clip(clip_id)
    except LabError as exc:
        st.error(str(exc))
        return
    st.audio(clip.samples, sample_rate=clip.sr)
    if figures:
        p1, p2 = st.columns(2)
        p1.plotly_chart(plots.waveform(clip.samples, clip.sr, "waveform"), key=f"{key}_wave")
        p2.plotly_chart(plots.spectrogram(clip.samples, clip.sr, "log-mel spectrogram"), key=f"{key}_spec")


def clip_list(
    ds, clips: pd.DataFrame, key: str, caption: str = "", tag: bool = True, limit: int = 500, total: int | None = None
) -> str | None:
    """A list of clips (the first `limit` of `total`); the one picked below it is playable and taggable.
    Returns the picked clip id (None when nothing can be picked)."""
    if clips.empty:
        st.caption(caption or "no clips")
        return None
    total = len(clips) if total is None else total
    shown = clips.head(limit).reset_index(drop=True)
    st.dataframe(shown, hide_index=True, width="stretch", key=f"{key}_list", height=min(400, 38 + 35 * len(shown)))
    more = f"first {limit} of {len(clips)}" if len(clips) > limit else ""
    st.caption(" · ".join(t for t in (caption, more) if t))
    if ds is None:
        return None
    ids = shown["clip_id"].astype(str).tolist()
    clip_id = st.selectbox("Hear a clip", ids, key=f"{key}_pick", help="type to search the list above")
    if clip_id:
        play(ds, clip_id, key)
        if tag:
            tag_form(ds, clip_id, f"{key}_tag")
    return clip_id
