"""Coverage of 95% intervals for a paired accuracy difference when clips are clustered in groups.

Clips of a group share random effects (a speaker that both models find hard, u_g; one model
better on some groups and worse on others, v_g), set so that the intraclass correlation of the
per-clip difference is `icc` (0.3 by default, solved numerically). Prints, at each number of
groups, the coverage of: the cluster-robust t interval the lab reports (`clustered_mean_ci`),
the percentile bootstrap over groups it replaced, and the naive bootstrap over clips.

With --proportion it simulates one detector's accuracy instead: per-group accuracies drawn from
a Beta (or, with --shape logit-normal, a normal on the logit scale) around a true mean with
intraclass correlation `icc`, 6–18 clips a group, and prints the coverage of the interval the lab
reports (`clustered_accuracy_ci`: the union of Korn-Graubard's and the beta-binomial posterior's),
of each part alone, and of the symmetric cluster-robust t it replaced (and how often that one
left [0, 1]); --balanced does the same for the balanced accuracy over class-pure groups.

Usage: .venv/bin/python -m benchmarks.bench_coverage [--sims 1000] [--groups 10 20 50] [--icc 0.3]
       .venv/bin/python -m benchmarks.bench_coverage --proportion [--balanced] [--shape logit-normal] [--means 0.7 0.9]
       .venv/bin/python -m benchmarks.bench_coverage --power
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

from core.analysis.stats import (
    clustered_mean_ci,
    groups_for_power,
    interval_parts,
    paired_bootstrap_diff,
    paired_clustered_diff,
)

# P(correct) = expit(base + u_g ± v_g/2) for A (+) and B (−); one uniform per clip for both models
BASE_A, BASE_B, GROUP_SD = 1.2, 0.8, 1.2


def _moments(model_sd: float, n_nodes: int = 121) -> tuple[float, float, float]:
    """(E[p_A − p_B], Var over groups of p_A − p_B, E|p_A − p_B|) by Gauss–Hermite quadrature."""
    x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    w = w / w.sum()
    ww = w[:, None] * w[None, :]
    diff = expit(BASE_A + GROUP_SD * x[:, None] + model_sd * x[None, :] / 2) - expit(
        BASE_B + GROUP_SD * x[:, None] - model_sd * x[None, :] / 2
    )
    mean = float(np.sum(ww * diff))
    return mean, float(np.sum(ww * diff**2)) - mean**2, float(np.sum(ww * np.abs(diff)))


def icc_of_difference(model_sd: float) -> float:
    """ICC of d = correct_A − correct_B: between-group variance of E[d | g] over Var(d).

    With one shared uniform per clip, d is ±1 with probability |p_A − p_B| and 0 otherwise,
    so Var(d) = E|p_A − p_B| − (E[p_A − p_B])².
    """
    mean, between, absolute = _moments(model_sd)
    return between / (absolute - mean**2)


def model_sd_for(icc: float) -> float:
    return brentq(lambda s: icc_of_difference(s) - icc, 0.05, 20.0)


def simulate(rng, n_groups: int, per_group: int, model_sd: float):
    groups = np.repeat(np.arange(n_groups), per_group)
    u = rng.normal(0, GROUP_SD, n_groups)[groups]
    v = rng.normal(0, model_sd, n_groups)[groups]
    shared = rng.random(len(groups))
    return shared < expit(BASE_A + u + v / 2), shared < expit(BASE_B + u - v / 2), groups


def coverage(
    sims: int = 1000, n_groups: int = 20, per_group: int = 20, icc: float = 0.3, n_boot: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Fraction of simulations whose 95% interval holds the true difference, for each interval."""
    rng = np.random.default_rng(seed)
    model_sd = model_sd_for(icc)
    truth = _moments(model_sd)[0]
    hits = {"cluster_t": 0, "group_bootstrap": 0, "naive": 0}
    for i in range(sims):
        a, b, g = simulate(rng, n_groups, per_group, model_sd)
        _, lo, hi = paired_clustered_diff(a, b, g)
        hits["cluster_t"] += lo <= truth <= hi
        if n_boot:
            _, lo, hi = paired_bootstrap_diff(a, b, g, n_boot=n_boot, seed=i)
            hits["group_bootstrap"] += lo <= truth <= hi
            _, lo, hi = paired_bootstrap_diff(a, b, None, n_boot=n_boot, seed=i)
            hits["naive"] += lo <= truth <= hi
    out = {k: v / sims for k, v in hits.items()}
    return out | {"truth": truth, "model_sd": model_sd}


