"""GPU check of what CPU CI cannot run: 4-bit NF4 scoring, QLoRA, data-parallel fine-tuning.

On a CUDA machine with bitsandbytes, with LAB_DATA_DIR holding a dataset and an audited split
(run it through the device tool; README → Performance has the figures):
  python3 benchmarks/gpu_training.py --dataset mini --split mini
Prints, for the lab base model:
  - its test split scored with a bf16 and a 4-bit NF4 base: clips/s, the largest log-odds
    difference, how many decisions agree, accuracy; and 4-bit `generate` mode against 4-bit logits;
  - one LoRA run on a bf16 base and one QLoRA run (4-bit base): wall time, test metrics, and
    the size of the trained adapters (audio tower and LLM apart: both must have moved);
  - with 2 or more GPUs, the LoRA and QLoRA runs again data-parallel (`accelerate launch
    --multi_gpu`): wall time, the largest per-batch loss difference from the one-GPU run, test metrics; and
    a sweep of 2 x GPUs runs, one per GPU at a time: wall time against one run alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data.datasets import load_dataset  # noqa: E402
from core.data.splits import select_clips  # noqa: E402
from core.decision import correct  # noqa: E402
from core.detectors import make_detector  # noqa: E402
from core.runs import registry, sweeps  # noqa: E402
from core.runs.train_config import TrainConfig  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def timed_score(detector, audio: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """Log-odds of `audio` and clips/s, after a warm-up pass over the same clips (every batch shape)."""
    detector.score(audio, 16000)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    logits = detector.score(audio, 16000)
    torch.cuda.synchronize()
    return logits[:, 0] - logits[:, 1], len(audio) / (time.perf_counter() - t0)


def train(cfg: TrainConfig, launcher: list[str]) -> tuple[str, float]:
    """Register a run, train it in a fresh process (`launcher` + `-m core train`); (run id, seconds)."""
    run_id = registry.create_run(cfg)
    t0 = time.perf_counter()
    cmd = [*launcher, "-m", "core", "train", "--run-dir", str(registry.runs_dir() / run_id)]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    return run_id, time.perf_counter() - t0


def losses(run_id: str) -> np.ndarray:
    lines = (registry.runs_dir() / run_id / "metrics.jsonl").read_text().splitlines()
    return np.array([json.loads(x)["loss"] for x in lines if '"train"' in x])


def test_metrics(run_id: str) -> str:
    t = json.loads((registry.runs_dir() / run_id / "result.json").read_text())["test"]
    return ", ".join(f"{k} {t[k]:.4f}" for k in ("accuracy", "balanced_accuracy", "roc_auc", "nll"))


def adapter_moved(run_id: str) -> str:
    """Size of the trained lora_B matrices (zero at the start), audio tower and LLM apart.

    Non-zero in the audio tower shows its adapters got gradients, which checkpointed (QLoRA)
    training can silently lose: the tower's input is frozen conv features.
    """
    from safetensors.torch import load_file

    weights = load_file(registry.runs_dir() / run_id / "adapter" / "adapter_model.safetensors")
    norm = {part: 0.0 for part in ("audio tower", "LLM")}
    for name, w in weights.items():
        if "lora_B" in name:
            norm["audio tower" if "audio_tower" in name else "LLM"] += float(w.float().pow(2).sum())
    return ", ".join(f"{part} {v**0.5:.3g}" for part, v in norm.items())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="default")
    ap.add_argument("--split", default="default")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    gpus = torch.cuda.device_count()
    print(f"device: {torch.cuda.get_device_name()} x {gpus}")

    ds = load_dataset(args.dataset)
    test = select_clips(ds, args.split, "test")
    audio = [ds.load_clip(c).samples for c in test["clip_id"]]
    labels = test["label"].to_numpy()
    bf16, rate16 = timed_score(make_detector("lab-base", batch_size=64), audio)
    nf4_detector = make_detector("lab-base", batch_size=64, load_in_4bit=True)
    nf4, rate4 = timed_score(nf4_detector, audio)
    print(f"lab base model on {len(audio)} test clips, bf16 base: {rate16:.0f} clips/s, 4-bit NF4 base: {rate4:.0f}")
    print(
        f"  4-bit vs bf16: max |delta log-odds| {np.abs(nf4 - bf16).max():.3f} (|log-odds| up to "
        f"{np.abs(bf16).max():.1f}), same decision on {np.mean((nf4 > 0) == (bf16 > 0)):.1%} of clips; accuracy "
        f"{correct(labels, bf16).mean():.4f} bf16, {correct(labels, nf4).mean():.4f} 4-bit"
    )
    few = audio[:16]
    generated = make_detector("lab-base", load_in_4bit=True, mode="generate", padding="padded", batch_size=1)
    g = generated.score(few, 16000)
    print(
        f"  4-bit generate() vs 4-bit logits, {len(few)} clips: max |delta log-odds| {np.abs(g[:, 0] - g[:, 1] - nf4[:16]).max():.2e}"
    )

    cfg = TrainConfig(dataset=args.dataset, split=args.split, epochs=args.epochs, lora_dropout=0.0, seed=0)
    one, s_one = train(cfg, [sys.executable])
    print(f"LoRA, bf16 base, 1 GPU: {s_one:.0f} s ({len(losses(one))} batches); test {test_metrics(one)}")
    q, s_q = train(replace(cfg, qlora=True), [sys.executable])
    print(f"QLoRA, 4-bit NF4 base, 1 GPU: {s_q:.0f} s; test {test_metrics(q)}")
    print(f"  |lora_B| after training: LoRA {adapter_moved(one)}; QLoRA {adapter_moved(q)}")
    if gpus >= 2:
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(gpus)]
        launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        many, s_many = train(cfg, launch)
        d = np.abs(losses(many) - losses(one)).max()
        print(
            f"LoRA, bf16 base, data-parallel on {gpus} GPUs: {s_many:.0f} s; largest per-batch loss difference from "
            f"the 1-GPU run {d:.2e} (bf16); test {test_metrics(many)}"
        )
        qmany, s_qmany = train(replace(cfg, qlora=True), launch)
        print(
            f"QLoRA data-parallel on {gpus} GPUs (activations recomputed under DDP): {s_qmany:.0f} s; largest "
            f"per-batch loss difference from the 1-GPU QLoRA run {np.abs(losses(qmany) - losses(q)).max():.2e}; "
            f"test {test_metrics(qmany)}; |lora_B| {adapter_moved(qmany)}"
        )
        # a sweep puts one run on each GPU at a time
        t0 = time.perf_counter()
        sweep = sweeps.create_sweep(cfg, {"lora_r": [8, 16]}, list(range(gpus)))
        while sweeps.sweep_status(sweep)["state"] not in ("finished", "cancelled", "failed"):
            time.sleep(1)
        members = sweeps.sweep_status(sweep)["runs"]
        states = [registry.status(r)["state"] for r in members]
        print(
            f"sweep of {len(members)} runs (lora_r 8, 16 x {gpus} seeds), one per GPU at a time: "
            f"{time.perf_counter() - t0:.0f} s against {s_one:.0f} s for one run alone; states {states}"
        )


if __name__ == "__main__":
    main()
