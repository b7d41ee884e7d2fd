"""GPU benchmark of scaling out and of the baselines: what the lab does with several GPUs and how fast
one GPU is against what a careful transformers user would write. Run through the device tool:

  python3 benchmarks/gpu_scale.py prepare --out /tmp/scale --clips 8192   # 7B random weights saved, a dataset
  python3 benchmarks/gpu_scale.py shard --out /tmp/scale                  # evaluate --gpus 1 vs --gpus N
  python3 benchmarks/gpu_scale.py sweep --out /tmp/scale                  # 2×N runs on N GPUs, local executor
  python3 benchmarks/gpu_scale.py dp --out /tmp/scale                     # 7B LoRA: 1 GPU vs N data-parallel
  python3 benchmarks/gpu_scale.py baselines --out /tmp/scale [--compile]  # seed, batched-padded, lab; FP8
  python3 benchmarks/gpu_scale.py fp8 --out /tmp/scale                    # bf16 vs FP8 (torchao) vs fp32

Every figure is printed with what it was measured on. The model is Qwen2-Audio-7B's architecture
with random bf16 weights (no download); the clips are tones with vibrato and noise, 0.2–1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


CUDA = torch.cuda.is_available()
DTYPE = "bf16" if CUDA else "fp32"  # without CUDA (--tiny): a check of the script on this machine
DEVICE = "cuda" if CUDA else "cpu"
if not CUDA:
    torch.cuda.synchronize = lambda *a: None  # the timing helpers synchronise; nothing to wait for on CPU


def env_for(out: Path) -> None:
    os.environ["LAB_DATA_DIR"] = str(out / "data")
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(out / "inductor"))


def prepare(out: Path, n: int, tiny: bool = False) -> None:
    """Save the 7B architecture with random bf16 weights as a model folder; import `n` clips as a dataset.

    `tiny`: the lab base model stands in for the 7B one (a check of the script without a GPU).
    """
    import shutil

    import soundfile as sf

    from benchmarks.gpu_qwen2audio import build_7b, clips
    from core.data.audit import audit_split
    from core.data.datasets import load_dataset
    from core.data.importers import import_dataset
    from core.data.splits import make_split, save_split

    env_for(out)
    if tiny and not (out / "q7b").exists():
        shutil.copytree(REPO / "models" / "lab-base", out / "q7b")
    if not (out / "q7b" / "config.json").exists():
        model, processor = build_7b()
        t0 = time.perf_counter()
        model.save_pretrained(out / "q7b")
        processor.save_pretrained(out / "q7b")
        print(f"saved the model folder in {time.perf_counter() - t0:.0f} s")
        del model
        torch.cuda.empty_cache()
    t0 = time.perf_counter()
    for i, clip in enumerate(clips(n)):
        group = out / "src" / ("speech", "nonspeech")[i % 2] / f"g{i % 64}"
        group.mkdir(parents=True, exist_ok=True)
        sf.write(group / f"c{i}.wav", clip, 16000, subtype="PCM_16")
    import_dataset("folder", out / "src", "scale")
    ds = load_dataset("scale")
    save_split(ds, "bench", make_split(ds.manifest, seed=0), {"seed": 0})
    audit_split(ds, "bench", content=False)
    print(
        f"dataset 'scale': {len(ds.manifest)} clips written, imported, split and audited in {time.perf_counter() - t0:.0f} s"
    )


def _core(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode:
        print(proc.stdout[-2000:], proc.stderr[-4000:])
        raise SystemExit(f"python -m core {' '.join(args[:3])} failed")
    return proc


def shard(out: Path, batch: int, compile_: bool) -> None:
    """`evaluate --gpus 1` and `--gpus N` through the lab's own command; scoring rates from the replicas' times."""
    from core.scoring import predictions

    env_for(out)
    n = torch.cuda.device_count() or 2  # on CPU (--tiny check): 2 processes
    base = ["evaluate", "--dataset=scale", "--split=bench", "--part=all", "--detector=audio-llm"]
    base += [
        f"--model={out / 'q7b'}",
        f"--dtype={DTYPE}",
        f"--batch-size={batch}",
        *(["--compile"] if compile_ else []),
    ]
    rates = {}
    tables = {}
    for gpus in sorted({1, n}):
        t0 = time.perf_counter()
        _core([*base, f"--gpus={gpus}", *(["--executor=local"] if gpus == 1 else [])])
        wall = time.perf_counter() - t0
        newest = predictions.describe_tables().iloc[0]
        table, meta = predictions.load(newest["path"])
        tables[gpus] = table
        secs = meta.get("replica_seconds") or [meta["seconds"]]
        rates[gpus] = len(table) / max(secs)
        print(
            f"{gpus} replica(s): {len(table)} clips; scoring {max(secs):.1f} s (slowest replica; each "
            f"{', '.join(f'{s:.1f}' for s in secs)} s) = {rates[gpus]:.0f} clips/s; wall {wall:.0f} s with model loading"
        )
    if n > 1:
        a, b = tables[1], tables[n]
        same = a["clip_id"].tolist() == b["clip_id"].tolist() and list(a.columns) == list(b.columns)
        print(
            f"{n} GPUs: {rates[n]:.0f} clips/s = {rates[n] / (n * rates[1]):.2f} × N × one GPU's rate; same clips "
            f"in the same order and columns: {same}; max |Δ logit| {np.abs(a['logit'] - b['logit']).max():.2e} ({DTYPE})"
        )


def sweep(out: Path) -> None:
    """A sweep of 2×N lab-base runs with the local executor: one run per GPU at a time, when each ran where."""
    from core.runs import placement, registry, sweeps
    from core.runs.train_config import TrainConfig

    env_for(out)
    n = torch.cuda.device_count() or 2  # on CPU (--tiny check): 2 processes
    cfg = TrainConfig(dataset="scale", split="bench", epochs=2, max_train_clips=2048, max_dev_clips=256)
    t0 = time.perf_counter()
    sweep_id = sweeps.create_sweep(cfg, {"lora_r": [8, 16]}, list(range(n)))
    while sweeps.sweep_status(sweep_id)["state"] not in ("finished", "failed", "cancelled"):
        time.sleep(1)
    wall = time.perf_counter() - t0
    print(f"sweep of {2 * n} runs on {n} GPUs (local executor): {wall:.0f} s wall")
    t_start = None
    for run_id in sweeps.sweep_status(sweep_id)["runs"]:
        times = registry.metrics_log(run_id).get("time", pd.Series(dtype=float))
        t_start = times.min() if t_start is None else min(t_start, times.min())
    for run_id in sweeps.sweep_status(sweep_id)["runs"]:
        times = registry.metrics_log(run_id).get("time", pd.Series(dtype=float))
        print(f"  {run_id} {registry.status(run_id)['state']} on {placement.where(registry.runs_dir() / run_id)}: "
              f"trained from {times.min() - t_start:.0f} s to {times.max() - t_start:.0f} s")  # fmt: skip


def dp(out: Path, clips: int, batch: int) -> None:
    """7B LoRA fine-tuning on one GPU, then data-parallel on all of them (`accelerate launch`)."""
    from core.runs import registry
    from core.runs.train_config import TrainConfig

    env_for(out)
    n = torch.cuda.device_count() or 2  # on CPU (--tiny check): 2 processes
    cfg = TrainConfig(
        dataset="scale", split="bench", base_model=str(out / "q7b"), epochs=1, batch_size=batch, max_train_clips=clips,
        max_dev_clips=64, lora_dropout=0.0, seed=0,
    )  # fmt: skip
    for gpus in (1, n):
        run_id = registry.create_run(cfg)
        launcher = [sys.executable]
        if gpus > 1:
            launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(gpus)]
            launcher += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        t0 = time.perf_counter()
        proc = subprocess.run([*launcher, "-m", "core", "train", "--run-dir", str(registry.runs_dir() / run_id)],
                              cwd=REPO, capture_output=True, text=True)  # fmt: skip
        wall = time.perf_counter() - t0
        if proc.returncode:
            print(proc.stderr[-3000:])
            raise SystemExit("training failed")
        log = registry.metrics_log(run_id)
        train = log[log["type"] == "train"]
        span = float(train["time"].max() - train["time"].min()) if "time" in train and len(train) > 1 else float("nan")
        steps = len(train)
        print(
            f"7B LoRA, {gpus} GPU(s): {wall:.0f} s wall (model loading, training, dev/test scoring); "
            f"{steps} logged batches over {span:.1f} s of training = {clips / max(span, 1e-9):.1f} train clips/s; "
            f"first loss {train['loss'].iloc[0]:.4f}, last {train['loss'].iloc[-1]:.4f}"
        )


def _padded_baseline(model, processor, data: list[np.ndarray], batch: int, prompt: str) -> tuple[np.ndarray, float]:
    """What a careful transformers user writes: the processor pads every clip to 30 s, batches, one forward.

    Features are prepared for the next batch on a worker thread while the GPU runs this one
    (the same preparing the lab path gets); the A/B logits are read at the last position.
    """
    from concurrent.futures import ThreadPoolExecutor

    tok = processor.tokenizer
    ids = [tok.convert_tokens_to_ids(t) for t in ("A", "B")]
    from core.detectors.llm.qwen2_audio import chat_text

    text = chat_text(processor, prompt)  # the lab's own prompt, so only the padding and batching differ
    tok.padding_side = "left"

    def prep(i: int):
        chunk = data[i : i + batch]
        return processor(text=[text] * len(chunk), audio=chunk, sampling_rate=16000, return_tensors="pt", padding=True)

    out = []
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(1) as pool:
        nxt = pool.submit(prep, 0)
        for i in range(0, len(data), batch):
            inputs = nxt.result()
            if i + batch < len(data):
                nxt = pool.submit(prep, i + batch)
            inputs = {k: v.to(DEVICE) for k, v in inputs.items()}
            inputs["input_features"] = inputs["input_features"].to(model.dtype)
            with torch.inference_mode():
                logits = model(**inputs).logits[:, -1, ids].float()
            out.append(logits.cpu().numpy())
    torch.cuda.synchronize()
    return np.concatenate(out), len(data) / (time.perf_counter() - t0)


def baselines(out: Path, clips_n: int, compile_: bool) -> None:
    """Batch-1 `generate()` (the seed), the batched 30 s-padded forward, and the lab path, on one GPU."""
    from benchmarks.gpu_qwen2audio import clips, compiled_lab, seed_path, two_passes
    from core.detectors.llm import AudioLLMDetector, AudioLLMSpec
    from core.detectors.llm import qwen2_audio as llm

    env_for(out)
    model, processor = llm.load(AudioLLMSpec(model=str(out / "q7b"), dtype=DTYPE))
    data = clips(clips_n, seed=1)
    spec = {"model": str(out / "q7b"), "dtype": DTYPE}
    lab = AudioLLMDetector(AudioLLMSpec(**spec, batch_size=256), model, processor)
    lab_answers, first, steady = two_passes(lab, data)
    lab_logits = lab_answers[:, 0] - lab_answers[:, 1]  # log-odds of speech
    print(f"lab path, eager, batch 256: {first:.0f} clips/s first pass, {steady:.0f} steady ({len(data)} clips)")
    seed = seed_path(spec, model, processor)
    seed.score(data[:2], 16000)
    t0 = time.perf_counter()
    seed_logits = seed.score(data[:64], 16000)
    seed_rate = 64 / (time.perf_counter() - t0)
    print(f"seed path, batch 1, 30 s padding, generate(): {seed_rate:.1f} clips/s (64 clips)")
    best = (0.0, 0)
    for b in (16, 32, 64):
        _padded_baseline(model, processor, data[: 2 * b], b, lab.prompt)  # warm-up: cuDNN plans for this shape
        logits, rate = _padded_baseline(model, processor, data[:512], b, lab.prompt)
        lo, ref = logits[:, 0] - logits[:, 1], lab_logits[:512]
        agree = np.mean((lo > 0) == (ref > 0))
        print(f"batched 30 s-padded forward, batch {b}: {rate:.1f} clips/s ({len(data[:512])} clips); "
              f"max |Δ log-odds| vs lab path {np.abs(lo - ref).max():.3f}, same decision {agree:.1%}")  # fmt: skip
        best = max(best, (rate, b))
    lab_rate = steady
    if compile_:
        fast = compiled_lab(spec, 512, model, processor, data)
        _, cf, cs = two_passes(fast, data)
        print(f"lab path, compiled, batch 512: {cf:.0f} clips/s first pass, {cs:.0f} steady")
        lab_rate = cs
    print(
        f"speed-up of the lab path ({lab_rate:.0f} clips/s): {lab_rate / seed_rate:.0f}× the batch-1 generate() path, "
        f"{lab_rate / best[0]:.1f}× the batched 30 s-padded path at its best batch ({best[1]}); |Δ| seed vs lab "
        f"{np.abs((seed_logits[:, 0] - seed_logits[:, 1]) - lab_logits[:64]).max():.3f}"
    )


def fp8(out: Path, clips_n: int, compile_: bool) -> None:
    """The lab path in bf16 and with FP8 linear layers (torchao), each against fp32 on the same weights."""
    from benchmarks.gpu_qwen2audio import clips, two_passes
    from core.detectors.llm import AudioLLMDetector, AudioLLMSpec
    from core.detectors.llm import qwen2_audio as llm

    env_for(out)
    data = clips(clips_n, seed=2)
    ref_n = min(512, clips_n)
    spec = {"model": str(out / "q7b")}
    model, processor = llm.load(AudioLLMSpec(**spec, dtype="fp32"))
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    ref = AudioLLMDetector(AudioLLMSpec(**spec, dtype="fp32", batch_size=16), model, processor).score(
        data[:ref_n], 16000
    )
    ref = ref[:, 0] - ref[:, 1]  # log-odds of speech
    model.to(torch.bfloat16)  # the saved weights are bf16: exact both ways
    bf16 = AudioLLMDetector(AudioLLMSpec(**spec, dtype=DTYPE, batch_size=256, compile=compile_), model, processor)
    b_logits, b_first, b_steady = two_passes(bf16, data)
    b_logits = b_logits[:, 0] - b_logits[:, 1]
    err = np.abs(b_logits[:ref_n] - ref)
    agree = np.mean((b_logits[:ref_n] > 0) == (ref > 0))
    print(f"bf16 lab path{' (compiled)' if compile_ else ''}: {b_first:.0f}, {b_steady:.0f} clips/s; vs fp32 on "
          f"{ref_n} clips: max |Δ log-odds| {err.max():.3f} (median {np.median(err):.3f}), same decision {agree:.2%}")  # fmt: skip
    try:
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_
    except ImportError as exc:
        print(f"FP8 not measured: torchao is not importable here ({exc})")
        return
    core = model.model if hasattr(model.model, "language_model") else model  # transformers 5 / 4 layouts
    t0 = time.perf_counter()
    quantize_(core.language_model, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()))
    quantize_(core.audio_tower, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()))
    print(f"FP8 (torchao {__import__('torchao').__version__}, e4m3 weights and activations, per-row scales, the "
          f"decoder's and the audio encoder's linear layers) applied in {time.perf_counter() - t0:.0f} s")  # fmt: skip
    f8 = AudioLLMDetector(AudioLLMSpec(**spec, dtype=DTYPE, batch_size=256, compile=compile_), model, processor)
    f_logits, f_first, f_steady = two_passes(f8, data)
    f_logits = f_logits[:, 0] - f_logits[:, 1]
    err8 = np.abs(f_logits[:ref_n] - ref)
    agree8 = np.mean((f_logits[:ref_n] > 0) == (ref > 0))
    print(f"FP8 lab path{' (compiled)' if compile_ else ''}: {f_first:.0f}, {f_steady:.0f} clips/s "
          f"({f_steady / b_steady:.2f}× bf16); vs fp32: max |Δ log-odds| {err8.max():.3f} (median "
          f"{np.median(err8):.3f}), same decision {agree8:.2%}; FP8 vs bf16 same decision "
          f"{np.mean((f_logits > 0) == (b_logits > 0)):.2%}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["prepare", "shard", "sweep", "dp", "baselines", "fp8"])
    ap.add_argument("--out", type=Path, default=Path("/tmp/scale"))
    ap.add_argument("--clips", type=int, default=8192)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--train-clips", type=int, default=1024)
    ap.add_argument("--train-batch", type=int, default=16)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--tiny", action="store_true", help="prepare: the lab base model instead of the 7B (CPU check)")
    a = ap.parse_args()
    name = torch.cuda.get_device_name() if CUDA else "CPU"
    print(f"device: {name} × {torch.cuda.device_count()}; torch {torch.__version__}")
    if a.what == "prepare":
        prepare(a.out, a.clips, a.tiny)
    elif a.what == "shard":
        shard(a.out, a.batch, a.compile)
    elif a.what == "sweep":
        sweep(a.out)
    elif a.what == "dp":
        dp(a.out, a.train_clips, a.train_batch)
    elif a.what == "baselines":
        baselines(a.out, min(a.clips, 2048), a.compile)
    else:
        fp8(a.out, min(a.clips, 2048), a.compile)
    print(json.dumps({"done": a.what}))


if __name__ == "__main__":
    main()
