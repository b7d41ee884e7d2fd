"""Prints the threshold slider's metric recompute time at 10^4, 10^5 and 10^6 predictions
(target < 50 ms at 10^6) and the temperature-scaling fit time.

Usage: .venv/bin/python -m benchmarks.bench_thresholds
"""

from __future__ import annotations

import time

import numpy as np

from core.analysis.calibration import TemperatureScaling
from core.analysis.thresholds import ThresholdIndex


def main() -> None:
    rng = np.random.default_rng(0)
    for n in (10**4, 10**5, 10**6):
        y = rng.random(n) < 0.5
        z = rng.normal(0, 2, n) + 2 * y
        t0 = time.perf_counter()
        idx = ThresholdIndex.build(y, z)
        build = time.perf_counter() - t0
        ts = rng.uniform(-4, 4, 200)
        t0 = time.perf_counter()
        for t in ts:
            idx.metrics(t, temperature=1.3)
        move = (time.perf_counter() - t0) / len(ts)
        t0 = time.perf_counter()
        TemperatureScaling().fit(z, y)
        fit = time.perf_counter() - t0
        print(
            f"n={n:>8}: index build {build * 1e3:7.1f} ms, one slider move {move * 1e3:7.3f} ms, "
            f"temperature fit {fit * 1e3:8.1f} ms"
        )


if __name__ == "__main__":
    main()
