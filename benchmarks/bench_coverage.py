"""Coverage of 95% intervals for a paired accuracy difference when clips are clustered in groups.

Clips of a group share random effects (a speaker that both models find hard, u_g; one model
better on some groups and worse on others, v_g), set so that the intraclass correlation of the
per-clip difference is `icc` (0.3 by default, solved numerically). Prints, at each number of
groups, the coverage of: the cluster-robust t interval the lab reports (`clustered_mean_ci`),
the percentile bootstrap over groups it replaced, and the naive bootstrap over clips.

With --proportion it simulates one detector's accuracy instead: per-group accuracies drawn from
a Beta around a true mean with intraclass correlation `icc`, 6–18 clips a group, and prints the
coverage of the Korn-Graubard interval the lab reports (`clustered_accuracy_ci`) beside the
symmetric cluster-robust t interval it replaced, and how often that one left [0, 1].

Usage: .venv/bin/python -m benchmarks.bench_coverage [--sims 1000] [--groups 10 20 50] [--icc 0.3]
       .venv/bin/python -m benchmarks.bench_coverage --proportion [--means 0.7 0.9 0.97]
       .venv/bin/python -m benchmarks.bench_coverage --power
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

from core.analysis.stats import (
    clustered_accuracy_ci,
    clustered_mean_ci,
    groups_for_power,
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


def proportion_coverage(sims: int, n_groups: int, mean: float, icc: float = 0.3, seed: int = 0) -> dict[str, float]:
    """Coverage of one detector's clustered accuracy intervals (Korn-Graubard vs symmetric t)."""
    rng = np.random.default_rng([seed, n_groups, int(mean * 1000)])
    s = (1 - icc) / icc  # Beta(mean·s, (1 − mean)·s) has intraclass correlation 1/(s + 1) = icc
    kg = t = outside = 0
    for _ in range(sims):
        p = rng.beta(mean * s, (1 - mean) * s, n_groups)
        sizes = rng.integers(6, 19, n_groups)
        ok = np.concatenate([rng.random(m) < pg for m, pg in zip(sizes, p)])
        groups = np.repeat(np.arange(n_groups), sizes)
        _, lo, hi = clustered_accuracy_ci(ok, groups)
        kg += lo <= mean <= hi
        _, lo, hi = clustered_mean_ci(ok.astype(float), groups)
        t += lo <= mean <= hi
        outside += lo < 0 or hi > 1
    return {"korn_graubard": kg / sims, "cluster_t": t / sims, "t_outside_0_1": outside / sims}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--proportion", action="store_true", help="one detector's accuracy, not a paired difference")
    ap.add_argument("--power", action="store_true", help="the power the Compare page's plan promises, simulated")
    ap.add_argument("--means", type=float, nargs="+", default=[0.7, 0.9, 0.97])
    ap.add_argument("--sims", type=int, default=1000)
    ap.add_argument("--groups", type=int, nargs="+", default=[10, 20, 50])
    ap.add_argument("--per-group", type=int, default=20)
    ap.add_argument("--icc", type=float, default=0.3)
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
        for g in args.groups:
            for m in args.means:
                c = proportion_coverage(args.sims, g, m, args.icc)
                print(
                    f"{args.sims} simulations, {g} groups of 6-18 clips, ICC {args.icc}, accuracy {m}: Korn-Graubard "
                    f"{c['korn_graubard']:.1%}, cluster-robust t {c['cluster_t']:.1%} (outside [0, 1]: {c['t_outside_0_1']:.1%})"
                )
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
