"""Prompts: score candidate prompts on dev, let an optimiser search (OPRO), judge the winner once on test."""

import json
import uuid

import pandas as pd
import plotly.express as px
import streamlit as st

from core.detectors import LLM_DETECTORS, check_checkpoint, needs_model
from core.detectors.llm.prompt import DEFAULT_PROMPT, Prompt
from core.errors import LabError
from core.paths import results_root
from core.prompts import candidates, report, study
from core.prompts.proposers import DESCRIPTIONS as PROPOSERS
from core.prompts.proposers.base import TASK
from core.prompts.subset import ci_halfwidth
from core.runs import jobs
from core.runs.commands import cli_line, study_line
from core.scoring import predictions
from ui.access import page_path
from ui.state import pick_dataset_with_splits

st.title("Prompts")
st.caption(
    "The question an audio LLM is asked matters as much as fine-tuning. Score candidate prompts on **dev**, let an "
    "optimiser propose better ones, and judge only the winner on **test**, once: choosing among many prompts on the "
    "same clips flatters the winner, and the gap (its optimism) is shown at the end."
)
ds, splits = pick_dataset_with_splits("Make a split on the Split & leakage audit page first.")

with st.expander("Audio LLM to ask", expanded=False):
    c = st.columns(3)
    detector = c[0].selectbox(
        "Model", LLM_DETECTORS, key="pr_detector", help="lab-base runs offline; the others score a checkpoint folder"
    )
    model = c[1].text_input(
        "Checkpoint folder (not for lab-base; audio-llm: also a cached id)", "", key="pr_model",
        disabled=not needs_model(detector),
    )  # fmt: skip
    adapter = c[2].text_input("LoRA adapter folder (optional)", "", key="pr_adapter")
    c = st.columns(3)
    dtype = c[0].selectbox("Precision", ["auto", "bf16", "fp32"], key="pr_dtype")
    batch = c[1].number_input("Batch size", 1, 1024, 32, key="pr_batch")
    four_bit = c[2].checkbox("4-bit NF4 base (CUDA)", key="pr_4bit")


def model_args() -> list[str]:
    args = ["--detector", detector, "--dtype", dtype, "--batch-size", str(int(batch))]
    args += [f"--adapter={adapter}"] if adapter else []
    args += ["--load-in-4bit"] if four_bit else []
    return args + ([f"--model={model}"] if needs_model(detector) else [])


def subset_note(size: int) -> str:
    if not size:
        return "every clip of the part"
    return (
        f"{size} clips: a 95% CI of about ±{100 * ci_halfwidth(size):.0f} points at 85% balanced accuracy if "
        "clips were independent; wider, since clips of one speaker or source are alike."
    )


def ci_text(row) -> str:
    warn = " ⚠ few groups" if row["fewest_groups"] < report.MIN_GROUPS else ""
    return f"{row['balanced_accuracy']:.3f} [{row['ci_lower']:.3f}, {row['ci_upper']:.3f}]{warn}"


try_tab, opt_tab = st.tabs(["Try prompts", "Optimise"])

