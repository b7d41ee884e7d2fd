"""Label issues on real recordings with planted flips (8% of each group's labels), scored out of
sample through a grouped cross-validation: the flips come out on top, and the lab's ranking is
cleanlab's on the same out-of-fold probabilities (issue #34's check)."""

import numpy as np
import pandas as pd

from core.analysis.label_issues import find_label_issues, flips_the_scores_can_reveal, planted_recall
from core.data.merge import merge_datasets
from core.data.planted_flips import plant_flips, planted_truth
from core.runs import cv
from core.runs.train_config import TrainConfig
from core.scoring import predictions
from tests.conftest import REPO


def _base_model_clips() -> set[str]:
    """Clips the lab base model learnt from: never flipped, since it remembers their true labels."""
    return set(pd.read_csv(REPO / "models" / "lab-base" / "training_manifest.csv")["clip_id"])


def _check(name: str) -> dict:
    from cleanlab.filter import find_label_issues as cl_find

    cv_id = cv.create(TrainConfig(dataset=name), cv.CVConfig(folds="4", detector="silero-vad"), launch_worker=False)
    table, meta = predictions.load(cv.zero_shot(cv_id, "silero-vad"))
    assert meta["part"] == "oof" and meta["zero_shot"] and table["clip_id"].is_unique
    issues = find_label_issues(table)
    labels = (table["label"] == "speech").to_numpy(int)
    probs = np.column_stack([1 - table["p_speech"], table["p_speech"]])
    theirs = cl_find(labels, probs, filter_by="prune_by_noise_rate", return_indices_ranked_by="self_confidence")
    assert issues[issues["flagged"]]["clip_id"].tolist() == table["clip_id"].to_numpy()[theirs].tolist()
    truth = planted_truth(predictions_dataset(meta))
    r = planted_recall(issues, truth["clip_id"])
    seen = flips_the_scores_can_reveal(table, truth)
    print(f"\n{name}: {r['caught']} of {r['planted']} planted flips in the top {r['top']} ({r['recall_at_top']:.0%}); "
          f"{int(seen.sum())} revealable by the scores; flagged {r['flagged']} ({r['flag_precision']:.0%} planted)")  # fmt: skip
    return r


def predictions_dataset(meta):
    from core.data.datasets import load_dataset

    return load_dataset(meta["dataset"])


def test_planted_flips_in_the_real_voice_set_come_out_on_top(voices_ds):
    ds = plant_flips(voices_ds.name, "voices-flips", share=0.08, seed=0, exclude_ids=_base_model_clips())
    assert ds.info["flipped"] >= 50
    assert _check(ds.name)["recall_at_top"] >= 0.8


def test_planted_flips_in_an_fsdd_set_come_out_on_top(voices_ds, fsdd_dir):
    from core.data.importers import import_dataset

    import_dataset("fsdd", fsdd_dir, "fsdd-li", force=True)
    mixed = merge_datasets("fsdd-mix", [("fsdd-li", "speech", 600), (voices_ds.name, "nonspeech", 0)])
    assert set(mixed.manifest["label"]) == {"speech", "nonspeech"}
    ds = plant_flips(mixed.name, "fsdd-flips", share=0.08, seed=1, exclude_ids=_base_model_clips())
    assert _check(ds.name)["recall_at_top"] >= 0.8
