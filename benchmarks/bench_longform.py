"""Long-form speed: post-processing + metrics over one hour at 100 frames/s, and Silero over one hour
of audio beside Silero's own `get_speech_timestamps` on the same audio, in the same process.

    .venv/bin/python -m benchmarks.bench_longform [--minutes 60] [--repeats 20]

1. A one-hour curve at 100 frames/s (360,000 values, a smoothed random walk) and a reference of
   ~700 turns: binarize (hysteresis, min durations, padding) + detection error with a 0.25 s collar,
   median of `repeats`; also one tuning grid (216 rules) over that hour.
2. One hour of audio (the embedded long-form recordings end to end, repeated as needed): the lab's
   native Silero curve (`SileroVAD.frame_curve`, what `longform score` runs) against
   `silero_vad.get_speech_timestamps` with the same model object, same torch threads, one after
   the other; real-time factors (seconds of compute per second of audio) and the curves' agreement.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def postprocessing(repeats: int) -> None:
    from core.longform.metrics import detection
    from core.longform.postprocess import Binarize, binarize
    from core.longform.tuning import Curve, tune

    rng = np.random.default_rng(0)
    n, step = 360_000, 0.01
    walk = np.convolve(rng.normal(0, 1, n), np.ones(50) / 50, mode="same")
    curve = 1 / (1 + np.exp(-4 * walk / walk.std()))
    edges = np.sort(rng.uniform(0, 3600, 1400)).reshape(-1, 2)
    rule = Binarize(0.6, 0.4, min_speech=0.1, min_silence=0.2, pad_onset=0.05, pad_offset=0.05)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        hyp = binarize(curve, step, rule, duration=3600.0)
        d = detection([edges], hyp, 3600.0, collar=0.25)
        times.append(time.perf_counter() - t0)
    print(f"post-processing + metrics, 1 h at 100 frames/s ({n:,} values, {len(edges)} reference turns, "
          f"{len(hyp)} hypothesis segments): median {1000 * np.median(times):.1f} ms "
          f"(min {1000 * min(times):.1f}, max {1000 * max(times):.1f}) over {repeats}; error rate {d.error_rate:.3f}")  # fmt: skip
    t0 = time.perf_counter()
    _, table = tune({"h": Curve(curve, step, 3600.0)}, {"h": [edges]}, collar=0.25)
    print(f"tuning grid over that hour: {len(table)} rules in {time.perf_counter() - t0:.2f} s")


def hour_of_audio(minutes: float) -> np.ndarray:
    """The embedded long-form recordings end to end (built from the synthetic default if none)."""
    from core.longform.dataset import list_longform, load_longform

    if not list_longform():
        from benchmarks._common import bench_dataset
        from core.longform.assemble import build_longform

        build_longform(bench_dataset(), "bench", "bench-long")
    lf = load_longform(list_longform()[0])
    need = int(minutes * 60 * 16000)
    parts, have = [], 0
    for rec in lf.ids() * 100:
        x = lf.load(rec)
        parts.append(x)
        have += len(x)
        if have >= need:
            break
    print(f"audio: {minutes:g} min from long-form set {lf.name!r}")
    return np.concatenate(parts)[:need]


def silero(minutes: float, rounds: int) -> None:
    import torch
    from silero_vad import get_speech_timestamps

    from core.detectors.vad import SileroVAD

    x = hour_of_audio(minutes)
    det = SileroVAD()
    print(f"torch threads: {torch.get_num_threads()} on {os.cpu_count()} cores")
    det.frame_curve(x[: 16000 * 10], 16000)  # warm-up
    lab, ref = [], []
    for _ in range(rounds):  # alternated, so drift of the machine hits both
        t0 = time.perf_counter()
        probs, _ = det.frame_curve(x, 16000)
        lab.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        get_speech_timestamps(torch.from_numpy(x), det.model)
        ref.append(time.perf_counter() - t0)
    seconds = len(x) / 16000
    a, b = float(np.median(lab)), float(np.median(ref))
    print(f"Silero over {seconds / 3600:.2f} h, median of {rounds} alternated rounds: lab frame curve {a:.1f} s "
          f"(RTF {a / seconds:.4f}; runs {', '.join(f'{t:.1f}' for t in lab)}), get_speech_timestamps {b:.1f} s "
          f"(RTF {b / seconds:.4f}; runs {', '.join(f'{t:.1f}' for t in ref)}); lab / theirs = {a / b:.2f}")  # fmt: skip
    print(f"chunks: {len(probs):,} probabilities at 32 ms")


def page(repeats: int) -> None:
    """The Timeline page on one one-hour recording (the embedded recordings end to end, references
    shifted with them) scored by Silero: seconds per rerun after a threshold move (AppTest: the
    script's run on the server, not the browser's drawing)."""
    import tempfile

    from streamlit.testing.v1 import AppTest

    from core.data.audio import write_wav
    from core.detectors.vad import SileroVAD
    from core.longform import curves as C
    from core.longform.dataset import list_longform, load_longform, save_longform

    lf = load_longform(list_longform()[0])
    os.environ["LAB_DATA_DIR"] = tempfile.mkdtemp(prefix="lab-bench-page-")
    pieces, turns, t = [], {}, 0.0
    for rec in lf.ids() * 100:
        if t >= 3600:
            break
        x = lf.load(rec)
        pieces.append(x)
        for spk, segs in lf.turns.get(rec, {}).items():
            turns.setdefault(spk, []).append(segs + t)
        t += len(x) / 16000
    hour = np.concatenate(pieces)
    path = write_wav(Path(os.environ["LAB_DATA_DIR"]) / "hour.wav", hour)
    ref = {"hour": {spk: np.concatenate(s) for spk, s in turns.items()}}
    save_longform("bench-hour", {"hour": (path, len(hour) / 16000)}, ref, {"kind": "benchmark"}, group_by="recording")
    table, meta = C.score_longform(load_longform("bench-hour"), SileroVAD(), "all")
    C.save_curves(table, meta, "bench-hour-silero")
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=300).run()
    at.switch_page("views/timeline.py").run()
    at.multiselect(key="tl_tables").set_value(["bench-hour-silero"]).run()
    for v in (0.45, 0.55):  # warm-up: first-use imports and caches
        at.slider(key="tl_onset").set_value(v).run()
    times = []
    for k in range(repeats):
        t0 = time.perf_counter()
        at.slider(key="tl_onset").set_value(0.3 + 0.5 * (k % 2) + 0.01 * k).run()
        times.append(time.perf_counter() - t0)
        assert not at.exception, at.exception
    print(f"Timeline page, one recording of {len(hour) / 57_600_000:.2f} h with Silero's curve ({len(table):,} frames): "
          f"a threshold move reruns in median {np.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}) "
          f"over {repeats} moves (AppTest, server side)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2, help="Silero: alternated rounds of each")
    ap.add_argument("--skip-silero", action="store_true")
    ap.add_argument("--page", action="store_true", help="also time the Timeline page on a one-hour recording")
    args = ap.parse_args()
    postprocessing(args.repeats)
    if not args.skip_silero:
        silero(args.minutes, args.rounds)
    if args.page:
        page(8)


if __name__ == "__main__":
    main()
