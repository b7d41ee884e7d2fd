"""Evaluate: score a split with a detector as a background job; browse the predictions tables."""

import pandas as pd
import streamlit as st

from core.data import annotations, relabels
from core.decision import correct
from core.detectors import LLM_DETECTORS, REGISTRY, check_checkpoint
from core.detectors.checkpoints import require_adapter
from core.detectors.clap import NONSPEECH_PROMPTS, SPEECH_PROMPTS
from core.detectors.lab_base import LIMITS as LAB_BASE_LIMITS
from core.detectors.llm.prompt import check_prompt
from core.detectors.llm.qwen2_audio import DEFAULT_MODEL
from core.errors import LabError
from core.runs import jobs, registry
from core.scoring import predictions
from core.scoring.evaluate import window_note
from ui.access import page_path
from ui.executor_field import executor_field
from ui.job_status import jobs_panel
from ui.state import pick_dataset_with_splits, remember_fields


def snr_labels(snr):
    """SNR values as ordered column labels: '-5 dB' … '20 dB', then 'clean' (no noise) last, not 'inf'."""
    levels = sorted(snr.dropna().unique())
    names = [f"{v:g} dB" for v in levels] + ["clean"]
    text = snr.map(lambda v: "clean" if pd.isna(v) else f"{v:g} dB")
    return pd.Categorical(text, categories=[n for n in names if n in set(text)], ordered=True)


def families_markdown() -> str:
    """The detectors by group: whether each runs here offline or needs a checkpoint folder, and how it scores."""
    lines = []
    for group in dict.fromkeys(e.group for e in REGISTRY.values()):
        lines.append(f"\n#### {group}\n")  # a blank line first: else Markdown glues it onto the last bullet
        for name, e in REGISTRY.items():
            if e.group == group:
                where = "runs here offline" if e.offline else "needs a checkpoint folder"
                lines.append(f"- `{name}` ({where}): {e.description}. *Log-odds:* {e.how}.")
    return "\n".join(lines)


st.title("Evaluate")
remember_fields(("ev_",))  # the form keeps its values while you visit other pages
ds, splits = pick_dataset_with_splits("Make a split on the Split & leakage audit page first.")
executor = executor_field("ev_ray")

with st.expander("Detector families: what runs here, what needs a checkpoint, how each becomes log-odds"):
    st.markdown(families_markdown())

with st.form("evaluate", enter_to_submit=False):  # a job costs minutes: only a click starts it
    c = st.columns(4)
    split = c[0].selectbox("Split", splits, key="ev_split")
    part = c[1].selectbox("Part", ["test", "dev", "train", "all"], key="ev_part")
    detector = c[2].selectbox(
        "Detector", list(REGISTRY), key="ev_detector", format_func=lambda n: f"{n} — {REGISTRY[n].group}"
    )
    replicas = c[3].number_input(
        "Model replicas",
        1,
        64,
        1,
        key="ev_replicas",
        help="Shard the clips over N replicas, one per GPU (or share of the cores); one table, in clip order.",
    )
    o = st.columns([3, 1, 1])
    model = o[0].text_input(
        "Checkpoint folder (detectors that need one; audio-llm: also a cached id)",
        "",
        key="ev_model",
        placeholder="/path/to/checkpoint (audio-llm default: Qwen/Qwen2-Audio-7B-Instruct)",
    )
    dtype = o[1].selectbox(
        "Precision", ["auto", "bf16", "fp16", "fp32"], help="auto: bf16 on CUDA, fp32 on CPU", key="ev_dtype"
    )
    batch = o[2].number_input("Batch size", 1, 1024, 16, key="ev_batch")
    with st.expander(f"Audio-LLM options ({', '.join(LLM_DETECTORS)})"):
        o = st.columns(4)
        adapter = o[0].text_input("LoRA adapter folder", "", key="ev_adapter")
        padding = o[1].selectbox("Audio padding", ["trimmed", "padded"], help="trimmed = same logits, far less work")
        mode = o[2].selectbox(
            "Mode",
            ["logits", "generate"],
            help="generate = free-running generate() with one answer token, as the original research scored; logits = one forward pass (what training optimises)",
        )
        four_bit = o[3].checkbox("4-bit NF4 base (CUDA)", help="bitsandbytes; refused with a message without CUDA")
        compiled = st.checkbox("torch.compile layers (Qwen2-Audio)", help="GPU throughput; the first batches compile")
        o = st.columns([4, 1, 1])
        prompt = o[0].text_area(
            "Prompt (empty = the adapter's training prompt, else the default question; A = speech, B = non-speech)",
            "",
            key="ev_prompt",
            help="The clip comes first, or where the prompt writes <audio>. Text before the clip is computed once "
            "per batch, so a question asked before it is far cheaper on short clips. Score with the layout "
            "the model was trained with.",
        )
        answer_speech = o[1].text_input(
            "Answer: speech", "", placeholder="A", key="ev_ans_speech", help="blank: a run's own answer, else A"
        )
        answer_nonspeech = o[2].text_input(
            "Answer: non-speech", "", placeholder="B", key="ev_ans_nonspeech", help="blank: a run's own answer, else B"
        )
    with st.expander("Classifier and CLAP options"):
        o = st.columns([3, 1])
        speech_labels = o[0].text_input(
            "audio-classifier: labels that mean speech (comma-separated; empty = labels whose names say speech)",
            "",
            key="ev_speech_labels",
        )
        head = o[1].selectbox(
            "Head", ["auto", "softmax", "sigmoid"], key="ev_head", help=REGISTRY["audio-classifier"].how
        )
        o = st.columns(2)
        speech_prompts = o[0].text_area("clap: texts for speech (one per line)", "\n".join(SPEECH_PROMPTS), key="ev_sp")
        nonspeech_prompts = o[1].text_area(
            "clap: texts for non-speech (one per line)", "\n".join(NONSPEECH_PROMPTS), key="ev_nsp"
        )
    exclude_tags = st.multiselect(
        "Leave out clips tagged (Errors page)", sorted(set(annotations.load(ds)["tag"])), key="ev_exclude"
    )
    labels = st.radio(
        "Labels", ["original", "corrected"], horizontal=True, key="ev_labels",
        help="corrected = with the relabels made on the Label issues page applied "
        f"({relabels.relabelled_count(ds)} now); the table records which.",
    )  # fmt: skip
    start = st.form_submit_button("Start scoring", type="primary")

