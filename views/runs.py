"""Runs: launch LoRA/QLoRA fine-tuning runs and sweeps, watch them live, cancel, resume, compare."""

import pandas as pd
import plotly.express as px
import streamlit as st

from core.data import annotations, relabels
from core.data.audit import split_status
from core.errors import LabError
from core.runs import registry, sweeps
from core.runs.commands import run_line, sweep_line
from core.runs.train_config import TrainConfig
from ui.access import page_path
from ui.augment_fields import augment_fields
from ui.cv_view import cv_form, cv_view
from ui.executor_field import executor_field
from ui.gates_form import gates_table
from ui.job_status import duration, refresh_when_done
from ui.run_compare import side_by_side, sweep_parallel
from ui.state import pick_dataset_with_splits, remember_fields
from ui.table_export import export_buttons

st.title("Runs")
remember_fields(("run_", "sw_"))  # the form keeps its values while you visit other pages
ds, splits = pick_dataset_with_splits("Make and audit a split on the Split & leakage audit page first.")
executor = executor_field("runs_ray")

runs_tab, cv_tab = st.tabs(["Runs & sweeps", "Cross-validate"])

with cv_tab:
    st.caption(
        "Does the model work for speakers and sources it has never heard? Every group is held out once; each fold is "
        "an ordinary run; one out-of-fold table scores every clip once."
    )
    cv_form(ds, TrainConfig(dataset=ds.name, split=splits[0]), executor)
    cv_view()

