"""LoRA fine-tuning: answer-only loss, determinism, improvement, cancel / kill / resume, sweeps, the page."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.data.audit import audit_split
from core.data.splits import make_split, save_split, select_clips
from core.detectors import lab_model, make_detector
from core.detectors.llm.prompt import DEFAULT_PROMPT, QUESTION_FIRST_PROMPT
from core.detectors.llm.qwen2_audio import QWEN2_AUDIO, answer_loss, prepare
from core.errors import LabError, SplitError
from core.runs import registry, sweeps
from core.runs.train_eval import dev_metrics
from core.runs.train_loop import shard
from core.runs.train_setup import enable_checkpointing
from core.runs.training import TrainConfig, train_run
from core.scoring import predictions
from tests.conftest import REPO, wait_for

TINY = dict(max_train_clips=48, max_dev_clips=48, epochs=1, batch_size=16)


@pytest.fixture(scope="module")
def clean_split(default_ds):
    save_split(default_ds, "train-clean", make_split(default_ds.manifest, seed=0), {"seed": 0})
    audit_split(default_ds, "train-clean", content=False)
    return "train-clean"


def _wait(run_id, states=("finished", "failed", "cancelled"), timeout=600):
    return wait_for(registry.status, run_id, states, timeout)


def test_loss_reads_only_the_answer_token():
    processor = lab_model.build_processor()
    model = lab_model.build_model(processor, seed=1)
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (4000, 9000, 16000)]
    batch = prepare(processor, clips, DEFAULT_PROMPT, padded=False, answers=["A", "B", "A"])
    ids = batch["input_ids"]
    answer = torch.arange(ids.shape[1])[None, :] == (batch["attention_mask"].sum(-1) - 1)[:, None]

    def loss_and_grads(labels):
        model.zero_grad()
        loss = answer_loss(model, batch, labels, answer)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    ref_loss, ref_grads = loss_and_grads(ids)
    scrambled = ids.clone()
    scrambled[~answer] = torch.randint(0, len(processor.tokenizer), (int((~answer).sum()),))
    loss, grads = loss_and_grads(scrambled)
    assert torch.equal(loss, ref_loss)
    assert all(torch.equal(a, b) for a, b in zip(grads, ref_grads))
    flipped = ids.clone()
    flipped[answer] = torch.where(flipped[answer] == ids[answer][0], ids[answer][1], ids[answer][0])
    assert not torch.equal(loss_and_grads(flipped)[0], ref_loss)


def test_gradient_checkpointing_keeps_every_adapter_gradient():
    """Recomputing activations changes no gradient, the audio tower's included: its input is frozen
    conv features, on which reentrant checkpointing would give its adapters no gradient at all."""
    from peft import LoraConfig, get_peft_model

    processor = lab_model.build_processor()
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (4000, 16000)]
    batch = prepare(processor, clips, DEFAULT_PROMPT, padded=False, answers=["A", "B"])
    ids = batch["input_ids"]
    answer = torch.arange(ids.shape[1])[None, :] == (batch["attention_mask"].sum(-1) - 1)[:, None]

    def grads(checkpointing: bool) -> dict:
        model = lab_model.build_model(processor, seed=1)
        if checkpointing:
            enable_checkpointing(model)
            assert all(layer.gradient_checkpointing for layer in model.model.audio_tower.layers)
        torch.manual_seed(0)  # random A and B: every adapter matrix gets a gradient
        lora = LoraConfig(
            r=4,
            lora_alpha=8,
            lora_dropout=0.0,
            init_lora_weights=False,
            target_modules=QWEN2_AUDIO.lora_targets("attention+mlp", True),
        )
        model = get_peft_model(model, lora)
        model.train()
        answer_loss(model, batch, ids, answer).backward()
        return {n: p.grad for n, p in model.named_parameters() if p.requires_grad}

    plain, recomputed = grads(False), grads(True)
    assert plain.keys() == recomputed.keys()
    assert sum("audio_tower" in n for n in plain) == 24  # q, k, v, out, fc1, fc2 × A, B × 2 layers
    for name, g in plain.items():
        assert recomputed[name] is not None, name
        assert g.abs().sum() > 0, name
        torch.testing.assert_close(recomputed[name], g, rtol=1e-5, atol=1e-7, msg=name)


def test_spec_augment_masks_only_valid_frames():
    from core.runs.train_data import spec_augment

    feats = torch.ones(2, 128, 60)
    spec_augment(feats, torch.tensor([40, 60]), np.random.default_rng(1))
    assert (feats[0, :, 40:] == 1).all()  # padding untouched
    assert torch.isfinite(feats).all()


def test_noise_augmented_specaugment_run(default_ds, clean_split, tmp_path):
    import soundfile as sf

    rng = np.random.default_rng(0)
    for i in range(2):
        sf.write(tmp_path / f"noise{i}.wav", 0.1 * rng.standard_normal(16000), 16000)
    cfg = TrainConfig(split=clean_split, noise_dir=str(tmp_path), noise_prob=1.0, spec_augment=True, **TINY)
    a = train_run(registry.runs_dir() / registry.create_run(cfg))
    b = train_run(registry.runs_dir() / registry.create_run(replace(cfg, noise_dir="", spec_augment=False)))
    assert np.isfinite(a["test"]["accuracy"]) and a["test"] != b["test"]


def test_same_seed_same_metrics(default_ds, clean_split):
    cfg = TrainConfig(split=clean_split, seed=3, **TINY)
    a, b = (train_run(registry.runs_dir() / registry.create_run(cfg)) for _ in range(2))
    assert a["test"] == b["test"] and a["dev"] == b["dev"]
    c = train_run(registry.runs_dir() / registry.create_run(replace(cfg, seed=4)))
    assert c["test"] != a["test"]


def test_fine_tuning_fixes_short_noisy_clips(default_ds, clean_split):
    dev = select_clips(default_ds, clean_split, "dev")
    short_noisy = (dev["duration_ms"] <= 400).to_numpy() & dev["snr_db"].notna().to_numpy()
    base = make_detector("lab-base", batch_size=32).score(
        [default_ds.load_clip(c).samples for c in dev["clip_id"]], 16000
    )
    base_bacc = dev_metrics(dev["label"].to_numpy(), base, short_noisy)["short_noisy_balanced_accuracy"]
    t0 = time.time()
    run_id = registry.create_run(TrainConfig(split=clean_split))  # default settings, full train split
    result = train_run(registry.runs_dir() / run_id)
    tuned = result["dev"]["short_noisy_balanced_accuracy"]
    print(
        f"\ndev balanced accuracy on short noisy clips: base {base_bacc:.3f} -> fine-tuned {tuned:.3f} "
        f"({time.time() - t0:.0f} s of training and evaluation)"
    )
    assert tuned >= base_bacc + 0.15
    assert (registry.runs_dir() / run_id / "adapter" / "adapter_config.json").exists()
    assert len(json.loads((registry.runs_dir() / run_id / "status.json").read_text())) > 0
    # the run's test table carries the sidecar any evaluation does; its model and adapter reproduce it
    table, meta = predictions.load(predictions.resolve(f"run-{run_id}-test"))
    assert meta["clips_per_s"] > 0 and meta["n_clips"] == len(table) and meta["excluded_clips"] == []
    again = make_detector("audio-llm", model=meta["model_id"], adapter=meta["adapter"], batch_size=32)
    logits = again.score([default_ds.load_clip(c).samples for c in table["clip_id"]], 16000)
    np.testing.assert_allclose(logits, table[["logit_A", "logit_B"]].to_numpy(float), atol=1e-4)


def test_cancel_and_kill_then_resume(default_ds, clean_split):
    cfg = TrainConfig(
        split=clean_split, max_train_clips=320, max_dev_clips=48, epochs=2, batch_size=8, checkpoint_every=5, seed=5
    )
    reference = train_run(registry.runs_dir() / registry.create_run(cfg))

    cancelled = registry.create_run(cfg)
    registry.launch(cancelled)
    while registry.metrics_log(cancelled).empty:
        time.sleep(0.2)
    registry.cancel(cancelled)
    assert _wait(cancelled)["state"] == "cancelled"

    killed = registry.create_run(cfg)
    registry.launch(killed)
    while len(registry.metrics_log(killed)) < 12:  # mid-epoch, past a checkpoint
        time.sleep(0.1)
    pid = json.loads((registry.runs_dir() / killed / "pid.json").read_text())["pid"]
    os.killpg(pid, signal.SIGKILL)
    s = _wait(killed)
    assert s["state"] == "failed" and "without reporting" in s["message"]
    registry.launch(killed, resume=True)
    assert _wait(killed)["state"] == "finished"
    log = registry.metrics_log(killed)
    assert (log["type"] == "resume").sum() == 1
    train = log[log["type"] == "train"]
    assert train["micro_batch"].max() == 2 * 40 and set(train["micro_batch"]) == set(range(1, 81))
    # resuming is exact: the same result as the run that was never interrupted
    assert registry.result(killed)["test"] == pytest.approx(reference["test"], abs=1e-9)
    assert registry.list_runs().set_index("run").loc[killed, "state"] == "finished"


def test_leaky_split_needs_an_explicit_override(default_ds):
    split = make_split(default_ds.manifest, seed=9)
    g = default_ds.manifest["group_id"].iloc[0]
    first = np.flatnonzero((default_ds.manifest["group_id"] == g).to_numpy())[0]
    split.iloc[first] = "test" if split.iloc[first] != "test" else "train"
    save_split(default_ds, "leaky", split, {"seed": 9})
    audit_split(default_ds, "leaky", content=False)
    with pytest.raises(SplitError, match="leaky"):
        registry.create_run(TrainConfig(split="leaky", **TINY))
    run_id = registry.create_run(TrainConfig(split="leaky", allow_leaky=True, **TINY))
    assert registry.config(run_id)["provenance"]["leaky_override"] is True
    assert registry.list_runs().set_index("run").loc[run_id, "leaky_override"]
    prov = registry.config(run_id)["provenance"]
    assert len(prov["manifest_sha256"]) == 64 and prov["versions"]["torch"] and prov["git_commit"]


def test_settings_a_run_would_fail_on_are_refused_before_anything_is_registered(default_ds, clean_split, tmp_path):
    before = len(registry.list_runs())
    with pytest.raises(LabError, match="noise folder .* not found"):
        registry.create_run(TrainConfig(split=clean_split, noise_dir=str(tmp_path / "missing")))
    with pytest.raises(LabError, match="holds no .wav"):
        registry.create_run(TrainConfig(split=clean_split, noise_dir=str(tmp_path)))
    with pytest.raises(LabError, match="cannot be fetched here"):
        registry.create_run(TrainConfig(split=clean_split, base_model="someone/not-cached-audio-model"))
    with pytest.raises(LabError, match="one audio slot"):
        registry.create_run(TrainConfig(split=clean_split, prompt="<audio> then <audio>?"))
    # a sweep whose second grid point is invalid registers none of its runs
    with pytest.raises(LabError, match="targets must be"):
        sweeps.create_sweep(TrainConfig(split=clean_split), {"targets": ["attention", "mlp-only"]}, [0], False)
    assert len(registry.list_runs()) == before


def test_an_adapter_is_scored_with_the_prompt_it_was_trained_with(default_ds, clean_split):
    question_first = QUESTION_FIRST_PROMPT
    run_id = registry.create_run(TrainConfig(split=clean_split, prompt=question_first, seed=1, **TINY))
    train_run(registry.runs_dir() / run_id)
    adapter = registry.runs_dir() / run_id / "adapter"
    assert registry.trained_prompt(adapter) == question_first and registry.trained_prompt(default_ds.root) is None
    cmd = [sys.executable, "-m", "core", "evaluate", "--split", clean_split, "--part", "test", "--detector", "lab-base"]
    r = subprocess.run([*cmd, f"--adapter={adapter}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    table, meta = predictions.load(r.stdout.split("predictions: ")[-1].strip())
    assert set(table["prompt"]) == {question_first} and meta["prompt"] == question_first
    # the same logits as the run's own test table, which training scored with its prompt
    own = pd.read_csv(registry.runs_dir() / run_id / "predictions" / "test.csv")
    merged = table.merge(own, on="clip_id")
    assert len(merged) == len(own)
    np.testing.assert_allclose(merged["logit_x"], merged["logit_y"], atol=1e-4)
    r = subprocess.run(
        [*cmd, f"--adapter={adapter}", "--prompt=Speech? A or B."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0 and "another prompt than the adapter was trained with" in r.stderr


def test_shard_splits_a_batch_so_the_averaged_loss_is_the_batch_mean():
    rng = np.random.default_rng(0)
    for n in range(1, 12):
        losses = rng.random(n)
        for processes in range(1, 5):
            shares = [shard(n, processes, rank) for rank in range(processes)]
            used = np.concatenate([rows for rows, w in shares if w > 0])
            assert sorted(used) == list(range(n))  # every row once, none twice
            averaged = np.mean([w * losses[rows].mean() for rows, w in shares])  # what DDP's mean gives
            assert averaged == pytest.approx(losses.mean())


def test_data_parallel_run_matches_the_one_process_run(default_ds, clean_split):
    """2 data-parallel processes (torchrun on CPU, gloo; `accelerate launch` does the same on GPUs)
    reproduce the one-process run, with activations recomputed (QLoRA's memory recipe) under DDP."""
    cfg = TrainConfig(split=clean_split, lora_dropout=0.0, seed=2, **TINY)  # no dropout: same random draws
    one, two = registry.create_run(cfg), registry.create_run(replace(cfg, gradient_checkpointing=True))
    train_run(registry.runs_dir() / one)
    launch = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "core",
        "train",
        "--run-dir",
    ]
    r = subprocess.run([*launch, str(registry.runs_dir() / two)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]

    def records(run_id):
        lines = (registry.runs_dir() / run_id / "metrics.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines if '"train"' in line]

    a, b = records(one), records(two)
    assert [x["processes"] for x in b] == [2] * len(a)  # two processes, each batch logged once
    np.testing.assert_allclose([x["loss"] for x in b], [x["loss"] for x in a], rtol=1e-5)
    res_a, res_b = (json.loads((registry.runs_dir() / i / "result.json").read_text()) for i in (one, two))
    for key in ("accuracy", "balanced_accuracy", "roc_auc", "nll"):
        assert res_b["test"][key] == pytest.approx(res_a["test"][key], abs=1e-5)


def test_sweep_slots_one_gpu_each_or_a_share_of_the_cores():
    assert sweeps.sweep_slots(0, 4, 64) == [{"CUDA_VISIBLE_DEVICES": str(i)} for i in range(4)]
    assert sweeps.sweep_slots(2, 4, 64) == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]
    assert sweeps.sweep_slots(8, 2, 64) == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]
    assert sweeps.sweep_slots(0, 0, 2) == [{}]  # no CUDA: one run at a time unless asked
    assert sweeps.sweep_slots(2, 0, 2) == [{"OMP_NUM_THREADS": "1"}] * 2


