"""Decide or abstain: a rule fitted on dev that sets uncertain clips aside with a guaranteed error rate."""

import numpy as np
import pandas as pd
import streamlit as st

from core.analysis import conformal
from core.errors import LabError
from core.report import figures
from core.scoring import predictions
from ui.clip_panel import clip_list
from ui.job_status import command
from ui.state import get_dataset, load_table, pick_dev_table, pick_table

st.title("Decide or abstain")
st.caption(
    "A deployed detector can hand an uncertain clip to a person. Fitted on **dev**, the rule decides where the "
    "detector is confident enough and abstains elsewhere, so that the error among decided clips stays at most α "
    "(with probability 1 − δ) on test clips exchangeable with dev; prediction sets give coverage 1 − α instead. "
    "Clips of one speaker are alike, which breaks exchangeability: *count dev by groups* makes the rule pay for it."
)

tables = predictions.describe_tables()
c = st.columns(2)
test_name = pick_table("Test table (judge on)", "dec_test", part="test", tables=tables, container=c[0])
dev_name = pick_dev_table(test_name, tables, "dec_dev", container=c[1])
if not dev_name:
    st.stop()
s = st.columns(4)
alpha = s[0].number_input("α: error among decided (or 1 − coverage)", 0.001, 0.5, 0.05, 0.01, key="dec_alpha",
                          format="%.3f")  # fmt: skip
delta = s[1].number_input("δ: the rule may fail with this probability", 0.01, 0.5, 0.1, 0.01, key="dec_delta")
by_group = s[2].checkbox("Count dev by groups", False, key="dec_by_group",
                         help="effective sample size n / (1 + (m̄ − 1)·ICC): clips of one speaker count less")  # fmt: skip
mondrian = s[3].checkbox("Sets per class (Mondrian)", False, key="dec_mondrian")

dev, _ = load_table(dev_name)
test, meta = load_table(test_name)
yd, pdv = (dev["label"] == "speech").to_numpy(), dev["p_speech"].to_numpy(float)
yt, pt = (test["label"] == "speech").to_numpy(), test["p_speech"].to_numpy(float)
try:
    rule = conformal.fit_selective(yd, pdv, alpha, delta, groups=dev["group_id"].to_numpy() if by_group else None)
    res = conformal.apply_selective(rule, yt, pt, test["group_id"].to_numpy())
    sets = conformal.prediction_sets(yd, pdv, pt, alpha, mondrian=mondrian)
except LabError as exc:
    st.error(str(exc))
    st.stop()
args = ["abstain", "--dev", dev_name, "--test", test_name, "--alpha", f"{alpha:g}", "--delta", f"{delta:g}"]
command(
    "python -m core " + " ".join(args + (["--by-group"] if by_group else []) + (["--mondrian"] if mondrian else []))
)

k = st.columns(4)
k[0].metric("Decided on test", f"{res['decided']:.1%}", help=f"{res['n_decided']} of {len(yt)} clips")
k[1].metric("Error among decided", "—" if not res["n_decided"] else f"{res['error']:.4f}",
            help=f"95% interval [{res['error_lo']:.4f}, {res['error_hi']:.4f}], clustered by group")  # fmt: skip
k[2].metric("Error deciding everything", f"{np.mean((pt > 0.5) != yt):.4f}")
size = sets.sum(axis=1)
k[3].metric(f"Set coverage (target {1 - alpha:.3f})", f"{sets[np.arange(len(yt)), np.where(yt, 0, 1)].mean():.4f}")
if np.isinf(rule.threshold):
    st.warning(f"Dev ({rule.n_dev} clips, effective {rule.effective_n:.0f}) cannot show an error at most {alpha:g} "
               "for any threshold: the rule abstains on every clip. Use more dev clips, a larger α, or a detector "
               "that is more often right when it is confident.")  # fmt: skip
else:
    st.caption(f"Rule: decide where max(p, 1 − p) ≥ {rule.threshold:.4f} (fitted on {dev_name}: decided "
               f"{rule.dev_decided:.1%} of dev, error among them {rule.dev_error:.4f}; effective dev clips "
               f"{rule.effective_n:.0f}). 95% interval of the test error [{res['error_lo']:.4f}, {res['error_hi']:.4f}]."
               f" Prediction sets: one label {np.mean(size == 1):.1%}, both (abstain) {np.mean(size == 2):.1%}, "
               f"empty {np.mean(size == 0):.1%}.")  # fmt: skip

st.subheader("Risk–coverage: error among decided clips against the fraction decided")
peers = [n for n in predictions.peers(test_name, tables) if n != test_name][:5]
curves = {}
for name in [test_name, *peers]:
    t, _ = load_table(name)
    label = str(t["detector"].iloc[0]) + ("" if name == test_name else f" ({name})")
    curves[label] = conformal.risk_coverage((t["label"] == "speech").to_numpy(), t["p_speech"].to_numpy(float))
point = (res["decided"], res["error"]) if res["n_decided"] else None
fig = figures.risk_coverage(curves, alpha, point)
st.plotly_chart(fig, key="dec_rc")

st.subheader("Abstained clips")
abst = test.iloc[res["abstained"]][["clip_id", "label", "group_id", "p_speech"]]
abst = abst.assign(confidence=np.maximum(abst["p_speech"], 1 - abst["p_speech"])).sort_values("confidence")
try:
    ds = get_dataset(str(meta.get("dataset", "")))
except LabError:
    ds = None
clip_list(ds, pd.DataFrame(abst), "dec_abst", caption=f"{len(abst)} clips set aside for a person", tag=False)
