"""CPU benchmark: scoring 8 candidate prompts on 150 dev clips, shared audio work vs fresh scoring.

Lab base model, embedded dataset. Fresh = the strongest per-prompt baseline a careful user
would write: the model loaded once, the clips in memory, each prompt scored by its own
batched `AudioLLMDetector.score` call (same batch size, same workers). Shared = one
`score_prompts` call (encoder once per batch, decoder work up to the question once per
distinct text before it). Prints prompts per minute, clip-prompts per second and the largest
difference between the two (they are the same computation).
    .venv/bin/python -m benchmarks.bench_prompts
"""

from __future__ import annotations

import time

import numpy as np


def main(n_clips: int = 150, repeats: int = 3) -> None:
    from benchmarks._common import bench_dataset
    from benchmarks.prompt_set import CANDIDATES
    from core.data.splits import select_clips
    from core.detectors import make_detector
    from core.detectors.llm import AudioLLMDetector, AudioLLMSpec
    from core.prompts.subset import stratified_subset

    ds = bench_dataset()
    dev = select_clips(ds, "bench", "dev")
    ids = stratified_subset(dev, n_clips, seed=0)
    audio = [ds.load_clip(c).samples for c in ids]
    base = make_detector("lab-base", batch_size=32)
    fresh_detectors = [
        AudioLLMDetector(
            AudioLLMSpec(model=base.spec.model, prompt=p.text, answers=p.answers, batch_size=32),
            base.model,
            base.processor,
        )  # fmt: skip
        for p in CANDIDATES
    ]
    base.score_prompts(audio[:8], 16000, CANDIDATES)  # warm-up
    timings = {"fresh": [], "shared": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        fresh = np.stack([d.score(audio, 16000) for d in fresh_detectors])
        timings["fresh"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        shared = base.score_prompts(audio, 16000, CANDIDATES)
        timings["shared"].append(time.perf_counter() - t0)
    k = len(CANDIDATES)
    print(f"{k} prompts × {len(audio)} clips, lab base model on CPU (best of {repeats}):")
    for name, ts in timings.items():
        s = min(ts)
        print(f"  {name:6}: {s:.2f} s = {60 * k / s:.0f} prompts/min, {k * len(audio) / s:.0f} clip-prompts/s")
    print(f"  shared is {min(timings['fresh']) / min(timings['shared']):.2f}× fresh; "
          f"max |Δ score| {np.abs(fresh - shared).max():.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
