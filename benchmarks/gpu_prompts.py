"""GPU benchmark: scoring K candidate prompts on the same clips, shared audio work vs fresh scoring.

Qwen2-Audio-7B's architecture with random bf16 weights (as gpu_qwen2audio.py), 8 candidate
prompts (benchmarks/prompt_set.py), 150 clips of 0.2–1 s: one OPRO iteration's scoring.
  fresh:  each prompt scored by its own batched `score` call (model loaded once, same batch
          size and preparing workers): what a careful user would write without sharing;
  shared: one `score_prompts` call (the encoder once per batch, the decoder's work up to the
          question once per distinct text before it).
Prints clip-prompts per second of each, the ratio, the time of one iteration's scoring, and
how far the two are apart in bf16 and (on 16 clips) in fp32, where they are the same sums.
Beside each measured ratio, the *work bound*: fresh over shared in multiply-adds of the model's
weights (encoder positions and decoder tokens, each weighted by its parameter count; attention
over the cache and padding left out), the ratio sharing could reach if both ran at the same
efficiency. `--set clip-first` scores only candidates that put the clip first (one shared
`pre`), the layout where sharing saves the most.
  python3 benchmarks/gpu_prompts.py [--clips 150] [--batch 256] [--repeats 3] [--seconds S,...] [--long-batch 32]
                                    [--set mixed,clip-first] [--tiny]
`--seconds 0` means 0.2–1 s clips; several values and sets run in one process (one model load).
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

from benchmarks.prompt_set import CANDIDATES, CLIP_FIRST  # noqa: E402
from core.detectors.llm import AudioLLMDetector, AudioLLMSpec  # noqa: E402
from core.detectors.llm.features import audio_token_count  # noqa: E402
from core.detectors.llm.prompt import tokens  # noqa: E402
from core.detectors.llm.qwen2_audio import QWEN2_AUDIO, _base  # noqa: E402


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def work_bound(model, processor, audio, candidates) -> float:
    """Fresh over shared scoring in weight multiply-adds (encoder positions and decoder tokens).

    Fresh, per prompt: the encoder on every clip, then each clip's audio tokens, the prompt's
    text after the clip and its answer tokens beyond the first (the text before the clip is one
    row shared by the batch in both paths, so it is left out). Shared: the encoder once, the
    audio tokens once per distinct text before the clip, and each prompt's text and answers.
    """
    base = _base(model)
    p_enc = sum(p.numel() for p in base.model.audio_tower.parameters())
    p_enc += sum(p.numel() for p in base.model.multi_modal_projector.parameters())
    lm = base.model.language_model
    p_dec = sum(p.numel() for p in lm.parameters()) - lm.get_input_embeddings().weight.numel()
    a = np.array([audio_token_count(-(-len(x) // 160)) for x in audio], dtype=float)
    enc = p_enc * (2 * a).sum()  # two encoder positions per audio token (average pool 2)
    planned = [tokens(QWEN2_AUDIO, processor, c) for c in candidates]
    per_prompt = [len(pt.post) + sum(len(s) - 1 for s in pt.answers) for pt in planned]
    fresh = len(planned) * enc + p_dec * sum(a.sum() + len(a) * n for n in per_prompt)
    distinct_pre = len({pt.pre for pt in planned})
    shared = enc + p_dec * (distinct_pre * a.sum() + len(a) * sum(per_prompt))
    return fresh / shared


def run(model, processor, audio, batch: int, repeats: int, dtype: str, candidates=CANDIDATES):
    """Scores of fresh and shared scoring of `candidates` and their times (best of `repeats`)."""
    spec = dict(model="bench", dtype=dtype, batch_size=batch)
    fresh_dets = [
        AudioLLMDetector(AudioLLMSpec(**spec, prompt=p.text, answers=p.answers), model, processor) for p in candidates
    ]
    shared_det = fresh_dets[0]
    shared_det.score_prompts(audio[:16], 16000, candidates)  # warm-up: kernels, workers
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
        shared = shared_det.score_prompts(audio, 16000, candidates)
        sync()
        times["shared"].append(time.perf_counter() - t0)
    return fresh, shared, times


def measure(model, processor, audio, candidates, batch: int, repeats: int, label: str) -> None:
    """One line set: times, clip-prompts/s, the ratio beside its work bound, and the bf16 gap."""
    k = len(candidates)
    fresh, shared, times = run(model, processor, audio, batch, repeats, "auto", candidates)
    print(f"{label}: {k} prompts × {len(audio)} clips, batch {batch}, best of {repeats}:")
    for name, ts in times.items():
        s = min(ts)
        print(f"  {name:6}: {s:.2f} s ({', '.join(f'{t:.2f}' for t in ts)}) = {k * len(audio) / s:.0f} clip-prompts/s")
    ratio = min(times["fresh"]) / min(times["shared"])
    bound = work_bound(model, processor, audio, candidates)
    print(
        f"  shared is {ratio:.2f}× fresh (work bound {bound:.2f}×); one iteration scores in {min(times['shared']):.2f} s"
    )
    d = np.abs(fresh - shared)
    odds = np.abs((fresh[..., 0] - fresh[..., 1]) - (shared[..., 0] - shared[..., 1]))
    agree = np.mean((fresh[..., 0] > fresh[..., 1]) == (shared[..., 0] > shared[..., 1]))
    print(f"  shared vs fresh in {next(model.parameters()).dtype}: max |Δ score| {d.max():.3g}, "
          f"max |Δ log-odds| {odds.max():.3g}, decisions agree {agree:.4f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=150)
    ap.add_argument("--batch", type=int, default=256, help="batch for 0.2-1 s clips")
    ap.add_argument("--long-batch", type=int, default=32, help="batch for longer clips")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tiny", action="store_true", help="the lab base model on this machine (a check of the script)")
    ap.add_argument("--seconds", default="0", help="clip lengths, comma-separated; 0 = 0.2-1 s")
    ap.add_argument("--set", default="mixed", help="candidate sets, comma-separated: mixed, clip-first")
    args = ap.parse_args()
    from benchmarks.gpu_qwen2audio import clips
    from core.detectors import lab_base

    if args.tiny:
        from core.detectors.llm.qwen2_audio import load

        model, processor = load(AudioLLMSpec(model=str(lab_base.ensure_base_model())))
        device = "cpu"
    else:
        from benchmarks.gpu_qwen2audio import build_7b

        torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
        model, processor = build_7b()
        device = torch.cuda.get_device_name()
    print(f"on {device}")
    sets = {"mixed": CANDIDATES, "clip-first": CLIP_FIRST}
    short = clips(args.clips, seed=1)
    for seconds in (float(x) for x in args.seconds.split(",")):
        # longer clips: the shared audio work grows, the per-prompt question does not
        audio = [np.resize(a, int(16000 * seconds)) for a in short] if seconds else short
        for name in args.set.split(","):
            length = f"{seconds:g} s clips" if seconds else "0.2-1 s clips"
            batch = args.long_batch if seconds else args.batch
            measure(model, processor, audio, sets[name], batch, args.repeats, f"{name}, {length}")
    if not args.tiny:  # the same sums in fp32: the difference is rounding only
        model.float()
        few = short[:16]
        f32, s32, _ = run(model, processor, few, 16, 1, "fp32")
        print(f"mixed in fp32 on {len(few)} clips: max |Δ score| {np.abs(f32 - s32).max():.3g}")


if __name__ == "__main__":
    main()