if start:
    args = ["evaluate", "--dataset", ds.name, "--split", split, "--part", part, "--detector", detector]
    args += ["--batch-size", str(int(batch)), "--dtype", dtype]
    args += [f"--exclude-tags={tag}" for tag in exclude_tags]  # one argv item each: a tag may start with '-'
    args += ["--labels", labels]
    if executor is None:
        st.error("The Ray cluster above cannot be used (see its message); empty the field to score here.")
        st.stop()
    args += ["--gpus", str(int(replicas))]
    args += ["--executor", "ray", f"--address={executor.address}"] if executor.ray else []
    args += [f"--model={model.strip()}"] if model.strip() else []  # one argv item, never a shell
    if detector in LLM_DETECTORS:
        args += ["--padding", padding, "--mode", mode] + ([f"--adapter={adapter}"] if adapter else [])
        args += (["--load-in-4bit"] if four_bit else []) + (["--compile"] if compiled else [])
        args += [f"--prompt={prompt}"] if prompt.strip() else []
        args += [f"--answer-speech={answer_speech}"] if answer_speech.strip() else []
        args += [f"--answer-nonspeech={answer_nonspeech}"] if answer_nonspeech.strip() else []
    if detector == "audio-classifier":
        args += [f"--speech-labels={x.strip()}" for x in speech_labels.split(",") if x.strip()] + [f"--head={head}"]
    if detector == "clap":
        args += [f"--speech-prompt={x.strip()}" for x in speech_prompts.splitlines() if x.strip()]
        args += [f"--nonspeech-prompt={x.strip()}" for x in nonspeech_prompts.splitlines() if x.strip()]
    try:  # refused now, not by a job that fails after starting
        if detector in LLM_DETECTORS:
            check_prompt(prompt)
        if not REGISTRY[detector].offline:
            check_checkpoint(
                detector, page_path(model.strip() or ("" if detector != "audio-llm" else DEFAULT_MODEL), "model")
            )
        if adapter and detector in LLM_DETECTORS:
            require_adapter(page_path(adapter, "adapter"))
    except LabError as exc:
        st.error(str(exc))
        st.stop()
    if detector in LLM_DETECTORS and registry.scoring_prompt(adapter, prompt if prompt.strip() else "")[1]:
        st.warning("Scoring with another prompt than the adapter was trained with (empty = its own).")
    job_id = jobs.launch("evaluate", args, label=f"{detector} on {ds.name}/{split}/{part}")
    st.session_state["last_eval_job"] = job_id
    st.toast(f"scoring {ds.name}/{split}/{part} with {detector}")


@st.fragment(run_every=1.0)
def job_panel() -> None:
    jobs_panel("evaluate", "ev", title="Scoring jobs")


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
if str(meta.get("detector", "")) == "lab-base":  # where its accuracy is read, its limits are said
    st.caption(LAB_BASE_LIMITS)
if note := window_note(meta):
    st.warning(note)
by = table.assign(correct=correct(table["label"], table["logit"]))
c1, c2 = st.columns(2)
c1.dataframe(by.groupby("label")["correct"].agg(["mean", "size"]).rename(columns={"mean": "accuracy"}))
grid = by.assign(SNR=snr_labels(by["snr_db"])).pivot_table(
    index="duration_ms", columns="SNR", values="correct", observed=True
)
grid.columns = pd.Index([str(c) for c in grid.columns], name="SNR")  # ordered -5 dB … 20 dB, clean
c2.dataframe(grid.rename_axis(index="duration (ms)"), width="stretch")
c2.caption("Accuracy per duration (rows) and SNR (columns); clean = no noise added.")
st.dataframe(table.head(500), hide_index=True, width="stretch")