def test_sweep_runs_grid_times_seeds_and_aggregates(default_ds, clean_split):
    sweep = sweeps.create_sweep(TrainConfig(split=clean_split, **TINY), {"lora_r": [4, 8]}, [0, 1], parallel=2)
    t0 = time.time()
    while sweeps.sweep_status(sweep)["state"] not in ("finished", "cancelled", "failed"):
        assert time.time() - t0 < 600
        time.sleep(0.5)
    # two at a time: each of the first two runs was launched before the other had finished. Their
    # process lifetimes (launch: pid.json; end: result.json), not their training steps, which for
    # these tiny runs last a fraction of a second and on 2 busy cores may fall one after the other
    spans = []
    for run_id in sweeps.sweep_status(sweep)["runs"][:2]:
        folder = registry.runs_dir() / run_id
        spans.append(((folder / "pid.json").stat().st_mtime, (folder / "result.json").stat().st_mtime))
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], spans
    matrix, per_seed = sweeps.results_matrix(sweep)
    assert list(matrix["lora_r"]) == [4, 8] and (matrix["seeds"] == 2).all()
    assert len(per_seed) == 4
    for r, sub in per_seed.groupby("lora_r"):
        row = matrix.set_index("lora_r").loc[r]
        assert row["accuracy_mean"] == pytest.approx(sub["accuracy"].mean())
        assert row["accuracy_std"] == pytest.approx(sub["accuracy"].std(ddof=1))