def planned_power(sims: int = 1000, icc: float = 0.3, per_group: int = 20, seed: int = 0) -> dict[str, float]:
    """Collect the groups `groups_for_power` asks for (true δ, ψ and ICC), run the lab's clustered test:
    the fraction of simulations whose interval excludes 0 is the power the plan promised (80%)."""
    rng = np.random.default_rng([seed, per_group])
    model_sd = model_sd_for(icc)
    delta, _, psi = _moments(model_sd)
    clips, groups = groups_for_power(delta, psi, icc, per_group)
    rejected = 0
    for _ in range(sims):
        a, b, g = simulate(rng, groups, per_group, model_sd)
        _, lo, hi = paired_clustered_diff(a, b, g)
        rejected += lo > 0 or hi < 0
    return {"delta": delta, "discordant": psi, "groups": groups, "clips": clips, "power": rejected / sims}


def _group_accuracies(rng, mean: float, icc: float, shape: str, size) -> tuple[np.ndarray, float]:
    """Per-group accuracies around `mean` with intraclass correlation `icc`, and their true mean.

    beta: Beta(mean·s, (1 − mean)·s), s = (1 − icc)/icc (ICC 1/(s + 1) on the 0/1 scale; the true
    mean is `mean`). logit-normal: expit(logit(mean) + N(0, σ²)) with σ² / (σ² + π²/3) = icc (the
    latent-scale ICC); its true mean is computed by quadrature (it is not `mean`).
    """
    if shape == "beta":
        s = (1 - icc) / icc
        return rng.beta(mean * s, (1 - mean) * s, size), mean
    sd = float(np.sqrt(icc / (1 - icc) * np.pi**2 / 3))
    x, w = np.polynomial.hermite_e.hermegauss(121)
    truth = float(np.sum(w / w.sum() * expit(np.log(mean / (1 - mean)) + sd * x)))
    return expit(np.log(mean / (1 - mean)) + rng.normal(0, sd, size)), truth


