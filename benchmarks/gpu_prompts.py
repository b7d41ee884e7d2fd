"""GPU benchmark: scoring K candidate prompts on the same clips, shared audio work vs fresh scoring.

Qwen2-Audio-7B's architecture with random bf16 weights (as gpu_qwen2audio.py), 8 candidate
prompts (benchmarks/prompt_set.py), 150 clips of 0.2–1 s: one OPRO iteration's scoring.
  fresh:  each prompt scored by its own batched `score` call (model loaded once, same batch
          size and preparing workers): what a careful user would write without sharing;
  shared: one `score_prompts` call (the encoder once per batch, the decoder's work up to the
          question once per distinct text before it).
Prints clip-prompts per second of each, the ratio, the time of one iteration's scoring, and
how far the two are apart in bf16 and (on 16 clips) in fp32, where they are the same sums.
  python3 benchmarks/gpu_prompts.py [--clips 150] [--batch 256] [--repeats 3] [--seconds S] [--tiny]
`--tiny` runs the lab base model instead (a CPU check of the script).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.prompt_set import CANDIDATES  # noqa: E402
from core.detectors.audio_llm import AudioLLMDetector, AudioLLMSpec  # noqa: E402


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run(model, processor, audio, batch: int, repeats: int, dtype: str) -> tuple[np.ndarray, np.ndarray, dict]:
    spec = dict(model="bench", dtype=dtype, batch_size=batch)
    fresh_dets = [
        AudioLLMDetector(AudioLLMSpec(**spec, prompt=p.text, answers=p.answers), model, processor) for p in CANDIDATES
    ]
    shared_det = fresh_dets[0]
    shared_det.score_prompts(audio[:16], 16000, CANDIDATES)  # warm-up: kernels, workers
    for d in fresh_dets:
        d.score(audio[:16], 16000)
    times = {"fresh": [], "shared": []}
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fresh = np.stack([d.score(audio, 16000) for d in fresh_dets])
        sync()
        times["fresh"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        shared = shared_det.score_prompts(audio, 16000, CANDIDATES)
        sync()
        times["shared"].append(time.perf_counter() - t0)
    return fresh, shared, times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=150)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tiny", action="store_true", help="the lab base model on this machine (a check of the script)")
    ap.add_argument("--seconds", type=float, default=0.0, help="clips of this length instead of 0.2-1 s")
    args = ap.parse_args()
    from benchmarks.gpu_qwen2audio import clips
    from core.detectors import lab_model

    if args.tiny:
        from core.detectors.audio_llm import load

        model, processor = load(AudioLLMSpec(model=str(lab_model.ensure_base_model())))
        device = "cpu"
    else:
        from benchmarks.gpu_qwen2audio import build_7b

        torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
        model, processor = build_7b()
        device = torch.cuda.get_device_name()
    audio = clips(args.clips, seed=1)
    if args.seconds:  # longer clips: the shared audio work grows, the per-prompt question does not
        n = int(16000 * args.seconds)
        audio = [np.resize(a, n) for a in audio]
    k = len(CANDIDATES)
    fresh, shared, times = run(model, processor, audio, args.batch, args.repeats, "auto")
    print(f"{k} prompts × {len(audio)} clips on {device}, batch {args.batch}, best of {args.repeats}:")
    for name, ts in times.items():
        s = min(ts)
        print(f"  {name:6}: {s:.2f} s ({', '.join(f'{t:.2f}' for t in ts)}) = {k * len(audio) / s:.0f} clip-prompts/s")
    ratio = min(times["fresh"]) / min(times["shared"])
    print(
        f"  shared is {ratio:.2f}× fresh; one OPRO iteration ({k} × {len(audio)}) scores in {min(times['shared']):.2f} s"
    )
    d = np.abs(fresh - shared)
    odds = np.abs((fresh[..., 0] - fresh[..., 1]) - (shared[..., 0] - shared[..., 1]))
    agree = np.mean((fresh[..., 0] > fresh[..., 1]) == (shared[..., 0] > shared[..., 1]))
    print(f"  shared vs fresh in {next(model.parameters()).dtype}: max |Δ score| {d.max():.3g}, "
          f"max |Δ log-odds| {odds.max():.3g}, decisions agree {agree:.4f}")  # fmt: skip
    if not args.tiny:  # the same sums in fp32: the difference is rounding only
        model.float()
        few = audio[:16]
        f32, s32, _ = run(model, processor, few, 16, 1, "fp32")
        print(f"  in fp32 on {len(few)} clips: max |Δ score| {np.abs(f32 - s32).max():.3g}")


if __name__ == "__main__":
    main()
