"""How the detectors do on real recordings: FSDD's spoken digits against real recorded non-speech.

Speech: the Free Spoken Digit Dataset in ../shared (3,000 real recordings, six speakers, 8 kHz,
resampled). Non-speech: the six real recordings that ship in the pygame wheel (effects and a music
loop), cut into 0.5 s and 1.0 s windows. These are the recordings the embedded dataset's `rec-*`
groups vary, so the fine-tuned model has heard them: the non-speech side flatters it; the speech
side is new to every detector. Detectors: Silero, WebRTC, the lab base model, and the lab base
model after the default fine-tuning run on the embedded dataset.
    .venv/bin/python -m benchmarks.bench_real
"""

from __future__ import annotations

import time
from pathlib import Path


def nonspeech_windows(folder: Path, out: Path) -> list[dict]:
    """Windows of the packaged recordings as WAV files; one group per recording."""
    from core.data.audio import load_audio, write_wav
    from core.data.default_dataset import RECORDING_GROUPS

    rows = []
    for name in RECORDING_GROUPS:
        x = load_audio(folder / name).samples
        for seconds in (0.5, 1.0):
            n = int(seconds * 16000)
            for k, start in enumerate(range(0, len(x) - n + 1, n)):
                cid = f"real-{Path(name).stem}-{seconds}-{k}"
                rows.append({"clip_id": cid, "path": str(write_wav(out / f"{cid}.wav", x[start : start + n])),
                             "label": "nonspeech", "group_id": f"rec-{Path(name).stem}", "base_clip_id": cid})  # fmt: skip
    return rows


def main() -> None:
    import pandas as pd

    from benchmarks._common import bench_dataset
    from core.analysis.stats import balanced_accuracy_ci
    from core.data.datasets import load_dataset
    from core.data.importers import import_dataset
    from core.data.nonspeech import packaged_recordings_dir
    from core.data.splits import make_split, save_split
    from core.detectors import make_detector
    from core.paths import data_root, repo_root
    from core.runs import registry
    from core.runs.training import TrainConfig, train_run
    from core.scoring import predictions
    from core.scoring.evaluate import evaluate

    ds = bench_dataset(audit=True)
    fsdd = repo_root().parent / "shared" / "audio" / "fsdd"
    t0 = time.perf_counter()
    import_dataset("fsdd", fsdd, "fsdd-real", force=True)
    speech = load_dataset("fsdd-real").manifest
    out = data_root() / "real-nonspeech"
    out.mkdir(parents=True, exist_ok=True)
    rows = [*speech[["clip_id", "path", "label", "group_id", "base_clip_id"]].to_dict("records"),
            *nonspeech_windows(packaged_recordings_dir(), out)]  # fmt: skip
    manifest = out / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    import_dataset("csv", manifest, "real", force=True)
    real = load_dataset("real")
    save_split(real, "all", make_split(real.manifest, seed=0), {"seed": 0})
    m = real.manifest
    print(f"real set: {int((m['label'] == 'speech').sum())} speech clips (FSDD, 6 speakers), "
          f"{int((m['label'] == 'nonspeech').sum())} non-speech windows (6 recordings); built in "
          f"{time.perf_counter() - t0:.0f} s")  # fmt: skip

    run_id = registry.create_run(TrainConfig(dataset="default", split="bench"))
    t0 = time.perf_counter()
    train_run(registry.runs_dir() / run_id)
    print(f"default fine-tuning run on the embedded dataset: {time.perf_counter() - t0:.0f} s")
    adapter = str(registry.runs_dir() / run_id / "adapter")
    detectors = {
        "silero-vad": make_detector("silero-vad"),
        "webrtc-vad": make_detector("webrtc-vad"),
        "lab-base": make_detector("lab-base", batch_size=64),
        "lab-base fine-tuned (default run)": make_detector("lab-base", adapter=adapter, batch_size=64),
    }
    for name, det in detectors.items():
        table, _ = predictions.load(evaluate(real, "all", "all", det, name=f"real-{name.split()[0]}"))
        y = (table["label"] == "speech").to_numpy()
        says = (table["logit"] > 0).to_numpy()
        est, lo, hi = balanced_accuracy_ci(table["label"].to_numpy(), says == y, table["group_id"].to_numpy())
        print(f"  {name:34s} speech recall {says[y].mean():.3f}, non-speech recall {(~says[~y]).mean():.3f}, "
              f"balanced accuracy {est:.3f} (95% CI clustered by speaker/recording {lo:.3f}–{hi:.3f})")  # fmt: skip
    del ds


if __name__ == "__main__":
    main()