def test_a_sweep_whose_worker_was_killed_says_so_and_resumes(default_ds, clean_split):
    sweep = sweeps.create_sweep(TrainConfig(split=clean_split, **TINY), {"lora_r": [4]}, [0, 1], parallel=1)
    folder = sweeps.sweeps_dir() / sweep
    first, second = sweeps.sweep_status(sweep)["runs"]
    _wait(first, states=("running", "finished"))
    os.kill(json.loads((folder / "pid.json").read_text())["pid"], signal.SIGKILL)  # the worker only
    time.sleep(0.5)
    st = sweeps.sweep_status(sweep)
    assert st["state"] == "failed" and st["run_states"].get("queued") == 1, st
    assert f"python -m core sweep resume {sweep}" in st["message"] and "1 queued" in st["message"]
    _wait(first)  # the run it had started goes on by itself
    sweeps.resume_sweep(sweep)
    t0 = time.time()
    while sweeps.sweep_status(sweep)["state"] not in ("finished", "cancelled", "failed"):
        assert time.time() - t0 < 600
        time.sleep(0.5)
    st = sweeps.sweep_status(sweep)
    assert st["state"] == "finished" and st["run_states"] == {"finished": 2}, st
    assert registry.status(second)["state"] == "finished"
    with pytest.raises(LabError, match="has finished; nothing to resume"):
        sweeps.resume_sweep(sweep)


