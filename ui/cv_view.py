"""The Runs page's Cross-validate tab: the form that starts a CV, and the view of one (thin over core.runs.cv)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.analysis.compare import compare
from core.analysis.groups import across_folds, per_fold, per_group
from core.errors import LabError
from core.report.figures import group_forest
from core.runs import cv
from core.runs.commands import cv_line
from core.runs.train_config import TrainConfig
from ui.state import load_table


def cv_form(ds, base: TrainConfig, executor=None) -> None:
    """Start a cross-validation of `base`'s settings on the sidebar dataset (on `executor`, else here)."""
    from core.detectors import REGISTRY

    with st.form("cv_form", enter_to_submit=False):
        st.markdown(
            "Each fold is an ordinary run, trained on the other folds' groups and tested on its own held-out "
            "groups only; every clip is then scored once, by the fold that held its group out."
        )
        c = st.columns(4)
        scheme = c[0].selectbox("Folds", ["leave one speaker out", "K group folds"], key="cv_scheme")
        k = c[1].number_input("K (group folds)", 2, 20, 4, key="cv_k")
        by = c[2].selectbox("Hold out by", [col for col in ("group_id", "source") if col in ds.manifest], key="cv_by")
        seeds = c[3].text_input("Seeds per fold", "0", key="cv_seeds")
        c = st.columns(4)
        parallel = c[0].number_input("Folds at once", 0, 64, 0, key="cv_parallel", help="0 = one per GPU, one on CPU")
        epochs = c[1].number_input("Epochs per fold", 1, 100, base.epochs, key="cv_epochs")
        cap = c[2].number_input("Cap train clips per fold (0 = all)", 0, 10**7, 0, key="cv_cap")
        zero = c[3].selectbox(
            "Or score zero-shot with",
            ["(train the folds)", *[d for d, e in REGISTRY.items() if e.offline]],
            key="cv_zero",
        )
        go = st.form_submit_button("Cross-validate", type="primary")
    if go:
        try:
            if executor is None:
                raise LabError("the Ray cluster above cannot be used (see its message); empty it to run here")
            settings = cv.CVConfig(
                folds="loso" if scheme.startswith("leave") else str(int(k)), by=by,
                seeds=[int(s) for s in seeds.split(",") if s.strip()], parallel=int(parallel),
                detector="" if zero.startswith("(") else zero,
            )  # fmt: skip
            cfg = TrainConfig(**{**base.__dict__, "epochs": int(epochs), "max_train_clips": int(cap)})
            with st.status("Setting up the folds (one content audit for all of them)…", expanded=False) as box:
                bar = st.progress(0.0)
                cv_id = cv.create(
                    cfg, settings, progress=lambda f, m: bar.progress(min(f, 1.0), text=m), executor=executor
                )
                if settings.detector:
                    cv.zero_shot(cv_id, settings.detector, progress=lambda f, m: bar.progress(min(f, 1.0), text=m))
                box.update(label=f"cross-validation {cv_id} started", state="complete")
            st.session_state["cv_pick"] = cv_id
            st.caption("Same from a terminal:")
            st.code(cv_line(cfg, settings.folds, settings.by, settings.seeds, settings.parallel, settings.detector))
        except (LabError, ValueError) as exc:
            st.error(str(exc))


@st.fragment(run_every=2.0)
def cv_view() -> None:
    ids = cv.list_cvs()
    if not ids:
        st.info("No cross-validation yet: choose the folds above and press *Cross-validate*.")
        return
    if st.session_state.get("cv_pick") not in ids:
        st.session_state["cv_pick"] = ids[0]
    cv_id = st.selectbox("Cross-validation", ids, key="cv_pick")
    info, s = cv.info(cv_id), cv.status(cv_id)
    settings = info["settings"]
    kind = "rows shuffled (the leaky twin)" if settings["shuffled"] else f"groups by {settings['by']}"
    st.caption(
        f"{len(info['folds'])} folds of {kind}, seeds {settings['seeds']}; content audit: {info['content_audit']}"
    )
    st.progress(min(1.0, float(s.get("progress", 0.0))), text=f"{s['state']}: {s.get('message', '')}")
    c = st.columns(4)
    if s["state"] in ("queued", "running") and c[0].button("Cancel", key=f"cv_cancel_{cv_id}"):
        cv.cancel(cv_id)
    if s["state"] in ("failed", "cancelled") and c[1].button("Resume", key=f"cv_resume_{cv_id}"):
        cv.resume(cv_id)
    if (
        not settings["shuffled"]
        and info["runs"]
        and c[2].button(
            "The same CV with rows shuffled", key=f"cv_twin_{cv_id}", help="What a leaky split would have told you"
        )
    ):
        st.toast(f"started {cv.create_twin(cv_id)}")
    tables = cv.tables(cv_id)
    if not tables:
        with st.expander("Folds"):
            st.dataframe(pd.DataFrame(info["folds"]), hide_index=True, width="stretch")
        return
    main = st.selectbox("Out-of-fold table", tables, key=f"cv_table_{cv_id}")
    table, _ = load_table(main)
    folds = per_fold(table)
    acc, bacc = across_folds(folds["accuracy"].tolist()), across_folds(folds["balanced_accuracy"].tolist())
    k = st.columns(3)
    k[0].metric("Accuracy over folds", f"{acc['mean']:.3f} ± {acc['std']:.3f}", help="mean ± sample std over folds")
    k[1].metric("95% CI (t over folds)", f"{acc['ci_lower']:.3f} – {acc['ci_upper']:.3f}")
    if bacc["folds"]:
        k[2].metric("Balanced accuracy over folds", f"{bacc['mean']:.3f} ± {bacc['std']:.3f}")
    st.dataframe(folds, hide_index=True, width="stretch")
    baseline = st.selectbox(
        "Beside it (same folds)", ["(none)", *[t for t in tables if t != main]], key=f"cv_base_{cv_id}"
    )
    groups = {main: per_group(table, "group_id")}
    if baseline != "(none)":
        other, _ = load_table(baseline)
        groups[baseline] = per_group(other, "group_id")
        c = compare(table, other)
        lo, hi = c.ci_clustered
        st.info(
            f"{main} − {baseline}: accuracy {c.diff:+.3f} (95% CI clustered by group [{lo:+.3f}, {hi:+.3f}]; "
            f"McNemar exact p = {c.mcnemar['exact']:.3g}) over {c.n_clips} clips in {c.n_groups} groups"
        )
    twin = cv.twin(cv_id)
    if twin and cv.tables(twin):
        shuffled, _ = load_table(cv.tables(twin)[0])
        diff = across_folds(per_fold(shuffled)["accuracy"].tolist())["mean"] - acc["mean"]
        st.warning(
            f"Rows shuffled instead of grouped ({twin}): accuracy {diff:+.3f} against the grouped CV. "
            "That is what a leaky split would have told you: the same speakers and sources on both sides."
        )
    st.markdown("**Accuracy per held-out group** (Wilson 95% intervals; click a group to open its clips on Errors)")
    event = st.plotly_chart(group_forest(groups), on_select="rerun", selection_mode="points", key=f"cv_forest_{cv_id}")
    points = event.selection.points if event and event.selection else []
    if points:
        group = points[0]["customdata"][0]
        st.session_state["err_tables"] = [main]
        st.session_state["err_groups"] = [group]
        st.switch_page("views/errors.py")
