"""GPU benchmark: the seed's scoring path vs the lab's, on the full-size Qwen2-Audio-7B architecture.

Builds Qwen2-Audio-7B-Instruct's architecture from its config with random bf16 weights (no
download), then on the same clips:
  seed path: batch 1, every clip padded to 30 s, `generate()` one token constrained to A/B;
  lab path:  batched, features trimmed to the batch, one forward pass.
Prints clips/s of each, their ratio, the max |Δ logit| between them, and the lab path's model
FLOP utilisation (FLOPs counted by torch's FlopCounterMode), and splits the speed-up into work
saved and GPU use. Run through the device tool (README → Performance has the figures):
  python3 benchmarks/gpu_qwen2audio.py --compile --timeline --batch 512 --clips 8192
`--quick` times only the compiled lab path, for trying a change; `--floor` measures only how far the
seed path is from itself in bf16 when one kernel setting changes. `--question-first`: both paths
ask the question before the clip, which the lab path then computes once per batch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import core.detectors.llm.qwen2_audio as llm  # noqa: E402
from core.detectors import lab_model  # noqa: E402
from core.detectors.llm import AudioLLMDetector, AudioLLMSpec  # noqa: E402
from core.detectors.llm.detector import PreparedBatches  # noqa: E402
from core.detectors.llm.prompt import DEFAULT_PROMPT, QUESTION_FIRST_PROMPT  # noqa: E402

# Qwen/Qwen2-Audio-7B-Instruct config.json (architecture only; the tokenizer here is the lab's)
AUDIO_7B = {
    "d_model": 1280,
    "encoder_layers": 32,
    "encoder_attention_heads": 20,
    "encoder_ffn_dim": 5120,
    "num_mel_bins": 128,
    "max_source_positions": 1500,
}
TEXT_7B = {
    "vocab_size": 156032,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 8192,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-5,
}
PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12}  # dense bf16 tensor-core peak, SXM


def clips(n: int, seed: int = 0) -> list[np.ndarray]:
    """Clips of 0.2–1.0 s: harmonic tones with a vibrato plus noise (content does not matter here)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        m = int(16000 * rng.uniform(0.2, 1.0))
        t = np.arange(m) / 16000
        f0 = rng.uniform(100, 300)
        x = sum(np.sin(2 * np.pi * f0 * k * t + np.sin(2 * np.pi * 5 * t)) / k for k in range(1, 6))
        out.append((0.3 * x / np.abs(x).max() + 0.02 * rng.standard_normal(m)).astype(np.float32))
    return out


def build_7b():
    """(model, processor): Qwen2-Audio-7B's architecture with random bf16 weights on the GPU, the lab's processor."""
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

    processor = lab_model.build_processor()
    audio_id = processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    config = Qwen2AudioConfig(
        audio_config=AUDIO_7B, text_config={"model_type": "qwen2", **TEXT_7B}, audio_token_index=audio_id
    )
    torch.manual_seed(0)
    t0 = time.perf_counter()
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = Qwen2AudioForConditionalGeneration(config).eval()
    torch.set_default_dtype(torch.float32)
    n_params = sum(p.numel() for p in model.parameters())
    name = torch.cuda.get_device_name()
    print(f"device: {name}; built {n_params / 1e9:.2f} B parameters (bf16, random) in {time.perf_counter() - t0:.0f} s")
    return model, processor


def host_syncs(fn, *args) -> list[str]:
    """Where `fn` makes the host wait for the GPU (torch's sync debug mode): "count× file:line code"."""
    import traceback
    import warnings

    sites: dict[str, int] = {}

    def record(message, category, filename, lineno, file=None, line=None):
        stack = traceback.extract_stack()[:-1]
        frames = [f for f in stack if "/core/" in f.filename or "transformers" in f.filename] or stack[-1:]
        where = f"{frames[-1].filename.split('/')[-1]}:{frames[-1].lineno} {frames[-1].line}"
        sites[where] = sites.get(where, 0) + 1

    torch.cuda.synchronize()
    with warnings.catch_warnings():  # restores showwarning on the way out
        warnings.simplefilter("always")
        warnings.showwarning = record
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn(*args)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return [f"{n}x {site}" for site, n in sites.items()]


