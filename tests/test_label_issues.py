"""Label issues: the lab's ranking is cleanlab's on the same out-of-sample probabilities, and planted
label flips (a known 8% of each group's labels) come out on top."""

import numpy as np
import pandas as pd
import pytest

from core.analysis.label_issues import find_label_issues, group_quality
from core.errors import LabError


def _planted(seed=0, groups=30, per=40, flip=0.08):
    """Out-of-fold-like scores from a known truth; `flip` of each group's labels flipped."""
    rng = np.random.default_rng(seed)
    g = np.repeat([f"g{i}" for i in range(groups)], per)
    truth = rng.random(len(g)) < 0.5
    z = np.where(truth, 1, -1) * rng.gamma(2.0, 1.5, len(g))  # mostly confident, some hard clips
    p = 1 / (1 + np.exp(-z))
    flipped = np.zeros(len(g), bool)
    for k in range(groups):  # stratified by group: the same share in every group
        idx = np.flatnonzero(g == f"g{k}")
        flipped[rng.choice(idx, int(round(flip * per)), replace=False)] = True
    label = np.where(truth ^ flipped, "speech", "nonspeech")
    table = pd.DataFrame({"clip_id": [f"c{i}" for i in range(len(g))], "group_id": g, "label": label, "p_speech": p})
    return table, flipped


def test_ranking_equals_cleanlab_and_finds_planted_flips():
    from cleanlab.filter import find_label_issues as cl_find

    table, flipped = _planted()
    issues = find_label_issues(table)
    labels = (table["label"] == "speech").to_numpy(int)
    probs = np.column_stack([1 - table["p_speech"], table["p_speech"]])
    theirs = cl_find(labels, probs, filter_by="prune_by_noise_rate", return_indices_ranked_by="self_confidence")
    ours = issues[issues["flagged"]]["clip_id"].tolist()
    assert ours == table["clip_id"].to_numpy()[theirs].tolist()
    top = set(issues["clip_id"].head(2 * flipped.sum()))
    caught = np.isin(table["clip_id"][flipped], list(top)).mean()
    assert caught >= 0.8
    assert (issues.loc[issues["flagged"], "suggested"] != issues.loc[issues["flagged"], "label"]).mean() > 0.8


def test_a_group_with_many_wrong_labels_stands_out():
    table, _ = _planted(seed=1, flip=0.02)
    bad = table["group_id"] == "g7"
    table.loc[bad, "label"] = np.where(table.loc[bad, "label"] == "speech", "nonspeech", "speech")  # all flipped
    q = group_quality(find_label_issues(table))
    assert q.iloc[0]["group_id"] == "g7" and q.iloc[0]["times_overall"] > 5


def test_bad_tables_are_refused():
    table, _ = _planted()
    with pytest.raises(LabError, match="speech or nonspeech"):
        find_label_issues(table.assign(label="music"))
    with pytest.raises(LabError, match="p_speech"):
        find_label_issues(table.drop(columns="p_speech"))
    with pytest.raises(LabError, match="both labels"):
        find_label_issues(table.assign(label="speech"))
