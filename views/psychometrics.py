"""Psychometrics: accuracy vs duration and vs SNR with fitted psychometric functions and thresholds."""

import pandas as pd
import streamlit as st

from core.analysis import psychometrics as pm
from core.data.datasets import dataset_info, list_datasets
from core.errors import LabError
from core.report.figures import psychometric_panels
from core.runs import jobs
from core.scoring import predictions
from ui.job_status import jobs_panel
from ui.psy_scoring import PSY_LABEL, scoring_form
from ui.state import load_table, table_names
from ui.table_export import export_buttons

st.title("Psychometrics")
st.caption(
    "Accuracy vs duration and vs SNR on a condition set, "
    "with ψ(x) = 0.5 + (1 − 0.5 − λ)·F((x − α)/β) fitted by maximum likelihood; thresholds carry 95% bootstrap CIs "
    "that resample base clips (as far as either the expanded percentile or the expanded BCa interval reaches), "
    "and are reported as bounds when outside the tested range."
)


def _condition_tables() -> pd.DataFrame:
    t = predictions.describe_tables()
    if t.empty:
        return t
    kinds = {ds: dataset_info(ds).get("kind", "") if ds else "" for ds in t["dataset"].unique()}
    return t[t["dataset"].map(kinds) == "conditions"]


condition_sets = [d for d in list_datasets() if dataset_info(d).get("kind") == "conditions"]
tables = _condition_tables()
st.markdown(
    "**Three steps:** ① make a condition set (clean clips cut to durations and mixed with noise at SNRs) → "
    "② score it with the detectors to compare → ③ curves and thresholds below. Jobs keep running if you leave "
    "or reload the page."
)
with st.expander("① Make a condition set", expanded=not condition_sets):
    from ui.conditions_form import conditions_form

    conditions_form()


with st.expander("② Score a condition set", expanded=bool(condition_sets) and tables.empty):
    if not condition_sets:
        st.info("Make a condition set first (step ①).")
    else:
        scoring_form(condition_sets)


def psy_jobs() -> list[dict]:
    """This page's jobs, read from disk (so they survive a reload): condition sets made, then scored."""
    made = jobs_panel("conditions", "psy_cond", finished_shown=2, title="Condition-set jobs")
    return made + jobs_panel("evaluate", "psy_ev", finished_shown=3, title="Scoring jobs", match=PSY_LABEL)


def _active(listed: list[dict]) -> bool:
    return any(j["state"] not in jobs.TERMINAL for j in listed)


mine = jobs.list_jobs("conditions") + [j for j in jobs.list_jobs("evaluate") if j["label"].startswith(PSY_LABEL)]
if _active(mine):  # live while something runs; once all is done, no timer is left

    @st.fragment(run_every=2.0)
    def live_jobs() -> None:
        psy_jobs()  # its panels rerun the page when a job ends (ui.job_status.refresh_when_done)

    live_jobs()
else:
    psy_jobs()

st.subheader("③ Curves")
if tables.empty:
    st.info("No scored condition set yet: steps ① and ② above (the curves appear here when a scoring job finishes).")
    st.stop()
labels = table_names(tables)
names = tables["table"].tolist()
newest = tables.drop_duplicates(["dataset", "detector", "adapter"])["table"].tolist()
if [n for n in st.session_state.get("psy_tables", []) if n in names] != st.session_state.get("psy_tables"):
    st.session_state["psy_tables"] = newest[:4]
st.session_state.setdefault("psy_tables", newest[:4])
chosen = st.multiselect(
    "Predictions tables (one curve per detector)", names, key="psy_tables", format_func=lambda n: labels.get(n, n)
)
if not chosen:
    st.stop()
c = st.columns(4)
axis = c[0].radio("Axis", list(pm.AXES), format_func=pm.AXES.get, horizontal=True, key="psy_axis")
loaded = {n: load_table(n) for n in chosen}
first = next(iter(loaded.values()))[0]
strata_options = ["(none)"] + [
    col
    for col in ("duration_ms", "snr_db", "band", "reverb", "noise_type")
    if col != axis and col in first and first[col].nunique(dropna=False) > 1
]
default_by = "duration_ms" if axis == "snr_db" else "snr_db"
by_col = c[1].selectbox(
    "One panel per",
    strata_options,
    index=strata_options.index(default_by) if default_by in strata_options else 0,
    key=f"psy_by_{axis}",
)
function = c[2].selectbox("Function", list(pm.FUNCTIONS), key="psy_fn")
target = c[3].number_input("Target proportion correct", 0.55, 0.99, 0.75, 0.01, key="psy_target")
with st.expander("Fitting options"):
    o = st.columns(3)
    n_boot = o[0].select_slider("Bootstrap resamples", [200, 500, 1000, 2000], 1000, key="psy_boot")
    boot = o[1].radio(
        "Bootstrap",
        ["nonparametric", "parametric"],
        horizontal=True,
        key="psy_boot_kind",
        help="nonparametric resamples base clips; parametric draws counts from the fitted curve",
    )
    lapse_max = o[2].number_input("Largest lapse rate", 0.0, 0.3, pm.LAPSE_MAX, 0.01, key="psy_lapse")
