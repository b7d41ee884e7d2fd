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


def _design(axis: str, planted: tuple[float, float, float] | None = None) -> tuple[np.ndarray, float, float, float]:
    """The lab's default levels with a planted logistic ψ: levels, α, β (fit units) and lapse.

    `planted` (α, β, lapse) replaces the default curve (SNR α 0 dB, β 3 dB; duration α log10 120 ms,
    β 0.15; lapse 0.04), e.g. a threshold between two levels or no lapse at all.
    """
    if axis == "snr_db":
        x, curve = np.array([-10, -5, 0, 5, 10, 20.0]), (0.0, 3.0, 0.04)
    else:
        x, curve = np.array([30, 40, 80, 160, 200, 400, 500, 800, 1000.0]), (float(np.log10(120)), 0.15, 0.04)
    return (x, *(planted or curve))


def planted_threshold(axis: str, spread: float = 0.0, planted: tuple[float, float, float] | None = None) -> float:
    """The 75% point of the planted curve; with `spread`, of the average curve over clips (by quadrature)."""
    from core.analysis import psychometric_functions as pf
    from core.analysis import psychometrics as pm

    x, alpha, beta, lapse = _design(axis, planted)
    if not spread:
        return alpha + beta * float(pf.ppf("logistic", (0.75 - 0.5) / (0.5 - lapse)))
    u = pm.to_fit_units(axis, x)
    z, w = np.polynomial.hermite_e.hermegauss(81)
    grid = np.linspace(u.min() - 1, u.max() + 1, 40001)
    mean_curve = sum(wi / w.sum() * pm.psi("logistic", grid, alpha + spread * zi, beta, lapse) for zi, wi in zip(z, w))
    return float(np.interp(0.75, mean_curve, grid))


def _one_experiment(job: tuple) -> dict[str, bool]:
    """One simulated experiment: whether each interval of its fit holds the planted threshold."""
    from core.analysis import psychometrics as pm

    axis, units, spread, n_boot, seed, s, planted, truth = job
    x, alpha, beta, lapse = _design(axis, planted)
    u = pm.to_fit_units(axis, x)
    design_key = [int(round(v * 1000)) % 2**31 for v in planted] if planted else []
    rng = np.random.default_rng([seed, units, int(spread * 100), int(axis == "snr_db"), s, *design_key])
    shift = rng.normal(0, spread, (units, 1)) if spread else 0.0
    k = (rng.random((units, len(x))) < pm.psi("logistic", u[None, :], alpha + shift, beta, lapse)).astype(float)
    fit = pm.fit_counts(x, k, np.ones_like(k), axis, n_boot=n_boot, seed=s)
    hit = {  # None: an unreached, infinite bound
        m: bool((-np.inf if lo is None else lo) <= truth <= (np.inf if hi is None else hi))
        for m, (lo, hi) in fit.extra["ci_raw_fit_units"].items()
    }
    lo, hi = pm.to_fit_units(axis, np.array(fit.ci)) if not fit.bound else (np.nan, np.nan)
    return {**hit, "reported": bool(lo <= truth <= hi)}


def threshold_coverage(
    sims: int = 200,
    units: int = 60,
    n_boot: int = 1000,
    seed: int = 0,
    axis: str = "snr_db",
    spread: float = 0.0,
    workers: int = 1,
    planted: tuple[float, float, float] | None = None,
) -> dict[str, float]:
    """Share of simulated experiments whose 95% CI holds the planted threshold, for every interval a fit keeps.

    `units` base clips each answer once per level, at the lab's default levels (SNR −10 … +20 dB;
    durations 30 … 1000 ms, fitted on log10 ms). A logistic ψ with lapse 0.04: SNR threshold
    parameter α = 0 dB, slope β = 3 dB; duration α = log10(120 ms), β = 0.15 log10 units. With
    `spread` each base clip's α is shifted by N(0, spread²) (some clips are harder): the planted
    threshold is then that of the population's average curve. All intervals come from the same
    bootstrap replicates, read before the fit's range and step rules (which only widen them);
    "reported" is the fit's own CI after those rules (a threshold outside the range counts as a miss).
    `planted` = (α, β, lapse) plants another curve. Each experiment has its own seed, so `workers`
    processes give the same figures as one.
    """
    truth = planted_threshold(axis, spread, planted)  # once: with a spread it is a quadrature over a fine grid
    jobs = [(axis, units, spread, n_boot, seed, s, planted, truth) for s in range(sims)]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_one_experiment, jobs, chunksize=8))
    else:
        results = [_one_experiment(j) for j in jobs]
    return {m: float(np.mean([r[m] for r in results])) for m in results[0]}


def _rates(coverage: dict[str, float]) -> str:
    return " / ".join(f"{v:.1%} {m}" for m, v in coverage.items())


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
    ap.add_argument("--coverage-only", action="store_true", help="stop after the coverage simulations")
    ap.add_argument("--workers", type=int, default=1, help="processes for the coverage simulations")
    args = ap.parse_args()
    bootstrap_speed()
    for axis in ("snr_db", "duration_ms"):
        clip_spread = 3.0 if axis == "snr_db" else 0.15
        for units, spread in ((20, 0.0), (40, 0.0), (60, 0.0), (20, clip_spread), (60, clip_spread)):
            t0 = time.perf_counter()
            c = threshold_coverage(args.coverage_sims, units, axis=axis, spread=spread, workers=args.workers)
            print(
                f"{axis} threshold, {units} base clips, clip spread {spread:g}: planted value inside the 95% CI in "
                f"{_rates(c)} of {args.coverage_sims} simulations ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    # other curves: a threshold in the 5 … 10 dB gap with a steeper slope (many fits are steps); no lapse
    for units, planted in ((30, (5.0, 2.0, 0.04)), (20, (0.0, 3.0, 0.0))):
        c = threshold_coverage(args.coverage_sims, units, workers=args.workers, planted=planted)
        print(
            f"snr_db threshold, {units} base clips, α, β, lapse = {planted}: inside the 95% CI in {_rates(c)}",
            flush=True,
        )
    if args.coverage_only:
        return

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
