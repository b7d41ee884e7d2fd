"""Transfer to real recordings: every offline detector on speech and non-speech the lab base model
never heard, with balanced accuracy clustered by group (speaker or source) and ROC-AUC.

Held out from the lab base model, which trains on the train part of the real-voice set's split
"default" (`core.detectors.lab_base`):
  voices held out: the dev and test parts of that split — speakers (voice actors, spoken letters
                   and syllables, codec2 speakers) against music, samples, game and desktop sounds
                   of other sources;
  FSDD:            the Free Spoken Digit Dataset in ../shared (6 speakers, 8 kHz), held out
                   entirely, against the same held-out non-speech.
Also times the real-voice build and the base model's retraining (`--retrain`, into a temporary
folder; the committed weights are not touched). Silero and WebRTC are pretrained VADs that ship in
their packages; lab-base is the committed tiny Qwen2-Audio scored by its A/B logits.
    .venv/bin/python -m benchmarks.bench_voices [--retrain]     (needs ./run.sh's Debian packages)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def report(name: str, labels: np.ndarray, logit: np.ndarray, groups: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score

    from core.analysis.stats import balanced_accuracy_ci

    y = labels == "speech"
    says = logit > 0
    est, lo, hi = balanced_accuracy_ci(labels, says == y, groups)
    auc = roc_auc_score(y, logit)
    print(f"  {name:12s} balanced accuracy {est:.3f} [{lo:.3f}, {hi:.3f}]  ROC-AUC {auc:.3f}  "
          f"speech recall {says[y].mean():.3f}  non-speech recall {(~says[~y]).mean():.3f}")  # fmt: skip
    return {"ba": est, "lo": lo, "hi": hi, "auc": auc}


def held_out_sets():
    """{title: (clips, labels, groups)} of what the base model never heard."""
    import pandas as pd

    from core.data.datasets import load_dataset
    from core.data.importers import import_dataset
    from core.data.voices_dataset import study_split
    from core.paths import repo_root

    voices = load_dataset("voices")
    part = study_split(voices).to_numpy()
    held = voices.manifest[part != "train"]
    print(f"held-out voices: {len(held)} clips, {held.groupby('label')['group_id'].nunique().to_dict()} groups "
          f"(the base model's pool: {voices.manifest[part == 'train'].groupby('label')['group_id'].nunique().to_dict()})")  # fmt: skip
    import_dataset("fsdd", repo_root().parent / "shared" / "audio" / "fsdd", "fsdd", force=True)
    fsdd = load_dataset("fsdd")
    nonspeech = held[held["label"] == "nonspeech"]
    held_clips = [voices.load_clip(c).samples for c in held["clip_id"]]
    ns_clips = [voices.load_clip(c).samples for c in nonspeech["clip_id"]]
    fsdd_clips = [fsdd.load_clip(c).samples for c in fsdd.manifest["clip_id"]]
    both = pd.concat([fsdd.manifest, nonspeech])
    return {
        "voices held out": (held_clips, held["label"].to_numpy(), held["group_id"].to_numpy()),
        "FSDD vs held-out non-speech": (fsdd_clips + ns_clips, both["label"].to_numpy(), both["group_id"].to_numpy()),
    }


def main() -> None:
    import os
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--retrain", action="store_true", help="also time the base model's retraining (about 2 min)")
    ap.add_argument("--finetune", action="store_true",
                    help="also the default fine-tuning run (LoRA, default settings) on the study split's train part")  # fmt: skip
    args = ap.parse_args()
    os.environ.setdefault("LAB_DATA_DIR", tempfile.mkdtemp(prefix="lab-bench-"))
    os.environ.setdefault("LAB_RESULTS_DIR", tempfile.mkdtemp(prefix="lab-bench-results-"))
    from core.data.voices_dataset import build_voices
    from core.detectors import CHECKPOINT_DETECTORS, DETECTORS, make_detector

    t0 = time.perf_counter()
    build_voices(force=True)
    print(f"real-voice set built in {time.perf_counter() - t0:.1f} s")
    models = {}
    if args.retrain:
        from core.detectors.lab_base import train_base_model

        t0 = time.perf_counter()
        models["lab-base (retrained)"] = train_base_model(Path(tempfile.mkdtemp(prefix="lab-base-")) / "lab-base")
        print(f"lab base model retrained in {time.perf_counter() - t0:.1f} s")
    adapters = {}
    if args.finetune:
        from core.data.audit import audit_split
        from core.data.datasets import load_dataset
        from core.runs import registry
        from core.runs.training import TrainConfig, train_run

        t0 = time.perf_counter()
        audit = audit_split(load_dataset("voices"), "default")  # training refuses an unaudited split
        print(f"audit of the study split: {'LEAKY' if audit.leaky else 'clean'} {audit.counts()} "
              f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
        t0 = time.perf_counter()
        run_id = registry.create_run(TrainConfig(dataset="voices", split="default"))
        train_run(registry.runs_dir() / run_id)
        adapters["lab-base fine-tuned (default run)"] = str(registry.runs_dir() / run_id / "adapter")
        print(f"default fine-tuning run on the real-voice train part: {time.perf_counter() - t0:.0f} s")
    sets = held_out_sets()
    offline = [n for n in DETECTORS if n not in CHECKPOINT_DETECTORS]
    said: dict[str, np.ndarray] = {}
    for name in offline + list(models) + list(adapters):
        if name in models:
            det = make_detector("audio-llm", model=str(models[name]))
        elif name in adapters:
            det = make_detector("lab-base", adapter=adapters[name])
        else:
            det = make_detector(name)
        for title, (clips, labels, groups) in sets.items():
            print(title)
            logits = det.score(clips, 16000)
            report(name, labels, logits[:, 0] - logits[:, 1], groups)
            if title == "voices held out":
                said[name] = logits[:, 0] - logits[:, 1]
    study_power(said)


def study_power(said: dict[str, np.ndarray]) -> None:
    """The default study's question on its test part: is one detector better than another? Paired
    balanced-accuracy differences with intervals clustered by group (`paired_balanced_accuracy_diff`)."""
    from core.analysis.stats import paired_balanced_accuracy_diff
    from core.data.datasets import load_dataset
    from core.data.voices_dataset import study_split

    voices = load_dataset("voices")
    part = study_split(voices).to_numpy()
    held = voices.manifest[part != "train"]
    test = part[part != "train"] == "test"
    labels, groups = held["label"].to_numpy()[test], held["group_id"].to_numpy()[test]
    y = labels == "speech"
    print(f"default study's test part: {test.sum()} clips, "
          f"{pd_groups(labels, groups)} groups; paired differences (95% CI clustered by group)")  # fmt: skip
    names = list(said)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            d, lo, hi = paired_balanced_accuracy_diff(labels, (said[a][test] > 0) == y, (said[b][test] > 0) == y,
                                                      groups)  # fmt: skip
            verdict = "excludes 0" if lo > 0 or hi < 0 else "includes 0"
            print(f"  {a} − {b}: {d:+.3f} [{lo:+.3f}, {hi:+.3f}] ({verdict})")


def pd_groups(labels: np.ndarray, groups: np.ndarray) -> dict[str, int]:
    return {lab: len(set(groups[labels == lab])) for lab in sorted(set(labels))}


if __name__ == "__main__":
    main()