def test_a_run_learns_its_prompts_own_answers_and_is_scored_with_them(default_ds, clean_split, capsys):
    from core.cli import main
    from core.detectors.llm import answer_mask as answer_positions

    processor = lab_model.build_processor()
    tok = processor.tokenizer
    batch = prepare(
        processor, [np.full(4000, 0.1, np.float32)] * 2, DEFAULT_PROMPT, padded=False, answers=["Yes", "No"]
    )
    n = [len(tok.encode(a, add_special_tokens=False)) for a in ("Yes", "No")]
    mask = answer_positions(batch["attention_mask"], n)
    for row, answer in enumerate(("Yes", "No")):  # the mask covers exactly the answer's tokens
        assert tok.decode(batch["input_ids"][row][mask[row]]) == answer
    with pytest.raises(LabError, match="answers must differ"):
        registry.create_run(TrainConfig(split=clean_split, answer_speech="Yes", answer_nonspeech="Yes"))
    run_id = registry.create_run(TrainConfig(split=clean_split, answer_speech="Yes", answer_nonspeech="No", **TINY))
    train_run(registry.runs_dir() / run_id)
    adapter = registry.runs_dir() / run_id / "adapter"
    assert registry.trained_answers(adapter) == ("Yes", "No") and registry.trained_answers(default_ds.root) is None
    args = ["evaluate", "--split", clean_split, "--part", "dev", "--detector", "lab-base", "--adapter", str(adapter)]
    assert main(args) == 0
    path = capsys.readouterr().out.split("predictions: ")[-1].strip()
    _, meta = predictions.load(path)
    assert tuple(meta["answers"]) == ("Yes", "No")  # scored with what training taught, not A/B
    # the run as a detector (Try a clip): the numbers of the run's own test table, answers and all
    table, _ = predictions.load(predictions.resolve(f"run-{run_id}-test"))
    clips = table.head(6)
    mine = registry.run_detector(run_id).score([default_ds.load_clip(c).samples for c in clips["clip_id"]], 16000)
    np.testing.assert_allclose(mine, clips[["logit_A", "logit_B"]].to_numpy(float), atol=1e-4)
    assert f"run:{run_id}" in [f"run:{r}" for r in registry.finished_runs()]
    with pytest.raises(LabError, match="has not finished"):
        registry.run_detector("no-such-run")