def profile(detector, batch: list[np.ndarray]) -> None:
    """Where the GPU time of scoring `batch` goes: the top kernels, and how busy the GPU was."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        detector.score(batch, 16000)
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    events = prof.key_averages()
    busy = sum(e.device_time_total for e in events) / 1e6
    print(f"profile of {len(batch)} clips: {wall * 1e3:.0f} ms wall, kernels {busy * 1e3:.0f} ms")
    print(events.table(sort_by="device_time_total", row_limit=20, max_name_column_width=90))


def timeline(detector, data: list[np.ndarray]) -> None:
    """Where the wall time of one `score` call goes: GPU time of each batch and the GPU's idle gaps.

    CUDA events around every batch's forward; a gap is the device waiting for the host (the
    first batch's preparation, worker start-up, launch overhead between batches).
    """
    marks = []
    forward = llm.next_token_logits

    def traced(model, batch, padded):
        h0, e0 = time.perf_counter(), torch.cuda.Event(enable_timing=True)
        e0.record()
        out = forward(model, batch, padded)
        e1 = torch.cuda.Event(enable_timing=True)
        e1.record()
        marks.append((h0, time.perf_counter(), e0, e1))
        return out

    torch.cuda.synchronize()
    before = torch.cuda.memory_stats()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    t0 = time.perf_counter()
    start.record()
    llm.next_token_logits = traced
    try:
        detector.score(data, 16000)
    finally:
        llm.next_token_logits = forward
    end.record()
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) * 1e3
    after = torch.cuda.memory_stats()
    gpu = [m[2].elapsed_time(m[3]) for m in marks]
    gaps = [start.elapsed_time(marks[0][2])] + [a[3].elapsed_time(b[2]) for a, b in zip(marks, marks[1:])]
    tail = marks[-1][3].elapsed_time(end)
    enqueue = [(m[1] - m[0]) * 1e3 for m in marks]
    print(f"timeline of {len(data)} clips in {len(marks)} batches: {wall:.0f} ms wall")
    print(
        f"  GPU per batch: {sum(gpu):.0f} ms in all, median {np.median(gpu):.0f} ms (min {min(gpu):.0f}, max {max(gpu):.0f})"
    )
    print(
        f"  device idle before the first batch: {gaps[0]:.0f} ms; between batches: {sum(gaps[1:]):.0f} ms in all, "
        f"max {max(gaps[1:], default=0):.0f} ms; after the last: {tail:.0f} ms"
    )
    grew = {k: after.get(k, 0) - before.get(k, 0) for k in ("num_device_alloc", "num_device_free", "num_alloc_retries")}
    print(f"  caching allocator: {grew} (a device free or retry makes the host wait for the GPU)")
    print(f"  host time to queue each batch (ms): {' '.join(f'{t:.0f}' for t in enqueue)}")
    print(f"  GPU time of each batch (ms): {' '.join(f'{t:.0f}' for t in gpu)}")
    single = PreparedBatches(
        detector.family,
        detector.parts,
        data[: detector.spec.batch_size],
        [np.arange(detector.spec.batch_size)],
        detector.prompt,
        padded=False,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a worker process
    t1 = time.perf_counter()
    single[0]
    torch.set_num_threads(threads)
    print(f"  preparing one batch in one process, one thread: {(time.perf_counter() - t1) * 1e3:.0f} ms")


def seed_breakdown(seed, data: list[np.ndarray], rate: float) -> None:
    """Where the seed path's time per clip goes, on this machine: its rate is set by the host.

    Batch 1 means every clip pays the processor's 30 s feature extraction on the CPU and
    generate()'s per-call host work; the GPU's own share is its kernel time.
    """
    import platform

    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    t0 = time.perf_counter()
    for clip in data:
        llm.prepare(seed.processor, [clip], seed.prompt, padded=True)
    inputs = (time.perf_counter() - t0) / len(data) * 1e3
    torch.cuda.synchronize()
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        seed.score(data, 16000)
        torch.cuda.synchronize()
    kernels = sum(e.device_time_total for e in prof.key_averages()) / 1e3 / len(data)
    per_clip = 1e3 / rate
    info = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "?")
    print(
        f"seed path per clip ({platform.node()}, {cpu}, {torch.get_num_threads()} torch threads): {per_clip:.0f} ms "
        f"= {inputs:.0f} ms 30 s features and tokens (CPU) + {kernels:.1f} ms GPU kernels + "
        f"{per_clip - inputs - kernels:.0f} ms generate() host work and launch gaps"
    )


def through_evaluate(detector, data: list[np.ndarray]) -> None:
    """The lab path as the Evaluate page runs it (`core.evaluate`), against scoring clips in memory.

    The clips are written as 16-bit WAVs and imported as a dataset; the evaluation then reads
    them back from disk while it scores them, as a real one does.
    """
    import os
    import tempfile

    import soundfile as sf

    from core.data.datasets import load_dataset
    from core.data.importers import import_dataset
    from core.data.splits import make_split, save_split
    from core.scoring import predictions
    from core.scoring.evaluate import evaluate

    root = Path(tempfile.mkdtemp(prefix="gpubench-"))
    os.environ["LAB_DATA_DIR"] = str(root / "data")
    for i, clip in enumerate(data):
        group = root / "src" / ("speech", "nonspeech")[i % 2] / f"g{i % 64}"
        group.mkdir(parents=True, exist_ok=True)
        sf.write(group / f"c{i}.wav", clip, 16000, subtype="PCM_16")
    t0 = time.perf_counter()
    import_dataset("folder", root / "src", "gpubench")
    ds = load_dataset("gpubench")
    save_split(ds, "bench", make_split(ds.manifest, seed=0), {"seed": 0})
    print(f"wrote and imported {len(ds.manifest)} clips in {time.perf_counter() - t0:.0f} s")
    for attempt in ("first", "second"):  # the first meets the chunks' batch shapes for the first time
        _, meta = predictions.load(evaluate(ds, "bench", "all", detector))
        print(
            f"lab path through core.evaluate, {attempt} time (clips read from disk): "
            f"{meta['clips_per_s']:.1f} clips/s over {meta['n_clips']} clips"
        )


def gemm_ceiling() -> float:
    """Measured bf16 GEMM rate (FLOP/s) at a decoder-MLP shape: the realistic ceiling for MFU."""
    a = torch.randn(28672, 4096, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(4096, 11008, device="cuda", dtype=torch.bfloat16)
    times = []
    for _ in range(25):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        a @ b
        e1.record()
        torch.cuda.synchronize()
        times.append(e0.elapsed_time(e1) / 1e3)
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / float(np.median(times[5:]))


def timed(fn, *args):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn(*args)
    torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def two_passes(detector, data: list[np.ndarray]) -> tuple[np.ndarray, float, float]:
    """(logits, first-pass clips/s, steady clips/s) of the lab path over `data`.

    The first pass meets each batch shape once and pays one-off work for it (cuDNN attention
    plans, Triton tuning for new sizes); the second is the rate a long evaluation settles at.
    The seed path needs no such pass: it pads every clip to 30 s, so it has one shape.
    """
    _, first = timed(detector.score, data, 16000)
    logits, steady = timed(detector.score, data, 16000)
    return logits, len(data) / first, len(data) / steady


def deltas(a: np.ndarray, b: np.ndarray) -> str:
    """The largest |difference| of the answer logits and of the log-odds between two (clips, 2) arrays."""
    d_ans = np.abs(a - b).max()
    d_lo = np.abs((a[:, 0] - a[:, 1]) - (b[:, 0] - b[:, 1])).max()
    return f"answer logits {d_ans:.2e}, log-odds {d_lo:.2e} (|logit| up to {np.abs(b).max():.1f})"


def seed_spread(model, seed: AudioLLMDetector, data: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The seed path's bf16 logits again, then with one other kernel setting at a time.

    Same code, clips and shapes (batch 1, 30 s padding, `generate()`); only how cuBLAS may sum
    split-K partial products (in bf16: PyTorch's default) or which attention kernel runs (SDPA,
    or transformers' eager softmax(QK^T)V) differs. Both are settings a seed script may have
    had, so another bf16 path can be held to the seed's logits only as closely as this spread.
    """
    matmul = torch.backends.cuda.matmul
    spread = {"the same settings again": seed.score(data, 16000)}
    matmul.allow_bf16_reduced_precision_reduction = True
    spread["split-K partial sums in bf16 allowed (PyTorch's default)"] = seed.score(data, 16000)
    matmul.allow_bf16_reduced_precision_reduction = False
    model.set_attn_implementation("eager")
    spread["eager attention instead of SDPA"] = seed.score(data, 16000)
    model.set_attn_implementation("sdpa")
    return spread


