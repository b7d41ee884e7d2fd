"""Label issues: clips whose label is probably wrong, from out-of-fold scores (cleanlab), and groups to distrust."""

import streamlit as st

from core.analysis.label_issues import find_label_issues, group_quality, planted_recall
from core.data import relabels
from core.data.planted_flips import planted_truth
from core.errors import LabError
from core.scoring import predictions
from ui.clip_grid import clip_grid
from ui.clip_panel import clip_list, verdict_form
from ui.job_status import command
from ui.state import get_dataset, load_table, pick_table

st.title("Label issues")
st.caption(
    "Is it the detector that is wrong, or the label? Confident learning (cleanlab) ranks clips whose label the "
    "scores contradict most. Use **out-of-fold** scores (Runs → Cross-validate: every clip scored by a model that "
    "never heard its speaker or source) or a zero-shot detector: a model scored on the clips it trained on has "
    "learnt their labels, wrong ones included. Listen before you believe a flag."
)

tables = predictions.describe_tables()
oof = tables[tables["part"] == "oof"]["table"].tolist() if "part" in tables else []
name = pick_table("Scores (an out-of-fold table is best)", "li_table", tables=tables, prefer=oof)
table, meta = load_table(name)
if meta.get("part") != "oof" and not meta.get("zero_shot") and meta.get("detector") not in ("silero-vad", "webrtc-vad"):
    st.warning("Not an out-of-fold table: if this detector was trained on these clips, it vouches for their labels, "
               "and real label errors hide. Cross-validate by group for honest scores.")  # fmt: skip
command(f"python -m core label-issues {name}")
try:
    issues = find_label_issues(table)
except LabError as exc:
    st.error(str(exc))
    st.stop()
flagged = issues[issues["flagged"]]
c = st.columns(3)
c[0].metric("Flagged clips", f"{len(flagged)}", help="cleanlab.filter.find_label_issues, prune_by_noise_rate")
c[1].metric("Share of clips", f"{len(flagged) / max(1, len(issues)):.1%}")
c[2].metric("Flagged speech → suggested non-speech", f"{int((flagged['label'] == 'speech').sum())}")

st.subheader("Most likely wrong first")
try:
    ds = get_dataset(str(meta.get("dataset", "")))
except LabError:
    ds = None
shown = flagged[["rank", "clip_id", "group_id", "label", "suggested", "p_speech", "label_quality"]].copy()
if ds is not None:
    decided = relabels.current(ds).set_index("clip_id")
    standing = decided["decision"].to_dict()
    shown["decision"] = [standing.get(c, "") for c in shown["clip_id"]]
    if len(decided) and st.toggle("Hide clips already decided", True, key="li_hide"):
        shown = shown[shown["decision"] == ""]
    if (truth := planted_truth(ds)) is not None:
        r = planted_recall(issues, truth["clip_id"])
        st.info(f"This dataset has planted flips: {r['caught']} of {r['planted']} are in the top {r['top']} of the "
                f"ranking ({r['recall_at_top']:.0%}); {r['flag_precision']:.0%} of the flagged clips were planted.")  # fmt: skip
if ds is not None and len(shown) and st.toggle("Hear them as a grid (most likely wrong first)", False, key="li_grid"):
    clip_grid(ds, shown, "li_grid")
picked = clip_list(ds, shown, "li_list", caption="pick a clip below to hear it, then decide", tag=False)
if picked and ds is not None:
    row = issues[issues["clip_id"] == picked].iloc[0]
    verdict_form(ds, picked, str(row["suggested"]), "li_verdict")

st.subheader("Label quality by group")
st.caption("A speaker or source flagged far more often than the rest (times_overall ≫ 1) deserves a listen as a whole.")
st.dataframe(group_quality(issues).round(3), hide_index=True, key="li_groups")