def test_runs_page_launches_and_shows_a_run(default_ds, clean_split):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("views/runs.py").run()
    assert not at.exception
    before = len(registry.list_runs())
    at.text_input(key="sw_seeds").input("0,x")  # a typo in the sweep's seeds: a message, nothing launched
    at.button[0].click().run()
    assert not at.exception and any("whole numbers" in e.value for e in at.error)
    assert len(registry.list_runs()) == before
    at.text_input(key="sw_seeds").input("0")
    at.selectbox(key="run_split").set_value(clean_split)
    at.number_input(key="run_epochs").set_value(1)
    at.number_input(key="run_max_train").set_value(48)
    before = set(registry.list_runs()["run"]) if len(registry.list_runs()) else set()
    at.button[0].click().run()
    assert not at.exception
    assert any("started" in t.value for t in at.toast), [e.value for e in at.error]
    new = [r for r in registry.list_runs()["run"] if r not in before]
    assert len(new) == 1
    assert at.selectbox(key="run_pick").value == new[0]
    assert len(at.get("progress")) >= 1  # the run's progress bar (with ETA once it runs)
    assert _wait(new[0])["state"] == "finished"
    at.run()
    assert not at.exception
    assert at.selectbox(key="run_pick").value == new[0]
    assert any("Final metrics" in m.value for m in at.markdown), [m.value for m in at.markdown]
    # the command that reproduces the run from a terminal: it parses back to the same settings
    line = next(c.value for c in at.code if c.value.startswith("python -m core runs new"))
    import shlex

    from core.cli import build_parser
    from core.cli.runs import _train_config

    cfg = _train_config(build_parser().parse_args(shlex.split(line)[3:]))
    saved = registry.config(new[0])
    for key in ("dataset", "split", "epochs", "max_train_clips", "lora_r", "class_balanced", "lr"):
        assert getattr(cfg, key) == saved[key], key