with runs_tab:
    with st.form("run_form", enter_to_submit=False):  # Enter in a number field once launched runs
        st.subheader("New run")
        c = st.columns(4)
        split = c[0].selectbox(
            "Split", splits, key="run_split", format_func=lambda name: f"{name} ({split_status(ds, name)})"
        )
        targets = c[1].selectbox("LoRA targets", ["attention+mlp", "attention"], key="run_targets")
        rank = c[2].number_input("Rank r", 1, 256, 16, key="run_r")
        alpha = c[3].number_input("Alpha", 1, 512, 32, key="run_alpha")
        c = st.columns(4)
        lr = c[0].number_input("Learning rate", 1e-6, 1.0, 1e-3, format="%.5f", key="run_lr")
        schedule = c[1].selectbox("Schedule", ["cosine", "linear", "constant"], key="run_schedule")
        warmup = c[2].number_input("Warm-up fraction", 0.0, 0.5, 0.05, key="run_warmup")
        dropout = c[3].number_input("LoRA dropout", 0.0, 0.9, 0.05, key="run_dropout")
        c = st.columns(4)
        epochs = c[0].number_input("Epochs", 1, 100, 5, key="run_epochs")
        batch = c[1].number_input("Batch size", 1, 512, 16, key="run_batch")
        accum = c[2].number_input("Gradient accumulation", 1, 64, 1, key="run_accum")
        seed = c[3].number_input("Seed", 0, 2**31 - 1, 0, key="run_seed")
        c = st.columns(4)
        balanced = c[0].checkbox("Class-balanced sampling", True, key="run_balanced")
        spec_aug = c[1].checkbox("SpecAugment", False, key="run_specaug")
        encoder = c[2].checkbox("LoRA on the audio encoder too", True, key="run_encoder")
        qlora = c[3].checkbox("QLoRA (4-bit base, CUDA)", False, key="run_qlora")
        augmentation = augment_fields()
        c = st.columns([4, 1, 1])
        prompt = c[0].text_area(
            "Prompt (empty = the default question)",
            "",
            key="run_prompt",
            help="The clip comes first, or where the prompt writes <audio>. The run's tables are scored with the "
            "same prompt, and so should anything else that uses its adapter.",
        )
        answer_speech = c[1].text_input(
            "Answer: speech", "A", key="run_ans_speech", help="what the run learns to answer"
        )
        answer_nonspeech = c[2].text_input("Answer: non-speech", "B", key="run_ans_nonspeech")
        c = st.columns(4)
        noise_dir = c[0].text_input(
            "Noise for augmentation",
            "",
            key="run_noise",
            placeholder="a folder, or dataset:NAME",
            help="A folder of noise recordings, or dataset:NAME for an imported dataset's non-speech clips "
            "(e.g. an imported MUSAN; its music with vocals is left out).",
        )
        base_model = c[1].text_input(
            "Base model (empty = lab base model)",
            "",
            key="run_base",
            help="A checkpoint folder of Qwen2-Audio, Qwen2.5-Omni (thinker) or Audio Flamingo 3; LoRA targets are "
            "resolved to each family's own module names.",
        )
        max_train = c[2].number_input("Cap train clips (0 = all)", 0, 10**7, 0, key="run_max_train")
        checkpointing = c[3].checkbox(
            "Recompute activations",
            False,
            key="run_checkpointing",
            help="Gradient checkpointing: less GPU memory for a slower step. QLoRA always does it.",
        )
        exclude_tags = st.multiselect(
            "Leave out clips tagged (Errors page)",
            sorted(set(annotations.load(ds)["tag"])),
            key="run_exclude",
            help="The excluded clip ids are written to the run's excluded.json.",
        )
        labels = st.radio(
            "Labels", ["original", "corrected"], horizontal=True, key="run_labels",
            help="corrected = the manifest's labels with the relabels made on the Label issues page applied "
            f"({relabels.relabelled_count(ds)} now); the run's config records which, and a fingerprint.",
        )  # fmt: skip
        allow_leaky = st.checkbox(
            "Override: train even if the split is leaky or not audited",
            False,
            key="run_override",
            help="Recorded in the run's config and shown wherever the run appears.",
        )
        st.caption("Sweep: comma-separated values make a grid (× seeds); leave empty for a single run.")
        c = st.columns(5)
        grid_targets = c[0].text_input("Sweep targets", "", key="sw_targets", placeholder="attention,attention+mlp")
        grid_r = c[1].text_input("Sweep ranks", "", key="sw_r", placeholder="8,16")
        grid_alpha = c[2].text_input("Sweep alphas", "", key="sw_alpha", placeholder="16,32")
        seeds = c[3].text_input("Seeds", "0", key="sw_seeds")
        parallel = c[4].number_input(
            "Runs at once", 0, 64, 0, key="sw_parallel", help="0 = one per GPU (one at a time without CUDA)"
        )
        submitted = st.form_submit_button("Launch", type="primary")

    if submitted:
        cfg = TrainConfig(
            dataset=ds.name,
            split=split,
            targets=targets,
            lora_r=int(rank),
            lora_alpha=int(alpha),
            lora_dropout=float(dropout),
            lr=float(lr),
            schedule=schedule,
            warmup_ratio=float(warmup),
            epochs=int(epochs),
            batch_size=int(batch),
            grad_accum=int(accum),
            seed=int(seed),
            class_balanced=balanced,
            spec_augment=spec_aug,
            **augmentation,
            lora_audio_encoder=encoder,
            qlora=qlora,
            gradient_checkpointing=checkpointing,
            noise_dir=noise_dir,
            base_model=base_model,
            prompt=prompt if prompt.strip() else "",
            answer_speech=answer_speech.strip(),
            answer_nonspeech=answer_nonspeech.strip(),
            max_train_clips=int(max_train),
            exclude_tags=",".join(exclude_tags),
            labels=labels,
            allow_leaky=allow_leaky,
        )
        try:
            grid = {
                k: [t(v.strip()) for v in raw.split(",") if v.strip()]
                for k, raw, t in (
                    ("targets", grid_targets, str),
                    ("lora_r", grid_r, int),
                    ("lora_alpha", grid_alpha, int),
                )
                if raw.strip()
            }
            seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError as exc:  # e.g. "8,x" in the ranks
            st.error(f"sweep ranks, alphas and seeds are comma-separated whole numbers: {exc}")
            st.stop()
        try:
            if executor is None:
                raise LabError("the Ray cluster above cannot be used (see its message); empty it to run here")
            if not noise_dir.startswith("dataset:"):
                page_path(noise_dir, "noise folder")
            page_path(base_model, "base model")
            if grid or len(seed_list) > 1:
                sweep_id = sweeps.create_sweep(cfg, grid, seed_list, parallel=int(parallel), executor=executor)
                st.toast(f"sweep {sweep_id} queued: its results are below")
                st.code(sweep_line(cfg, grid, seed_list, int(parallel)), language="bash")
            else:
                run_id = registry.create_run(cfg, executor=executor)
                registry.launch(run_id)
                st.session_state["run_pick"] = run_id  # show the new run below
                st.toast(f"run {run_id} started: its progress is below")
        except LabError as exc:
            st.error(str(exc))

    @st.fragment(run_every=2.0)
    def runs_panel() -> None:
        table = registry.list_runs()
        live = table.loc[table["state"].isin(["queued", "running"]), "run"] if not table.empty else []
        refresh_when_done("runs_active", set(live))  # a finished run's metrics reach side by side at once
        if table.empty:
            st.info("No runs yet: set one up above and press Launch (the defaults train in a few minutes on CPU).")
            return
        st.subheader("Runs")
        metric_cols = {
            "test_accuracy": "test acc",
            "test_balanced_accuracy": "test bal. acc",
            "test_ece": "test ECE",
            "test_short_noisy_bacc": "short+noisy bal. acc",
        }
        shown = table[["run", "sweep", "state", "progress", "targets", "r", "alpha", "lr", "seed", *metric_cols]]
        config = {k: st.column_config.NumberColumn(v, format="%.3f", width="small") for k, v in metric_cols.items()}
        config["progress"] = st.column_config.ProgressColumn("progress", min_value=0, max_value=1, width="small")
        config["lr"] = st.column_config.NumberColumn("lr", format="%.0e", width="small")
        st.dataframe(shown, hide_index=True, width="stretch", column_config=config)
        ids = table["run"].tolist()
        if st.session_state.get("run_pick") not in ids:  # the newest run that finished, not a cancelled one
            finished = table.loc[table["state"] == "finished", "run"].tolist()
            st.session_state["run_pick"] = finished[0] if finished else ids[0]
        run_id = st.selectbox("Run", ids, key="run_pick")
        s = registry.status(run_id)
        cfg = registry.config(run_id)
        if cfg["provenance"].get("leaky_override"):
            st.warning("This run trained on a split the audit marked LEAKY (explicit override).")
        phase = s.get("phase", "")
        text = (
            f"{s['state']}" + (f" · {phase}" if phase and s["state"] == "running" else "") + f": {s.get('message', '')}"
        )
        if s["state"] == "running" and phase == "training" and s.get("eta_s"):
            text += f" · training ends in about {duration(s['eta_s'])}, then dev and test are scored"
        st.progress(min(1.0, float(s.get("progress", 0.0))), text=text)
        if s["state"] == "running" and phase == "final scoring":
            st.progress(min(1.0, float(s.get("phase_progress", 0.0))), text="final scoring of dev and test")
        st.caption(f"Ran on: {table.set_index('run').at[run_id, 'ran_on']}")
        c = st.columns(3)
        if s["state"] in ("running", "queued") and c[0].button("Cancel", key=f"cancel_{run_id}"):
            registry.cancel(run_id)
        if s["state"] in ("failed", "cancelled") and c[1].button("Resume", key=f"resume_{run_id}"):
            registry.launch(run_id, resume=True)
        with st.expander("command line"):
            st.code(run_line(cfg), language="bash")
        log = registry.metrics_log(run_id)
        if not log.empty:
            train = log[log["type"] == "train"]
            dev = log[log["type"] == "dev"]
            left, right = st.columns(2)
            if len(train):
                smooth = train.assign(loss_avg=train["loss"].rolling(10, min_periods=1).mean())
                left.plotly_chart(
                    px.line(
                        smooth, x="micro_batch", y=["loss", "loss_avg"], title="training loss", height=300,
                        markers=len(train) < 30,
                    ),
                    width="stretch",
                )  # fmt: skip
            if len(dev):
                cols = [
                    c for c in ("balanced_accuracy", "accuracy", "ece", "short_noisy_balanced_accuracy") if c in dev
                ]
                right.plotly_chart(
                    px.line(
                        dev,
                        x="epoch",
                        y=cols,
                        markers=True,
                        title="dev metrics",
                        height=300,
                        range_y=[0, 1.02],
                        labels={"value": "dev metric", "variable": "metric"},
                    ),
                    width="stretch",
                )
        res = registry.result(run_id)
        if res:
            st.markdown("**Final metrics**")
            st.dataframe(pd.DataFrame({p: res[p] for p in ("dev", "test")}).T, width="stretch")
        with st.expander("Log tail"):
            path = registry.runs_dir() / run_id / "log.txt"
            st.code("\n".join(path.read_text(errors="replace").splitlines()[-30:]) if path.exists() else "(no log yet)")

    runs_panel()
    with st.expander("Study gates of this split (write them on the Study report page)"):
        gates_table(ds.name, st.session_state.get("run_split") or splits[0], "runs_gates")
    side_by_side()

    sweep_ids = sweeps.list_sweeps()
    if sweep_ids:
        st.subheader("Sweep results")
        sweep_id = st.selectbox("Sweep", sweep_ids, key="sweep_pick")
        sw = sweeps.sweep_status(sweep_id)
        message = sw.get("message", "")
        st.caption(message if message.startswith(sw["state"]) else f"{sw['state']}: {message}")
        if sw["state"] in ("queued", "running") and st.button("Cancel sweep", key="cancel_sweep"):
            sweeps.cancel_sweep(sweep_id)
        if sw["state"] in ("failed", "cancelled") and st.button("Resume sweep", key="resume_sweep"):
            sweeps.resume_sweep(sweep_id)
            st.toast(f"sweep {sweep_id} resumed")
        matrix, per_seed = sweeps.results_matrix(sweep_id)
        if matrix.empty:
            st.info("No finished runs in this sweep yet.")
        else:
            st.dataframe(matrix, hide_index=True, width="stretch")
            export_buttons(matrix, f"sweep-{sweep_id}", f"Sweep {sweep_id}: mean and spread over seeds", "sweep_x")
            with st.expander("Per-seed values"):
                st.dataframe(per_seed, hide_index=True, width="stretch")
            sweep_parallel(sweep_id)
