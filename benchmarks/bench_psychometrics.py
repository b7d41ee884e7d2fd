"""Psychometric thresholds of real detectors on the embedded dataset, and the bootstrap's speed.

Builds a condition set from every clean 1 s clip of the embedded dataset (80 speech and 80
non-speech base clips × 9 durations × clean + 6 SNRs in white noise), scores it with Silero
VAD (a model no one here wrote) and the lab base model, and prints DT75 (clean clips) and
SNR-75 (1000 ms and 200 ms clips) with 95% CIs from 1,000 bootstrap resamples of base clips.

Usage: .venv/bin/python -m benchmarks.bench_psychometrics [--detectors silero-vad lab-base]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def bootstrap_speed() -> None:
    from core.analysis import psychometrics as pm

    rng = np.random.default_rng(0)
    for axis, x, units in (
        ("snr_db", np.array([-10, -5, 0, 5, 10, 20.0]), 40),
        ("duration_ms", np.array([20, 40, 80, 160, 200, 400, 500, 800, 1000.0]), 160),
    ):
        u = pm.to_fit_units(axis, x)
        p = pm.psi("logistic", u, np.median(u), np.ptp(u) / 6, 0.03)
        k = (rng.random((units, len(x))) < p).astype(float)
        times = []
        for s in range(5):
            t0 = time.perf_counter()
            pm.fit_counts(x, k, np.ones_like(k), axis, n_boot=1000, seed=s)
            times.append(time.perf_counter() - t0)
        print(
            f"fit + 1,000-resample bootstrap, {len(x)} levels × {units} base clips ({axis}): "
            f"median {np.median(times):.2f} s (target < 2 s)"
        )


def threshold_coverage(sims: int = 200, units: int = 60, n_boot: int = 1000, seed: int = 0) -> float:
    """Fraction of simulated experiments whose 95% CI holds the planted SNR-75.

    Responses drawn from a logistic ψ with threshold parameter α = 0 dB, slope β = 3 dB and
    lapse 0.04, `units` base clips × 6 SNRs (−10 … +20 dB), each clip answering once per SNR.
    """
    from core.analysis import psychometric_functions as pf
    from core.analysis import psychometrics as pm

    rng = np.random.default_rng(seed)
    snr = np.array([-10, -5, 0, 5, 10, 20.0])
    alpha, beta, lapse = 0.0, 3.0, 0.04
    truth = alpha + beta * pf.ppf("logistic", (0.75 - 0.5) / (0.5 - lapse))
    p = pm.psi("logistic", snr, alpha, beta, lapse)
    hits = 0
    for s in range(sims):
        k = (rng.random((units, len(snr))) < p).astype(float)
        fit = pm.fit_counts(snr, k, np.ones_like(k), "snr_db", n_boot=n_boot, seed=s)
        hits += fit.ci[0] <= truth <= fit.ci[1]
    return hits / sims


def gee_coverage(sims: int = 300, clusters: int = 20, rho: float = 0.4, seed: int = 0) -> float:
    """Fraction of simulations whose 95% CI of the duration × SNR interaction holds the planted one.

    Each cluster (a base clip) answers at 5 durations × 4 SNRs; its answers are correlated through
    a Gaussian copula (latent correlation `rho`), so the marginal model is exactly the logistic one
    the GEE estimates: logit P = −1 + 0.3·log2 d + 0.05·snr + 0.04·log2 d·snr.
    """
    import pandas as pd
    from scipy import stats as sps

    from core.analysis import psychometrics as pm

    rng = np.random.default_rng(seed)
    d, s = np.meshgrid([20, 80, 200, 500, 1000.0], [-10, 0, 10, 20.0])
    d, s = d.ravel(), s.ravel()
    p = 1 / (1 + np.exp(-(-1.0 + 0.3 * np.log2(d) + 0.05 * s + 0.04 * np.log2(d) * s)))
    hits = 0
    for _ in range(sims):
        z = np.sqrt(rho) * rng.normal(size=(clusters, 1)) + np.sqrt(1 - rho) * rng.normal(size=(clusters, len(p)))
        ok = sps.norm.cdf(z) < p  # each answer right with its marginal probability, correlated within the clip
        label = np.where(np.arange(clusters) % 2, "speech", "nonspeech")[:, None].repeat(len(p), 1)
        logit = np.where(ok == (label == "speech"), 1.0, -1.0)
        t = pd.DataFrame({"label": label.ravel(), "logit": logit.ravel(), "duration_ms": np.tile(d, clusters),
                          "snr_db": np.tile(s, clusters), "base_clip_id": np.repeat(np.arange(clusters), len(p))})  # fmt: skip
        c = pm.interaction_glm(t)["coefficients"].set_index("term").loc["log2_duration:snr_db"]
        hits += c["ci_lower"] <= 0.04 <= c["ci_upper"]
    return hits / sims


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--detectors", nargs="+", default=["silero-vad", "lab-base"])
    ap.add_argument("--bases-per-label", type=int, default=80)
    ap.add_argument("--coverage-sims", type=int, default=200)
    args = ap.parse_args()
    bootstrap_speed()
    t0 = time.perf_counter()
    rate = threshold_coverage(args.coverage_sims)
    print(
        f"planted SNR-75 inside the 95% CI in {rate:.1%} of {args.coverage_sims} simulations "
        f"(target ≥ 90%; {time.perf_counter() - t0:.0f} s)"
    )

    from benchmarks._common import bench_dataset
    from core.analysis import psychometrics as pm
    from core.data import conditions as cond
    from core.data.datasets import load_dataset
    from core.detectors import make_detector
    from core.scoring.evaluate import evaluate
    from core.scoring.predictions import load

    ds = bench_dataset()
    t0 = time.perf_counter()
    spec = cond.ConditionSpec(bases_per_label=args.bases_per_label, noise="white")
    cset = cond.generate(ds, "bench", "all", "bench-psycho", spec, force=True)
    print(
        f"condition set: {len(cset.manifest)} clips from {cset.info['base_clips']} base clips "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    cset = load_dataset("bench-psycho")
    for name in args.detectors:
        t0 = time.perf_counter()
        table, _ = load(evaluate(cset, "conditions", "test", make_detector(name), batch_size=64))
        print(f"\n{name}: scored {len(table)} clips in {time.perf_counter() - t0:.1f} s")
        clean = table[table["snr_db"].isna()]
        ((_, fit, note),) = pm.fit_table(clean, "duration_ms")
        print(
            f"  clean clips: {fit.label() if fit else note}  (lapse {fit.lapse:.3f}, deviance {fit.deviance:.1f} "
            f"on {fit.df} df, p {fit.p_deviance:.2f})"
        )
        for dur in (1000, 200):
            sub = table[table["duration_ms"] == dur]
            ((_, fit, note),) = pm.fit_table(sub, "snr_db")
            print(f"  {dur} ms clips: {fit.label() if fit else note}  (lapse {fit.lapse:.3f}, p {fit.p_deviance:.2f})")
        g = pm.interaction_glm(table)
        print(f"  GEE {g['formula']}: interaction p = {g['interaction_p']:.2g}, McFadden R² = {g['mcfadden_r2']:.3f}")


if __name__ == "__main__":
    main()