def seed_path(spec: dict, model, processor) -> AudioLLMDetector:
    """The seed's way of scoring: batch 1, every clip padded to 30 s, `generate()` one token."""
    return AudioLLMDetector(AudioLLMSpec(**spec, mode="generate", padding="padded", batch_size=1), model, processor)


def to_fp32(model, processor, spec: dict) -> tuple[AudioLLMDetector, AudioLLMDetector]:
    """The model in fp32 (TF32 off for matmuls and convolutions; the bf16 weights are exact in fp32).

    Returns the seed path and the lab path (batch 8) on it: the latter is the reference answer.
    """
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model.float()
    spec32 = {**spec, "dtype": "fp32"}
    return seed_path(spec32, model, processor), AudioLLMDetector(AudioLLMSpec(**spec32, batch_size=8), model, processor)


def compiled_lab(spec: dict, batch: int, model, processor, data: list[np.ndarray]) -> AudioLLMDetector:
    """The lab path with each layer `torch.compile`d, compiled on two batch shapes before it is timed."""
    fast = AudioLLMDetector(AudioLLMSpec(**spec, batch_size=batch, compile=True), model, processor)
    t0 = time.perf_counter()
    fast.score(data[: 2 * batch], 16000)
    print(f"compiled in {time.perf_counter() - t0:.0f} s")
    return fast


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=2048, help="clips for the lab path")
    ap.add_argument("--seed-clips", type=int, default=64, help="clips for the (slow) seed path")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--compile", action="store_true", help="also time the lab path with torch.compile'd layers")
    ap.add_argument("--profile", action="store_true", help="with --compile: the top GPU kernels of 4 compiled batches")
    ap.add_argument("--also-batch", type=int, nargs="*", default=[], help="with --compile: time these batch sizes too")
    ap.add_argument(
        "--timeline", action="store_true", help="with --compile: GPU time per batch and the device's idle gaps"
    )
    ap.add_argument(
        "--question-first",
        action="store_true",
        help="both paths ask the question before the clip (prompt ending in <audio>): the trimmed path then "
        "computes it once per batch",
    )
    ap.add_argument(
        "--floor",
        action="store_true",
        help="only the seed path's bf16 spread against itself under other kernel settings (--seed-clips clips)",
    )
    ap.add_argument("--quick", action="store_true", help="only the compiled lab path (timing, timeline): for A/B tries")
    ap.add_argument(
        "--evaluate", action="store_true", help="with --quick: also through core.evaluate, clips read from disk"
    )
    args = ap.parse_args()
    # full fp32 accumulation in bf16 GEMM reductions: fewer kernel-order rounding differences
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    model, processor = build_7b()
    name = torch.cuda.get_device_name()
    audio_id = processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")

    data = clips(args.clips)
    print(f"measured bf16 GEMM ceiling (28672x4096 @ 4096x11008): {gemm_ceiling() / 1e12:.0f} TFLOP/s")
    spec = dict(model="qwen2-audio-7b-architecture (random bf16)", dtype="bf16", device="cuda")
    spec["prompt"] = QUESTION_FIRST_PROMPT if args.question_first else DEFAULT_PROMPT
    ids = processor.tokenizer(llm.chat_text(processor, spec["prompt"]))["input_ids"]
    before = ids.index(audio_id)
    layout = "question before the clip" if args.question_first else "clip first, then the question (the default)"
    print(f"prompt: {layout}; {before} tokens before the audio, {len(ids) - 1 - before} after it")
    if args.floor:
        few = data[: args.seed_clips]
        seed = seed_path(spec, model, processor)
        seed.score(few[:2], 16000)  # warm-up
        seed_logits, seconds = timed(seed.score, few, 16000)
        print(f"seed path, {len(few)} clips: {len(few) / seconds:.2f} clips/s")
        spread = seed_spread(model, seed, few)
        _, truth = to_fp32(model, processor, spec)
        truth_logits = truth.score(few, 16000)
        print(f"seed path, this script's setting, against fp32: {deltas(seed_logits, truth_logits)}")
        for name, logits in spread.items():
            print(f"seed path, {name}: {deltas(logits, seed_logits)}; against fp32: {deltas(logits, truth_logits)}")
        return
    if args.quick:
        fast = compiled_lab(spec, args.batch, model, processor, data)
        _, first, steady = two_passes(fast, data)
        print(f"lab path, compiled layers, batch {args.batch}: first pass {first:.1f} clips/s, then {steady:.1f}")
        timeline(fast, data)
        if args.profile:
            profile(fast, data[: 4 * args.batch])
        if args.evaluate:
            through_evaluate(fast, data)
        return
    seed = seed_path(spec, model, processor)
    lab = AudioLLMDetector(
        AudioLLMSpec(**spec, mode="logits", padding="trimmed", batch_size=args.batch), model, processor
    )
    seed.score(data[:2], 16000)  # warm-up
    lab.score(data[: args.batch], 16000)
    syncs = host_syncs(lab.score, data[: 2 * args.batch], 16000)
    print(f"host waits for the GPU while the lab path scores 2 batches: {len(syncs)} sites")
    for site in syncs:
        print(f"  {site}")
    seed_logits, seed_s = timed(seed.score, data[: args.seed_clips], 16000)
    lab_logits, lab_first, lab_rate = two_passes(lab, data)
    seed_rate = args.seed_clips / seed_s

    common = lab_logits[: args.seed_clips]
    # bf16 noise floor: the seed path's own quantity computed by another valid bf16 kernel order
    # (the processor's 30 s padded features, batched 8, one forward) — not a different method.
    other = AudioLLMDetector(AudioLLMSpec(**spec, padding="padded", batch_size=8), model, processor)
    floor_logits = other.score(data[: args.seed_clips], 16000)

    from torch.utils.flop_counter import FlopCounterMode

    # FLOPs of the very batches timed (sorted by length, so the little padding left is counted);
    # counting one unsorted batch instead would charge every clip the longest clip's work
    with FlopCounterMode(display=False) as counter:
        lab.score(data, 16000)
    flops_per_clip = counter.get_total_flops() / len(data)
    with FlopCounterMode(display=False) as counter:
        seed.score(data[:4], 16000)
    seed_flops = counter.get_total_flops() / 4
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    achieved = flops_per_clip * lab_rate
    print(f"seed path (batch 1, 30 s padding, generate): {seed_rate:.2f} clips/s over {args.seed_clips} clips")
    seed_breakdown(seed, data[:16], seed_rate)
    print(
        f"lab path (batch {args.batch}, trimmed, one forward, {lab.workers} preparing processes), {len(data)} clips: "
        f"first pass {lab_first:.1f} clips/s, then {lab_rate:.1f} clips/s"
    )
    print(f"speed-up: {lab_rate / seed_rate:.0f}x (first pass {lab_first / seed_rate:.0f}x)")
    print(f"max |delta| seed vs lab, bf16: {deltas(common, seed_logits)}")
    print(f"max |delta| seed vs another bf16 kernel order of the seed's own path: {deltas(floor_logits, seed_logits)}")
    mfu = f"{100 * achieved / peak:.1f}% of {peak / 1e12:.0f} TFLOP/s" if peak else "unknown peak"
    print(f"lab path: {flops_per_clip / 1e9:.1f} GFLOP/clip, {achieved / 1e12:.1f} TFLOP/s achieved, MFU {mfu}")
    if peak:
        # the speed-up splits into work saved (FLOP ratio) and how well each path keeps the GPU busy
        seed_mfu = seed_flops * seed_rate / peak
        print(
            f"seed path: {seed_flops / 1e12:.2f} TFLOP/clip, MFU {100 * seed_mfu:.1f}%; the lab path does "
            f"{seed_flops / flops_per_clip:.1f}x less work per clip and runs at {achieved / peak / seed_mfu:.1f}x "
            "the seed path's MFU (eager)"
        )
    print(f"memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB peak (bf16)")
    if args.compile:
        fast = compiled_lab(spec, args.batch, model, processor, data)
        fast_logits, first, rate = two_passes(fast, data)
        mfu = f", MFU {100 * flops_per_clip * rate / peak:.1f}%" if peak else ""
        print(
            f"lab path, compiled layers: first pass {first:.1f} clips/s ({first / seed_rate:.0f}x), "
            f"then {rate:.1f} clips/s, speed-up {rate / seed_rate:.0f}x{mfu}"
        )
        if peak:
            needed = 50 * seed_rate * flops_per_clip / peak
            print(f"50x this seed rate would need the lab path at {100 * needed:.0f}% MFU")
        print(f"max |delta| seed vs compiled lab, bf16: {deltas(fast_logits[: args.seed_clips], seed_logits)}")
        for size in args.also_batch:  # the compiled layers take any batch size (dynamic shapes)
            other_size = AudioLLMDetector(AudioLLMSpec(**spec, batch_size=size), model, processor)
            _, _, rate = two_passes(other_size, data)
            mfu = f", MFU {100 * flops_per_clip * rate / peak:.1f}%" if peak else ""
            print(f"lab path, compiled layers, batch {size}: {rate:.1f} clips/s, speed-up {rate / seed_rate:.0f}x{mfu}")
        if args.timeline:
            timeline(fast, data)
        if args.profile:
            profile(fast, data[: 4 * args.batch])
    # uncompiled from here: the seed path again as it was timed, and no fp32 recompilation of the layers
    torch.compiler.set_stance("force_eager")
    spread = seed_spread(model, seed, data[: args.seed_clips])
    for name, logits in spread.items():
        print(f"max |delta| seed vs the seed path itself, {name}: {deltas(logits, seed_logits)}")
    # the same comparison in fp32
    seed32, lab32 = to_fp32(model, processor, spec)
    few = data[: min(8, args.seed_clips)]
    parity = deltas(lab32.score(few, 16000), seed32.score(few, 16000))
    print(f"max |delta| seed vs lab, fp32 (same weights, {len(few)} clips): {parity}")
    # how far each bf16 path is from the fp32 answer: the bf16 error of the method, not of the reference
    truth = lab32.score(data[: args.seed_clips], 16000)
    print(f"bf16 error against fp32, {args.seed_clips} clips:")
    print(f"  seed path (batch 1, padded, generate): {deltas(seed_logits, truth)}")
    print(f"  seed's own path, another kernel order: {deltas(floor_logits, truth)}")
    for name, logits in spread.items():
        print(f"  seed path, {name}: {deltas(logits, truth)}")
    print(f"  lab path (batched, trimmed, eager): {deltas(common, truth)}")
    if args.compile:
        print(f"  lab path, compiled layers: {deltas(fast_logits[: args.seed_clips], truth)}")


if __name__ == "__main__":
    main()