with try_tab:
    st.markdown(
        "One row per candidate: the question (the clip comes first, or where it writes `<audio>`) and the two "
        "answers. Answers may be several tokens long (*SPEECH* / *NON-SPEECH*): they are then scored by the "
        "log-likelihood of the whole answer. The clips are read and encoded once for every candidate."
    )
    start_rows = pd.DataFrame(
        [
            {"prompt": DEFAULT_PROMPT, "speech": "A", "nonspeech": "B"},
            {
                "prompt": "Based on the audio file, is it SPEECH or NON-SPEECH?",
                "speech": "SPEECH",
                "nonspeech": "NON-SPEECH",
            },
        ]
    )
    with st.form("try_prompts", enter_to_submit=False):
        c = st.columns(3)
        split = c[0].selectbox("Split", splits, key="pt_split")
        part = c[1].selectbox("Part", ["dev", "test", "train", "all"], key="pt_part", help="try prompts on dev")
        size = c[2].number_input("Subset of clips (0 = all)", 0, 10**6, 150, key="pt_subset")
        st.caption(f"Scored on {subset_note(int(size))}")
        rows = st.data_editor(start_rows, num_rows="dynamic", width="stretch", key="pt_rows")
        go = st.form_submit_button("Score these prompts", type="primary")
    if go:
        prompts, problems, seen = [], [], {}
        for i, r in enumerate(rows.fillna("").itertuples(index=False), 1):
            p = Prompt(str(r.prompt), str(r.speech), str(r.nonspeech))
            reason = candidates.check(p, seen)
            if reason:
                problems.append(f"row {i}: {reason}")
            seen[candidates.key(p)] = f"row {i}"
            prompts.append(p)
        try:
            if needs_model(detector):
                check_checkpoint(detector, page_path(model, "model"))
            if adapter:
                page_path(adapter, "adapter")
        except LabError as exc:
            problems.append(str(exc))
        if problems or not prompts:
            st.error("\n\n".join(problems) or "add at least one prompt")
        else:
            inputs = results_root() / "jobs" / "inputs"
            inputs.mkdir(parents=True, exist_ok=True)
            path = inputs / f"prompts-{uuid.uuid4().hex[:8]}.json"
            path.write_text(
                json.dumps([{"text": p.text, "speech": p.speech, "nonspeech": p.nonspeech} for p in prompts])
            )
            args = ["prompts", "try", "--dataset", ds.name, "--split", split, "--part", part]
            args += ["--subset", str(int(size)), f"--candidates-file={path}", *model_args()]
            job = jobs.launch("prompts", args, label=f"{len(prompts)} prompts on {ds.name}/{split}/{part}")
            st.session_state["pt_job"] = job

    @st.fragment(run_every=1.0)
    def try_results() -> None:
        done = [j for j in jobs.list_jobs("prompts")]
        if not done:
            st.info("No prompts scored yet: fill the table and press *Score these prompts*.")
            return
        ids = [j["id"] for j in done]
        if st.session_state.get("pt_job") not in ids:
            st.session_state["pt_job"] = ids[0]
        labels = {j["id"]: f"{j['label']} — {j['state']}" for j in done}
        job_id = st.selectbox("Scored set", ids, format_func=labels.get, key="pt_job")
        j = jobs.status(job_id)
        with st.expander("command line"):
            st.code(cli_line(j.get("args", [])), language="bash")
        if j["state"] in ("queued", "running"):
            st.progress(min(1.0, j["progress"]), text=j["message"])
            if st.button("Cancel", key=f"pt_cancel_{job_id}"):
                jobs.cancel(job_id)
            return
        if j["state"] != "finished":
            st.error(f"{j['state']}: {j['message']}")
            st.code(jobs.log_tail(job_id, 15) or "(no output)")
            return
        tables, answers = {}, {}
        for name in j["result"]:
            table, meta = predictions.load(predictions.resolve(name))
            tables[name], answers[name] = table, tuple(meta.get("answers", ("A", "B")))
        s = report.summary(tables, answers)
        shown = s.assign(**{"balanced accuracy [95% CI, clustered]": s.apply(ci_text, axis=1)})
        st.dataframe(
            shown[
                [
                    "table",
                    "prompt",
                    "speech",
                    "nonspeech",
                    "balanced accuracy [95% CI, clustered]",
                    "roc_auc",
                    "ece",
                    "clips",
                    "groups",
                ]
            ],
            hide_index=True,
            width="stretch",
        )
        if (s["fewest_groups"] < report.MIN_GROUPS).any():
            st.warning(
                f"⚠ A class has fewer than {report.MIN_GROUPS} groups (speakers or sources) here: a clustered CI rests "
                "on a handful of them, so it is wide (or undefined with one). Telling prompts apart needs more groups."
            )
        long = report.by_condition(tables)
        if len(long):
            st.markdown("**By condition** (balanced accuracy)")
            pivot = long.pivot_table(
                index=["condition", "level"], columns="table", values="balanced_accuracy", sort=False
            )
            st.dataframe(pivot.style.format("{:.3f}").highlight_max(axis=1, color="#c8e6c9"), width="stretch")
            st.markdown("**Best and worst prompt per condition**")
            st.dataframe(report.best_and_worst(long), hide_index=True, width="stretch")
        st.caption(
            "Each prompt's table is an ordinary predictions table: open it on Calibration, Thresholds, Compare or Errors."
        )

    try_results()