by = [] if by_col == "(none)" else [by_col]
if by:
    values = sorted(first[by_col].dropna().unique().tolist(), key=lambda v: (isinstance(v, str), v))
    if first[by_col].isna().any():
        values = values + ["clean"]
    default_vals = (
        values if len(values) <= 7 else list(dict.fromkeys(values[:: max(1, len(values) // 6)][:6] + values[-1:]))
    )
    shown = st.multiselect(f"Panels ({by_col})", values, default=default_vals, key=f"psy_vals_{axis}_{by_col}")
    if len(shown) < len(values):
        st.caption(f"{len(shown)} of {len(values)} {by_col} panels drawn (add more above); the thresholds table "
                   "below lists every one.")  # fmt: skip
else:
    shown = []


@st.cache_data(show_spinner=False, max_entries=32)
def _fit(
    name: str,
    mtime: float,
    axis: str,
    by: tuple,
    function: str,
    target: float,
    n_boot: int,
    boot: str,
    lapse_max: float,
):
    table, _ = load_table(name)
    if by:
        table = table.assign(**{by[0]: table[by[0]].astype(object).where(table[by[0]].notna(), "clean")})
    fits = pm.fit_table(
        table, axis, list(by), function=function, target=target, n_boot=n_boot, boot=boot, lapse_max=lapse_max
    )
    return fits, pm.observed(table, axis, list(by))


curves, observed, summaries = {}, {}, []
with st.spinner("fitting…"):
    for name in chosen:
        table, meta = loaded[name]
        det = f"{meta.get('detector', name)}"
        try:
            fits, obs = _fit(
                name,
                predictions.resolve(name).stat().st_mtime,
                axis,
                tuple(by),
                function,
                float(target),
                int(n_boot),
                boot,
                float(lapse_max),
            )
        except (LabError, ValueError) as exc:
            st.error(f"{name}: {exc}")
            continue
        summaries.append(pm.summary_rows(fits, det))
        for stratum, fit, _note in fits:
            key = str(stratum.get(by_col, "all")) if by else "all"
            if by and stratum.get(by_col) not in shown:
                continue
            if fit is not None:
                x, y = fit.curve()
                curves[(det, key)] = (x, y, fit.threshold, fit.ci, fit.bound)
        for stratum_val, sub in obs.groupby(by_col) if by else [("all", obs)]:
            if by and stratum_val not in shown:
                continue
            observed[(det, str(stratum_val))] = sub

if curves or observed:
    st.plotly_chart(psychometric_panels(curves, observed, axis, pm.AXES[axis], float(target)), key="psy_chart")
if summaries:
    st.subheader("Thresholds")
    summary = pd.concat(summaries, ignore_index=True)
    if by_col in summary:  # numbers and 'clean' in one column: shown as text
        summary[by_col] = summary[by_col].map(lambda v: v if isinstance(v, str) else f"{v:g}")
    st.dataframe(summary.style.format(precision=3), hide_index=True, width="stretch", key="psy_summary")
    export_buttons(summary, f"psychometric-{axis}", f"Psychometric thresholds vs {pm.AXES[axis]}", key="psy_x")
    st.caption(
        "Deviance: binomial deviance against the saturated model, p from χ² on levels − 3 df; a small p "
        "means the function does not describe the points. Lapse λ is bounded to [0, largest lapse rate]."
    )

st.subheader("SNR × duration interaction")
if st.checkbox("Fit the GEE (correct ~ log2(duration) × SNR, clustered by base clip)", key="psy_glm"):
    for name in chosen:
        table, meta = loaded[name]
        try:
            g = pm.interaction_glm(table)
        except ValueError as exc:
            st.warning(f"{name}: {exc}")
            continue
        st.markdown(
            f"**{meta.get('detector', name)}**: `{g['formula']}` on {g['n_clips']} noisy clips in {g['n_clusters']} "
            f"base clips — interaction p = **{g['interaction_p']:.3g}**, McFadden R² = {g['mcfadden_r2']:.3f}"
        )
        st.dataframe(g["coefficients"].style.format(precision=4), hide_index=True, width="stretch")
