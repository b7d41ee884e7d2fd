"""Label issues on real recordings with planted flips: how many the ranking finds, from which scores.

Two planted sets (8% of each group's labels flipped; clips the lab base model learnt from are never
flipped, since it remembers their true labels): the real-voice set, and FSDD's speech (600 clips,
6 speakers, never heard by the lab base model) with the real-voice set's non-speech. Each is
scored out of sample two ways through a grouped 4-fold cross-validation: Silero zero-shot (the
CV's zero-shot table), and the lab base model fine-tuned on each fold's training groups (LoRA,
`--epochs`), scored on the held-out fold. Prints, per set and scores: planted flips in the top 2×
their count, how many flips the scores can reveal at all (the detector sides with the true label),
recall among those, and the time. Runs in a temporary data folder.
    .venv/bin/python -m benchmarks.bench_label_issues [--epochs 2] [--skip-finetune]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--skip-finetune", action="store_true")
    ap.add_argument("--fsdd", default=str(Path(__file__).resolve().parents[2] / "shared" / "audio" / "fsdd"))
    a = ap.parse_args()
    os.environ.setdefault("LAB_DATA_DIR", tempfile.mkdtemp(prefix="bench-li-"))
    import pandas as pd

    from core.analysis.label_issues import find_label_issues, flips_the_scores_can_reveal, planted_recall
    from core.data.importers import import_dataset
    from core.data.merge import merge_datasets
    from core.data.planted_flips import plant_flips, planted_truth
    from core.data.voices_dataset import build_voices
    from core.runs import cv
    from core.runs.train_config import TrainConfig
    from core.scoring import predictions

    repo = Path(__file__).resolve().parents[1]
    base = set(pd.read_csv(repo / "models" / "lab-base" / "training_manifest.csv")["clip_id"])
    build_voices("voices")
    import_dataset("fsdd", a.fsdd, "fsdd", force=True)
    merge_datasets("fsdd-mix", [("fsdd", "speech", 600), ("voices", "nonspeech", 0)])
    for source, seed in (("voices", 0), ("fsdd-mix", 1)):
        ds = plant_flips(source, f"{source}-flips", 0.08, seed, exclude_ids=base)
        truth = planted_truth(ds)
        ways = [("silero-vad zero-shot", cv.CVConfig(folds="4", detector="silero-vad"))]
        if not a.skip_finetune:
            ways.append((f"lab-base fine-tuned per fold ({a.epochs} epochs)", cv.CVConfig(folds="4", parallel=2)))
        for label, cfg in ways:
            t0 = time.perf_counter()
            cv_id = cv.create(TrainConfig(dataset=ds.name, epochs=a.epochs), cfg, launch_worker=not cfg.detector)
            if cfg.detector:
                path = cv.zero_shot(cv_id, cfg.detector)
            else:
                while cv.status(cv_id)["state"] not in ("finished", "failed", "cancelled"):
                    time.sleep(2)
                path = predictions.resolve(f"{cv_id}-oof-s0")
            table, _ = predictions.load(path)
            r = planted_recall(find_label_issues(table), truth["clip_id"])
            seen = flips_the_scores_can_reveal(table, truth)
            top = set(find_label_issues(table)["clip_id"].head(r["top"]))
            among = sum(c in top for c in seen.index[seen]) / max(1, int(seen.sum()))
            print(f"{ds.name} ({len(ds.manifest)} clips, {r['planted']} flips) · {label}: {r['caught']}/{r['planted']} "
                  f"in the top {r['top']} ({r['recall_at_top']:.0%}); revealable {int(seen.sum())}, of which "
                  f"{among:.0%} in the top; flagged {r['flagged']} ({r['flag_precision']:.0%} planted); "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
