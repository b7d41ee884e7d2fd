"""Leave-one-speaker-out cross-validation of the lab base model on the embedded dataset, on this machine.

Default run settings (5 epochs, all training clips), one fold at a time; Silero VAD scored on the
same folds, untrained, for a paired per-group comparison. Prints the wall time, accuracy over
folds and the spread of accuracy across held-out groups.

`--planted`: instead, the planted-cue corpus (`core/data/planted.py`: noise with one tone per
group, labels drawn per group), 4 group folds and their shuffled twin, 40 epochs: what a leaky
split rewards when only recognising a group predicts its label.
    .venv/bin/python -m benchmarks.bench_cv [--parallel N] [--planted]
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parallel", type=int, default=0)
    ap.add_argument("--folds", default="loso")
    ap.add_argument("--planted", action="store_true", help="the planted-cue corpus, grouped vs shuffled folds")
    args = ap.parse_args()
    if args.planted:
        return planted(args.parallel)
    from benchmarks._common import bench_dataset

    bench_dataset()
    from core.analysis.compare import compare
    from core.analysis.groups import across_folds, per_fold, per_group
    from core.runs import cv
    from core.runs.train_config import TrainConfig
    from core.scoring import predictions

    t0 = time.perf_counter()
    cv_id = cv.create(TrainConfig(), cv.CVConfig(folds=args.folds, parallel=args.parallel), launch_worker=False)
    paths = cv.work_here(cv_id)
    wall = time.perf_counter() - t0
    ft, _ = predictions.load(paths[0])
    zs, _ = predictions.load(cv.zero_shot(cv_id, "silero-vad"))
    print(f"{cv_id}: {len(cv.info(cv_id)['folds'])} folds, {wall / 60:.1f} min wall on this machine")
    for name, t in (("lab base model, fine-tuned per fold", ft), ("Silero VAD, zero-shot", zs)):
        f = per_fold(t)
        acc, bacc = across_folds(f["accuracy"].tolist()), across_folds(f["balanced_accuracy"].tolist())
        g = per_group(t)
        speakers = g[g["label"] == "speech"]["accuracy"]
        print(
            f"{name}: accuracy over folds {acc['mean']:.3f} ± {acc['std']:.3f} (95% CI {acc['ci_lower']:.3f}–"
            f"{acc['ci_upper']:.3f}); balanced {bacc['mean']:.3f}; per speaker min {speakers.min():.3f}, "
            f"median {speakers.median():.3f}, max {speakers.max():.3f}; per source min "
            f"{g[g['label'] == 'nonspeech']['accuracy'].min():.3f}"
        )
        print("  worst groups: " + ", ".join(f"{r.group_id} {r.accuracy:.2f}" for r in g.head(4).itertuples()))
    c = compare(ft, zs)
    print(
        f"fine-tuned − Silero: {c.diff:+.3f} (95% CI clustered by group {c.ci_clustered[0]:+.3f}, {c.ci_clustered[1]:+.3f})"
    )


def planted(parallel: int) -> None:
    """Grouped and shuffled 4-fold CV of the lab base model on the planted-cue corpus."""
    import os
    import tempfile
    from pathlib import Path

    os.environ.setdefault("LAB_DATA_DIR", tempfile.mkdtemp(prefix="lab-bench-"))
    from sklearn.metrics import roc_auc_score

    from core.data.importers import import_dataset
    from core.data.planted import write_planted_corpus
    from core.runs import cv
    from core.runs.train_config import TrainConfig
    from core.scoring import predictions

    import_dataset("csv", write_planted_corpus(Path(os.environ["LAB_DATA_DIR"]) / "planted-src"), "planted-cue")
    grouped = cv.create(TrainConfig(dataset="planted-cue", epochs=40), cv.CVConfig(folds="4", parallel=parallel), False)
    shuffled = cv.create_twin(grouped, launch_worker=False)
    for name, cv_id in (("grouped folds", grouped), ("rows shuffled", shuffled)):
        t0 = time.perf_counter()
        t, _ = predictions.load(cv.work_here(cv_id)[0])
        speech = t["label"] == "speech"
        acc = ((t["p_speech"] >= 0.5) == speech).mean()
        auc = roc_auc_score(speech, t["logit"])
        print(f"{name}: out-of-fold accuracy {acc:.3f}, ROC-AUC {auc:.3f} ({len(t)} clips, "
              f"{(time.perf_counter() - t0) / 60:.1f} min)")  # fmt: skip


if __name__ == "__main__":
    main()
