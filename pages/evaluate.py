"""Evaluate: score a split with a detector as a background job; browse the predictions tables."""

import streamlit as st

from core.data import annotations
from core.decision import correct
from core.detectors import DESCRIPTIONS, DETECTORS
from core.detectors.audio_llm import check_prompt, require_adapter, require_available
from core.errors import LabError
from core.runs import jobs, registry
from core.scoring import predictions
from ui.access import page_path
from ui.executor_field import executor_field
from ui.state import pick_dataset_with_splits

st.title("Evaluate")
ds, splits = pick_dataset_with_splits("Make a split on the Split & leakage audit page first.")
executor = executor_field("ev_ray")

with st.form("evaluate"):
    c = st.columns(4)
    split = c[0].selectbox("Split", splits, key="ev_split")
    part = c[1].selectbox("Part", ["test", "dev", "train", "all"], key="ev_part")
    detector = c[2].selectbox("Detector", list(DETECTORS), key="ev_detector")
    replicas = c[3].number_input(
        "Model replicas",
        1,
        64,
        1,
        key="ev_replicas",
        help="Shard the clips over N replicas, one per GPU (or share of the cores); one table, in clip order.",
    )
    st.caption(" · ".join(f"**{k}**: {v}" for k, v in DESCRIPTIONS.items()))
    with st.expander("Audio-LLM options"):
        o = st.columns(4)
        model = o[0].text_input(
            "Model (audio-llm: local dir or cached id)", "Qwen/Qwen2-Audio-7B-Instruct", key="ev_model"
        )
        adapter = o[1].text_input("LoRA adapter folder", "", key="ev_adapter")
        padding = o[2].selectbox("Audio padding", ["trimmed", "padded"], help="trimmed = same logits, far less work")
        mode = o[3].selectbox("Mode", ["logits", "generate"], help="generate: the seed's path, for parity checks")
        o = st.columns(4)
        dtype = o[0].selectbox(
            "Precision", ["auto", "bf16", "fp16", "fp32"], help="auto: bf16 on CUDA, fp32 on CPU", key="ev_dtype"
        )
        batch = o[1].number_input("Batch size", 1, 1024, 16, key="ev_batch")
        four_bit = o[2].checkbox("4-bit NF4 base (CUDA)", help="bitsandbytes; refused with a message without CUDA")
        compiled = o[3].checkbox("torch.compile layers", help="GPU throughput; the first batches compile")
        o = st.columns([4, 1, 1])
        prompt = o[0].text_area(
            "Prompt (empty = the adapter's training prompt, else the default question; A = speech, B = non-speech)",
            "",
            key="ev_prompt",
            help="The clip comes first, or where the prompt writes <audio>. Text before the clip is computed once "
            "per batch, so a question asked before it is far cheaper on short clips. Score with the layout "
            "the model was trained with.",
        )
        answer_speech = o[1].text_input("Answer: speech", "A", key="ev_ans_speech", help="must be one token")
        answer_nonspeech = o[2].text_input("Answer: non-speech", "B", key="ev_ans_nonspeech")
    exclude_tags = st.multiselect(
        "Leave out clips tagged (Errors page)", sorted(set(annotations.load(ds)["tag"])), key="ev_exclude"
    )
    start = st.form_submit_button("Start scoring", type="primary")

if start:
    args = [
        "evaluate",
        "--dataset",
        ds.name,
        "--split",
        split,
        "--part",
        part,
        "--detector",
        detector,
        "--batch-size",
        str(int(batch)),
    ]
    args += [f"--exclude-tags={tag}" for tag in exclude_tags]  # one argv item each: a tag may start with '-'
    if executor is None:
        st.error("The Ray cluster above cannot be used (see its message); empty the field to score here.")
        st.stop()
    args += ["--gpus", str(int(replicas))]
    args += ["--executor", "ray", f"--address={executor.address}"] if executor.ray else []
    if detector in ("audio-llm", "lab-base"):
        args += ["--padding", padding, "--mode", mode, "--dtype", dtype] + ([f"--adapter={adapter}"] if adapter else [])
        args += (["--load-in-4bit"] if four_bit else []) + (["--compile"] if compiled else [])
        args += [f"--prompt={prompt}"] if prompt.strip() else []  # one argv item, never a shell
        args += [f"--answer-speech={answer_speech}", f"--answer-nonspeech={answer_nonspeech}"]
        args += [f"--model={model}"] if detector == "audio-llm" else []
        try:  # refused now, not by a job that fails after starting
            check_prompt(prompt)
            if detector == "audio-llm":
                require_available(page_path(model, "model"))  # a model that is not here
            if adapter:
                require_adapter(page_path(adapter, "adapter"))
        except LabError as exc:
            st.error(str(exc))
            st.stop()
        if registry.scoring_prompt(adapter, prompt if prompt.strip() else "")[1]:
            st.warning("Scoring with another prompt than the adapter was trained with (empty = its own).")
    job_id = jobs.launch("evaluate", args, label=f"{detector} on {ds.name}/{split}/{part}")
    st.session_state["last_eval_job"] = job_id
    st.toast(f"started {job_id}")


@st.fragment(run_every=1.0)
def job_panel() -> None:
    running = [j for j in jobs.list_jobs("evaluate")][:8]
    if not running:
        return
    st.subheader("Scoring jobs")
    for j in running:
        cols = st.columns([3, 4, 1])
        cols[0].markdown(f"**{j['label']}**  \n`{j['id']}` — {j['state']}")
        if j["state"] in ("queued", "running"):
            cols[1].progress(min(1.0, j["progress"]), text=j["message"])
            if cols[2].button("Cancel", key=f"cancel-{j['id']}"):
                jobs.cancel(j["id"])
        else:
            cols[1].caption(j["message"])
            if j["state"] == "failed":
                cols[1].code(jobs.log_tail(j["id"], 15) or "(no output)")


job_panel()

st.subheader("Predictions tables")
tables = predictions.describe_tables()  # sidecars only: the listing does not read every table
if tables.empty:
    st.info("No predictions yet.")
    st.stop()
listing = tables.assign(split=tables["split_name"] + "/" + tables["part"]).rename(columns={"clips_per_s": "clips/s"})
event = st.dataframe(
    listing[["table", "detector", "dataset", "split", "clips", "accuracy", "clips/s", "device"]],
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key="pred_tables",
)
chosen = event.selection.rows[0] if event and event.selection and event.selection.rows else 0
try:
    table, meta = predictions.load(tables["path"].iloc[chosen])
except LabError as exc:
    st.error(str(exc))
    st.stop()
rate = f"{meta['clips_per_s']} clips/s" if meta.get("clips_per_s") else "speed not recorded"
st.markdown(
    f"**{tables['table'].iloc[chosen]}** — {meta.get('model_id', meta.get('detector'))}, {meta.get('dtype')} on "
    f"{meta.get('device')}, {rate}"
)
by = table.assign(correct=correct(table["label"], table["logit"]))
c1, c2 = st.columns(2)
c1.dataframe(by.groupby("label")["correct"].agg(["mean", "size"]).rename(columns={"mean": "accuracy"}))
c2.dataframe(
    by.pivot_table(index="duration_ms", columns=by["snr_db"].fillna(float("inf")), values="correct"), width="stretch"
)
st.dataframe(table.head(500), hide_index=True, width="stretch")