def proportion_coverage(
    sims: int, n_groups: int, mean: float, icc: float = 0.3, seed: int = 0, balanced: bool = False, shape: str = "beta"
) -> dict[str, float]:
    """Coverage of one detector's clustered accuracy intervals: the lab's (the union of Korn-Graubard's
    and the beta-binomial posterior's), each part alone, and the symmetric cluster-robust t.

    6–18 clips a group. With `balanced`, half the groups hold speech (recall around `mean`) and
    half non-speech (recall around (1 + mean)/2), and the interval is the balanced accuracy's.
    """
    rng = np.random.default_rng([seed, n_groups, int(mean * 1000), int(balanced), int(shape == "beta")])
    hits = {"lab": 0, "korn_graubard": 0, "beta_binomial": 0, "cluster_t": 0, "t_outside_0_1": 0}
    for _ in range(sims):
        sizes = rng.integers(6, 19, n_groups)
        groups = np.repeat(np.arange(n_groups), sizes)
        if balanced:
            half = n_groups // 2
            p_s, t_s = _group_accuracies(rng, mean, icc, shape, half)
            p_n, t_n = _group_accuracies(rng, (1 + mean) / 2, icc, shape, n_groups - half)
            p, truth = np.concatenate([p_s, p_n]), (t_s + t_n) / 2
            labels = np.where(groups < half, "speech", "nonspeech")
        else:
            (p, truth), labels = _group_accuracies(rng, mean, icc, shape, n_groups), None
        ok = np.concatenate([rng.random(m) < pg for m, pg in zip(sizes, p)])
        _, kg, bb = interval_parts(ok, groups, labels)
        lab = (min(kg[0], bb[0]), max(kg[1], bb[1]))
        for name, (lo, hi) in (("lab", lab), ("korn_graubard", kg), ("beta_binomial", bb)):
            hits[name] += lo <= truth <= hi
        if not balanced:
            _, lo, hi = clustered_mean_ci(ok.astype(float), groups)
            hits["cluster_t"] += lo <= truth <= hi
            hits["t_outside_0_1"] += lo < 0 or hi > 1
    return {k: v / sims for k, v in hits.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--proportion", action="store_true", help="one detector's accuracy, not a paired difference")
    ap.add_argument("--power", action="store_true", help="the power the Compare page's plan promises, simulated")
    ap.add_argument(
        "--balanced", action="store_true", help="with --proportion: balanced accuracy over class-pure groups"
    )
    ap.add_argument("--shape", choices=["beta", "logit-normal"], default="beta", help="how group accuracies spread")
    ap.add_argument("--means", type=float, nargs="+", default=[0.5, 0.7, 0.9, 0.95])
    ap.add_argument("--sims", type=int, default=1000)
    ap.add_argument("--groups", type=int, nargs="+", default=[10, 15, 20, 50])
    ap.add_argument("--per-group", type=int, default=20)
    ap.add_argument("--icc", type=float, default=0.3)
    ap.add_argument("--workers", type=int, default=1, help="processes for --proportion (one cell each)")
    args = ap.parse_args()
    if args.power:
        for m in (5, 20, 50):
            c = planned_power(args.sims, args.icc, m)
            print(
                f"{args.sims} simulations, ICC {args.icc}, {m} clips a group, true difference {c['delta']:.4f} "
                f"(discordant {c['discordant']:.3f}): plan {c['groups']} groups / {c['clips']} clips -> power {c['power']:.1%}"
            )
        return
    if args.proportion:
        cells = [(g, m) for g in args.groups for m in args.means]
        run = partial(proportion_coverage, args.sims, icc=args.icc, balanced=args.balanced, shape=args.shape)
        t0 = time.perf_counter()
        with ProcessPoolExecutor(args.workers) as pool:  # one cell a worker; each cell has its own seed
            results = list(pool.map(run, *zip(*cells)))
        for (g, m), c in zip(cells, results):
            what = f"balanced accuracy (recalls {m}, {(1 + m) / 2:g})" if args.balanced else f"accuracy {m}"
            t_part = (
                ""
                if args.balanced
                else f", cluster-robust t {c['cluster_t']:.1%} (outside [0, 1]: {c['t_outside_0_1']:.1%})"
            )
            print(
                f"{args.sims} simulations, {g} groups of 6-18 clips, ICC {args.icc} ({args.shape}), {what}: "
                f"lab {c['lab']:.1%} = union of Korn-Graubard {c['korn_graubard']:.1%} and beta-binomial "
                f"{c['beta_binomial']:.1%}{t_part}"
            )
        print(f"({len(cells)} cells in {time.perf_counter() - t0:.0f} s with {args.workers} workers)")
        return
    for g in args.groups:
        t0 = time.perf_counter()
        c = coverage(args.sims, g, args.per_group, args.icc)
        print(
            f"{args.sims} simulations, {g} groups × {args.per_group} clips, ICC {args.icc}, true difference "
            f"{c['truth']:.4f}: cluster-robust t {c['cluster_t']:.1%}, percentile bootstrap over groups "
            f"{c['group_bootstrap']:.1%}, naive bootstrap over clips {c['naive']:.1%} ({time.perf_counter() - t0:.0f} s)"
        )


if __name__ == "__main__":
    main()