with opt_tab:
    st.markdown(
        "An optimiser reads the best prompts so far with their dev scores (worst first, as OPRO does) and proposes "
        "new ones; malformed or repeated proposals are turned away with a reason; the rest are scored on a fixed, "
        "label- and condition-stratified dev subset. The search never reads test: at the end, the starting prompt "
        "and the best one are each scored once on test."
    )
    with st.form("optimise", enter_to_submit=False):
        c = st.columns(4)
        split = c[0].selectbox("Split", splits, key="po_split")
        proposer = c[1].selectbox(
            "Optimiser", list(PROPOSERS), key="po_proposer", help=" · ".join(f"{k}: {v}" for k, v in PROPOSERS.items())
        )
        opt_model = c[2].text_input("Optimiser LLM folder or cached id (causal-lm)", "", key="po_opt_model")
        seed = c[3].number_input("Seed", 0, 2**31 - 1, 0, key="po_seed")
        st.caption(PROPOSERS[proposer])
        start = st.text_area("Starting prompt", DEFAULT_PROMPT, key="po_start")
        c = st.columns(5)
        s_ans = c[0].text_input("Its answer: speech", "A", key="po_speech")
        n_ans = c[1].text_input("Its answer: non-speech", "B", key="po_nonspeech")
        iters = c[2].number_input("Iterations", 1, 100, 3, key="po_iters")
        n_cand = c[3].number_input("Candidates per iteration", 1, 64, 8, key="po_cands")
        size = c[4].number_input("Dev subset (clips)", 10, 10**6, 150, key="po_subset")
        st.caption(f"Every candidate is scored on the same {subset_note(int(size))}")
        with st.expander("Task description the optimiser reads"):
            task = st.text_area("Task", TASK, key="po_task")
        go = st.form_submit_button("Start optimising", type="primary")
    if go:
        cfg = study.StudyConfig(
            dataset=ds.name, split=split, detector=detector, model=model, adapter=adapter, dtype=dtype,
            batch_size=int(batch), load_in_4bit=four_bit, start_prompt=start, start_speech=s_ans,
            start_nonspeech=n_ans, proposer=proposer, optimiser_model=opt_model, iterations=int(iters),
            candidates=int(n_cand), subset=int(size), seed=int(seed), task=task,
        )  # fmt: skip
        try:
            for value, what in ((model, "model"), (adapter, "adapter"), (opt_model, "optimiser model")):
                page_path(value, what)
            study_id = study.create(cfg)
            study.launch(study_id)
            st.session_state["po_study"] = study_id
            st.success(f"prompt study {study_id} started")
            st.code(study_line(cfg), language="bash")
        except LabError as exc:
            st.error(str(exc))

    @st.fragment(run_every=2.0)
    def studies_panel() -> None:
        listing = study.list_studies()
        if listing.empty:
            st.info("No prompt studies yet: set a starting prompt above and press *Start optimising*.")
            return
        ids = listing["study"].tolist()
        if st.session_state.get("po_study") not in ids:
            st.session_state["po_study"] = ids[0]
        st.dataframe(listing, hide_index=True, width="stretch", column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=1)})  # fmt: skip
        sid = st.selectbox("Study", ids, key="po_study")
        s = study.status(sid)
        st.progress(min(1.0, float(s.get("progress", 0.0))), text=f"{s['state']}: {s.get('message', '')}")
        c = st.columns(3)
        if s["state"] in ("queued", "running") and c[0].button("Cancel", key=f"po_cancel_{sid}"):
            study.cancel(sid)
        if s["state"] in ("failed", "cancelled") and c[1].button("Resume", key=f"po_resume_{sid}"):
            study.launch(sid, resume=True)
        frame = study.progress_frame(sid)
        if len(frame) > 1:
            shown = frame.rename(columns={"best_so_far": "best so far", "mean": "mean of the iteration's prompts"})
            fig = px.line(shown, x="iteration", y=["best so far", "mean of the iteration's prompts"], markers=True,
                          height=300, title="dev balanced accuracy per iteration (iteration 0: the start)")  # fmt: skip
            fig.update_layout(xaxis={"dtick": 1}, yaxis_title="balanced accuracy", legend_title_text="")
            st.plotly_chart(fig, width="stretch")
        res = study.result(sid)
        if res:
            show_result(res)
        h = study.history(sid)
        if len(h):
            with st.expander(f"History: {len(h)} prompts scored", expanded=not res):
                st.dataframe(h.sort_values("score", ascending=False), hide_index=True, width="stretch")
        rej = study.rejected(sid)
        if len(rej):
            with st.expander(f"Turned away: {len(rej)} proposals, each with its reason"):
                st.dataframe(rej, hide_index=True, width="stretch")
        its = study.iterations(sid)
        if len(its) > 1 and its[-1].get("meta_prompt"):
            with st.expander("What the optimiser read last (the meta-prompt)"):
                st.code(its[-1]["meta_prompt"], language=None)
        if s["state"] == "failed":
            st.code(jobs.log_tail_of(study.folder(sid), 15) or "(no output)")

    def show_result(res: dict) -> None:
        rows = []
        for role, title in (("start", "starting prompt"), ("best", "chosen prompt")):
            r = res[role]
            rows.append({
                "": title, "prompt": r["prompt"], "answers": " / ".join(r["answers"]),
                "dev subset (searched)": r["dev_subset"],
                "dev, clips the search never saw": (
                    f"{r['dev']['balanced_accuracy']:.3f} [{r['dev']['ci_lower']:.3f}, {r['dev']['ci_upper']:.3f}]"
                    if r["dev"] else "none left"),
                "test (once)": f"{r['test']['balanced_accuracy']:.3f} [{r['test']['ci_lower']:.3f}, {r['test']['ci_upper']:.3f}]",
            })  # fmt: skip
        st.markdown("**The honest end** — balanced accuracy, 95% CIs clustered by group")
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        c, g, o = res["compare_best_vs_start_on_test"], res["balanced_accuracy_gain_on_test"], res["optimism"]
        lo, hi = g["ci"]
        verdict = (
            "the search kept the starting prompt: nothing scored higher on the dev subset"
            if res.get("same_prompt")
            else (
                f"on test the chosen prompt is {'better' if g['diff'] > 0 else 'not better'} by {g['diff']:+.3f} in "
                f"balanced accuracy, the metric the search optimised (95% CI clustered by group [{lo:+.3f}, {hi:+.3f}]; "
                f"McNemar exact p = {c['mcnemar']['exact']:.3g})"
                + ("; the interval includes 0: not settled" if lo <= 0 <= hi else "")
            )
        )
        st.info(verdict)
        st.caption(
            f"Optimism: the gain over the start claimed on the searched subset minus the gain on test, each on its "
            f"own clips: {o['diff']:+.3f} (95% CI [{o['ci'][0]:+.3f}, {o['ci'][1]:+.3f}])."
        )
        st.caption(
            "Tables: "
            + ", ".join(res["tables"]["dev"] + res["tables"]["test"])
            + " (Calibration, Compare, Errors read them)."
        )

    studies_panel()
