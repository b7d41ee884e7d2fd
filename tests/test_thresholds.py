import numpy as np
import pytest

from core.analysis.thresholds import ThresholdIndex


def brute(y, z, t):
    pred = z > t
    tp, tn = np.sum(pred & y), np.sum(~pred & ~y)
    return tp, tn, (tp / y.sum() + tn / (~y).sum()) / 2, (tp + tn) / len(y)


@pytest.mark.parametrize("seed", range(3))
def test_vectorised_metrics_equal_a_full_pass(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(5000) < 0.4
    z = rng.normal(0, 1, 5000) + 1.5 * y
    z[:50] = 0.25  # ties exactly at a threshold
    idx = ThresholdIndex.build(y, z)
    ts = np.array([-3, -0.5, 0.0, 0.25, 0.7, 4])
    m = idx.metrics(ts)
    for i, t in enumerate(ts):
        tp, tn, bacc, acc = brute(y, z, t)
        assert (m["tp"][i], m["tn"][i]) == (tp, tn)
        assert m["balanced_accuracy"][i] == pytest.approx(bacc) and m["accuracy"][i] == pytest.approx(acc)
    # temperature: decision on z / T
    m2 = idx.metrics(0.4, temperature=3.0)
    assert m2["tp"] == brute(y, z / 3.0, 0.4)[0]


def test_best_threshold_maximises_balanced_accuracy():
    rng = np.random.default_rng(9)
    y = rng.random(400) < 0.5
    z = rng.normal(0, 1, 400) + 2 * y - 0.7
    idx = ThresholdIndex.build(y, z)
    t = idx.best()
    grid = np.linspace(-5, 5, 4001)
    assert idx.metrics(t)["balanced_accuracy"] >= max(brute(y, z, g)[2] for g in grid) - 1e-12
