"""Split & leakage audit: make a group-aware split, save it, audit any split for leaks."""

import pandas as pd
import streamlit as st

from core.data.audit import NEAR_THRESHOLD, audit_split, load_audit, split_status
from core.data.splits import check_split, list_splits, load_split, make_split, save_split, split_info
from core.errors import LabError
from core.report.figures import copy_score_evidence
from ui.state import pick_dataset

st.title("Split & leakage audit")
ds = pick_dataset()
if ds is None:
    st.stop()

st.subheader("Make a split")
st.caption(
    "Group-aware and label-stratified: all clips of a speaker/source group and all variants of a "
    "base clip stay on one side."
)
with st.form("make_split"):
    c = st.columns(5)
    name = c[0].text_input("Split name", value="default")
    train = c[1].number_input("Train", 0.0, 1.0, 0.70, 0.05)
    dev = c[2].number_input("Dev", 0.0, 1.0, 0.15, 0.05)
    test = c[3].number_input("Test", 0.0, 1.0, 0.15, 0.05)
    seed = c[4].number_input("Seed", 0, 2**31 - 1, 0, 1)
    submitted = st.form_submit_button("Make and save split", type="primary")
if submitted:
    try:
        fractions = {"train": train, "dev": dev, "test": test}
        split = make_split(ds.manifest, fractions, seed=int(seed))
        problems = check_split(ds.manifest, split)
        if problems:
            raise LabError("; ".join(problems))
        save_split(ds, name, split, {"fractions": fractions, "seed": int(seed), "method": "group-stratified"})
        st.session_state["audit_split"] = name
        st.success(f"saved split {name!r}; audit it below before training on it")
    except LabError as exc:
        st.error(str(exc))

splits = list_splits(ds)
if not splits:
    st.info("No saved split yet.")
    st.stop()

st.subheader("Audit a split")
current = st.session_state.get("audit_split")
chosen = st.selectbox("Split", splits, index=splits.index(current) if current in splits else 0, key="audit_split")
for part, label in split_info(ds, chosen).get("one_class_parts", {}).items():
    st.warning(
        f"The {part} part holds {label} clips only: its accuracy is {label} recall, and balanced accuracy, "
        "ROC-AUC and calibration cannot be judged on it."
    )
split = load_split(ds, chosen)
status = split_status(ds, chosen)
badge = {
    "clean": ":green[clean]",
    "leaky": ":red[LEAKY — training on it needs an explicit override]",
    "not audited": ":orange[not audited]",
}[status]
st.markdown(f"Status: **{badge}**")
info = split_info(ds, chosen)
m = ds.manifest.assign(split=split.to_numpy())
summary = m.groupby(["split", "label"]).agg(clips=("clip_id", "size"), groups=("group_id", "nunique"))
c1, c2 = st.columns([2, 1])
c1.dataframe(summary.unstack("label"), width="stretch")
fractions = info.get("fractions") or {}
made = [
    "Fractions: " + (", ".join(f"{k} {float(v):.0%}" for k, v in fractions.items()) if fractions else "not recorded"),
    f"Seed: {info.get('seed', 'not recorded')}",
    f"Made by: {info.get('method') or 'the lab (whole groups, label-stratified)'}",
]
if info.get("created"):
    made.append(f"Saved: {str(info['created'])[:16].replace('T', ' ')} UTC")
c2.markdown("  \n".join(made))

c = st.columns(3)
threshold = c[0].slider(
    "Copy threshold",
    0.1,
    1.0,
    NEAR_THRESHOLD,
    0.01,
    help="Copy score (shared waveform phase, 0–1) from which two clips count as the same audio; "
    "the last audit's chart below shows where this dataset's copies and strangers fall.",
)
content = c[1].checkbox("Content checks (decode all audio)", value=True)
if c[2].button("Run audit", type="primary"):
    bar = st.progress(0.0, text="starting… (press Stop, top right, to cancel)")
    try:
        report = audit_split(
            ds,
            chosen,
            content=content,
            threshold=threshold,
            progress=lambda f, msg: bar.progress(min(f, 1.0), text=msg),
        )
        bar.progress(1.0, text=f"done in {report.seconds:.1f} s")
        st.rerun()
    except LabError as exc:
        st.error(str(exc))

saved = load_audit(ds, chosen)
for limit in (saved or {}).get("settings", {}).get("limits", []):
    st.warning(f"Limit of this dataset: {limit}.")
if saved is None:
    st.stop()
findings = pd.DataFrame(saved["findings"])
how = saved.get("settings") or {}
checks = "structure and audio content" if how.get("content") else "structure only (groups, base clips)"
st.caption(
    f"Last audit: {saved['n_clips']} clips in {float(saved['seconds']):.0f} s; checked {checks}"
    + (f", copy threshold {float(how['threshold']):.2f}" if "threshold" in how else "")
    + (f", {how['top_k']} nearest neighbours per clip" if "top_k" in how else "")
)
if saved.get("pair_scores") and saved.get("planted"):
    with st.expander("Is the threshold right for this dataset? Copy scores of compared pairs vs planted copies"):
        st.caption(
            "Each clip was compared with its likeliest copies in other splits (upper panel: nearly all strangers). "
            "Below, a dozen of this dataset's own clips were copied with noise, band limits, rooms, gain, resampling, "
            "shifts and lossy coding, and scored against their originals. A threshold between the two finds copies "
            "without flagging strangers."
        )
        st.plotly_chart(
            copy_score_evidence(saved["pair_scores"], pd.DataFrame(saved["planted"]), saved["settings"]["threshold"]),
            width="stretch",
        )
if findings.empty:
    st.success("No findings: no group or base clip crosses splits, and no duplicate audio across splits.")
    st.stop()
st.error(f"{len(findings)} finding(s): {saved['counts']}")
event = st.dataframe(
    findings, width="stretch", hide_index=True, on_select="rerun", selection_mode="single-row", key="findings_table"
)
rows = event.selection.rows if event and event.selection else []
pick = findings.iloc[rows[0] if rows else 0]
st.markdown(f"**{pick['kind']}** — {pick['detail']}")
for box, side in zip(st.columns(2), ("a", "b")):
    clip_id = pick[f"clip_{side}"]
    box.markdown(f"`{clip_id}` ({pick[f'split_{side}']})")
    try:
        clip = ds.load_clip(clip_id)
        box.audio(clip.samples, sample_rate=clip.sr)
    except LabError as exc:
        box.error(str(exc))
