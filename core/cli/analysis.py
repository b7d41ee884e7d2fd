"""`python -m core calibrate | compare | aggregate | psychometric | errors | abstain | label-issues`: analyses of tables."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from core.cli.common import finite_float, positive_int, unit_interval
from core.errors import LabError


def cmd_calibrate(args: argparse.Namespace) -> int:
    from core import atomic
    from core.analysis.calibration_report import as_json, report
    from core.scoring import predictions

    dev_path, test_path = predictions.resolve(args.dev), predictions.resolve(args.test)
    dev, _ = predictions.load(dev_path)
    test, _ = predictions.load(test_path)
    rep, _, test_c = report(dev, test, args.method, args.bins, args.strategy)
    out = predictions.analysis_dir(test_path)
    payload = {**as_json(rep), "fitted_on": dev_path.name, "applied_to": test_path.name, "bins": args.bins}
    atomic.write_json(out / f"calibration-{args.method}.json", payload)
    atomic.write_csv(out / f"calibrated-{args.method}.csv", test_c)
    cols = ["split", "stage", "accuracy", "balanced_accuracy", "roc_auc", "ece", "ece_quantile", "brier", "nll"]
    print(f"{args.method} fitted on {dev_path.name}: {rep.params}")
    print(rep.table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for w in rep.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {out}/calibration-{args.method}.json and calibrated-{args.method}.csv")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from core import atomic
    from core.analysis.compare import compare
    from core.scoring import predictions

    pa, pb = predictions.resolve(args.a), predictions.resolve(args.b)
    a, _ = predictions.load(pa)
    b, _ = predictions.load(pb)
    c = compare(a, b, args.threshold_a, args.threshold_b, n_boot=args.n_boot, delta=args.delta)
    out = predictions.analysis_dir(pa) / f"compare-{pb.stem}.json"
    atomic.write_json(out, {"a": pa.name, "b": pb.name, **c.as_json()})
    t = c.table
    for w in c.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"A = {pa.stem}\nB = {pb.stem}\n{c.n_clips} paired clips in {c.n_groups} groups")
    for k in ("a", "b"):
        lo, hi = c.wilson[k]
        print(f"accuracy {k.upper()}: {c.accuracy[k]:.4f}  (Wilson 95% {lo:.4f}–{hi:.4f})")
    print(f"2×2: both right {t[0, 0]}, only A {t[0, 1]}, only B {t[1, 0]}, both wrong {t[1, 1]}")
    print("McNemar p: " + ", ".join(f"{k} {v:.4g}" for k, v in c.mcnemar.items()))
    print(
        f"A − B = {c.diff:+.4f}; 95% CI clustered by group [{c.ci_clustered[0]:+.4f}, {c.ci_clustered[1]:+.4f}], "
        f"naive by clip [{c.ci_naive[0]:+.4f}, {c.ci_naive[1]:+.4f}]"
    )
    print(f"power: {c.power['note']}")
    print(f"wrote {out}")
    return 0


def cmd_aggregate(args: argparse.Namespace) -> int:
    from core import atomic
    from core.analysis.compare import aggregate
    from core.scoring import predictions

    if args.sweep:
        from core.runs import sweeps

        matrix, per_seed = sweeps.results_matrix(args.sweep, args.part)
        folder = sweeps.sweeps_dir() / args.sweep
        atomic.write_csv(folder / f"matrix-{args.part}.csv", matrix)
        atomic.write_csv(folder / f"per-seed-{args.part}.csv", per_seed)
        print(matrix.to_string(index=False) if len(matrix) else "no finished runs yet")
        print(f"wrote {folder}/matrix-{args.part}.csv")
        return 0
    if not args.tables:
        raise LabError("give predictions tables (runs of one configuration, different seeds) or --sweep ID")
    paths = [predictions.resolve(t) for t in args.tables]
    per, summary = aggregate({p.stem: predictions.load(p)[0] for p in paths})
    name = args.name or f"{paths[0].stem}-x{len(paths)}"
    folder = predictions.results_root() / "aggregates"
    atomic.write_csv(folder / f"{name}-per-seed.csv", per)
    atomic.write_csv(folder / f"{name}.csv", summary)
    print(per.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"wrote {folder}/{name}.csv")
    return 0


def cmd_psychometric(args: argparse.Namespace) -> int:
    from core import atomic
    from core.analysis import psychometrics as pm
    from core.scoring import predictions

    by = [c for c in (args.by or []) if c]
    frames = []
    for name in args.tables:
        path = predictions.resolve(name)
        table, meta = predictions.load(path)
        detector = meta.get("detector", path.stem)
        fits = pm.fit_table(
            table,
            args.axis,
            by,
            args.threshold,
            function=args.function,
            target=args.target,
            n_boot=args.n_boot,
            boot=args.boot,
            ci_method=args.ci,
            lapse_max=args.lapse_max,
        )
        rows = pm.summary_rows(fits, detector)
        frames.append(rows)
        out = predictions.analysis_dir(path)
        tag = f"{args.axis}" + (f"-by-{'-'.join(by)}" if by else "")
        payload = {
            "table": path.name,
            "axis": args.axis,
            "by": by,
            "function": args.function,
            "target": args.target,
            "fits": [{"stratum": s, "note": note, **(f.as_dict() if f else {})} for s, f, note in fits],
        }
        if args.glm:
            g = pm.interaction_glm(table, args.threshold)
            payload["glm"] = {**g, "coefficients": g["coefficients"].to_dict(orient="records")}
            print(
                f"{detector}: GEE {g['formula']} (clusters: {g['n_clusters']} base clips); "
                f"interaction p = {g['interaction_p']:.3g}; McFadden R² = {g['mcfadden_r2']:.3f}"
            )
            print(g["coefficients"].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        atomic.write_json(out / f"psychometric-{tag}.json", payload)
        atomic.write_csv(out / f"observed-{tag}.csv", pm.observed(table, args.axis, by, args.threshold))
        print(f"wrote {out}/psychometric-{tag}.json")
    import pandas as pd

    summary = pd.concat(frames, ignore_index=True)
    cols = [c for c in ["detector", *by, "result", "lapse", "deviance", "p_deviance", "clips"] if c in summary]
    print(summary[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0


def cmd_errors(args: argparse.Namespace) -> int:
    from core import atomic
    from core.analysis.error_analysis import consistently_wrong, per_clip
    from core.scoring import predictions

    paths = [predictions.resolve(t) for t in args.tables]
    wide = per_clip({p.stem: predictions.load(p)[0] for p in paths}, args.threshold)
    top = consistently_wrong(wide, args.min_frac)
    cols = ["clip_id", "label", "group_id", "duration_ms", "snr_db", "runs_wrong", "runs", "mean_abs_logit_wrong"]
    print(
        f"{len(wide)} clips, {int((wide['runs_wrong'] > 0).sum())} wrong in at least one of {len(paths)} tables; "
        f"{len(top)} wrong in ≥ {args.min_frac:.0%}:"
    )
    print(top[cols].head(30).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if args.csv:
        atomic.write_csv(args.csv, wide)
        print(f"wrote {args.csv}")
    return 0


def cmd_abstain(args: argparse.Namespace) -> int:
    """Decide or abstain: a rule fitted on dev (error among decided ≤ α, or coverage 1 − α), judged on test."""
    from core.analysis import conformal
    from core.scoring import predictions

    dev, _ = predictions.load(predictions.resolve(args.dev))
    test, _ = predictions.load(predictions.resolve(args.test))
    yd, pd_ = (dev["label"] == "speech").to_numpy(), dev["p_speech"].to_numpy(float)
    yt, pt = (test["label"] == "speech").to_numpy(), test["p_speech"].to_numpy(float)
    groups = dev["group_id"].to_numpy() if args.by_group else None
    rule = conformal.fit_selective(yd, pd_, args.alpha, args.delta, groups=groups)
    res = conformal.apply_selective(rule, yt, pt, test["group_id"].to_numpy())
    print(
        f"rule (fitted on {args.dev}): decide where max(p, 1 - p) >= {rule.threshold:.4f}; dev decided "
        f"{rule.dev_decided:.1%}, error among decided {rule.dev_error:.4f} (effective dev clips {rule.effective_n:.0f})"
    )
    print(
        f"test: decided {res['decided']:.1%} ({res['n_decided']} clips), error among decided {res['error']:.4f} "
        f"[{res['error_lo']:.4f}, {res['error_hi']:.4f}] (95%, clustered by group); target <= {args.alpha:g} "
        f"with probability >= {1 - args.delta:g} for clips exchangeable with dev"
    )
    sets = conformal.prediction_sets(yd, pd_, pt, args.alpha, mondrian=args.mondrian)
    size = sets.sum(axis=1)
    cover = float(sets[np.arange(len(yt)), np.where(yt, 0, 1)].mean())
    print(
        f"prediction sets at coverage {1 - args.alpha:g}{' (Mondrian)' if args.mondrian else ''}: realised "
        f"{cover:.3f}; one label {np.mean(size == 1):.1%}, both (abstain) {np.mean(size == 2):.1%}, "
        f"empty {np.mean(size == 0):.1%}"
    )
    return 0


def cmd_label_issues(args: argparse.Namespace) -> int:
    from core.analysis.label_issues import find_label_issues, group_quality
    from core.scoring import predictions

    table, meta = predictions.load(predictions.resolve(args.table))
    if meta.get("part") != "oof" and not meta.get("zero_shot"):
        print(
            "warning: not an out-of-fold table: a model scored on clips it trained on vouches for their labels",
            file=sys.stderr,
        )
    issues = find_label_issues(table)
    flagged = issues[issues["flagged"]]
    print(f"{len(flagged)} of {len(issues)} clips flagged (cleanlab, confident learning); most likely wrong first:")
    print(flagged.head(args.top).to_string(index=False))
    print("\nlabel quality by group (flagged rate, worst first):")
    print(group_quality(issues).head(args.top).to_string(index=False))
    _planted_line(issues, str(meta.get("dataset", "")))
    return 0


def _planted_line(issues, dataset: str) -> None:
    """On a dataset with planted flips, how well the ranking found them."""
    from core.analysis.label_issues import planted_recall
    from core.data.datasets import load_dataset
    from core.data.planted_flips import planted_truth

    try:
        truth = planted_truth(load_dataset(dataset))
    except LabError:
        return
    if truth is not None:
        r = planted_recall(issues, truth["clip_id"])
        print(f"\nplanted flips: {r['caught']} of {r['planted']} in the top {r['top']} "
              f"({r['recall_at_top']:.0%}); flagged {r['flagged']}, of which {r['flag_precision']:.0%} planted")  # fmt: skip


def embedding_detector(name: str):
    """The detector whose ears place clips on a map: a detector name, or run:<id> (a fine-tuned run)."""
    from core.detectors import make_detector
    from core.runs import registry

    return registry.run_detector(name.removeprefix("run:")) if name.startswith("run:") else make_detector(name)


def cmd_map(args: argparse.Namespace) -> int:
    from core.analysis.clip_map import build_map
    from core.cli.common import run_job

    def work(update, should_stop):
        return build_map(args.table, embedding_detector(args.embedding), args.embedding, args.method,
                         args.batch_size, update, should_stop)  # fmt: skip

    path = run_job(args, f"map of {args.table}", work, lambda p: (f"wrote {p.name}", str(p)))
    print(f"map: {path}")
    return 0


def register(top: argparse._SubParsersAction) -> None:
    """`calibrate`, `compare`, `aggregate`, `psychometric` and `errors`: analyses of predictions tables."""
    from core.analysis import psychometrics as pm

    c = top.add_parser("calibrate", help="fit a calibrator on a dev table, apply and judge it on a test table")
    c.add_argument("--dev", required=True, help="predictions table (name or path) to fit on")
    c.add_argument("--test", required=True, help="predictions table (name or path) to apply to")
    c.add_argument("--method", choices=["temperature", "platt", "isotonic"], default="temperature")
    c.add_argument("--bins", type=positive_int, default=10)
    c.add_argument("--strategy", choices=["uniform", "quantile"], default="uniform")
    c.set_defaults(func=cmd_calibrate)

    cp = top.add_parser("compare", help="McNemar, paired clustered bootstrap and power for two tables")
    cp.add_argument("a", help="predictions table A (name or path)")
    cp.add_argument("b", help="predictions table B, scored on the same clips")
    cp.add_argument("--threshold-a", type=finite_float, default=0.0, help="decision threshold on A's log-odds")
    cp.add_argument("--threshold-b", type=finite_float, default=0.0)
    cp.add_argument("--n-boot", type=positive_int, default=2000)
    cp.add_argument("--delta", type=unit_interval, default=None, help="difference to power for (default: observed)")
    cp.set_defaults(func=cmd_compare)

    ag = top.add_parser("aggregate", help="mean ± std over seeds: tables of one configuration, or a sweep")
    ag.add_argument("tables", nargs="*", help="predictions tables (names or paths)")
    ag.add_argument("--sweep", help="a sweep id: its results matrix over seeds")
    ag.add_argument("--part", choices=["dev", "test"], default="test")
    ag.add_argument("--name", help="output name under results/aggregates")
    ag.set_defaults(func=cmd_aggregate)

    ps = top.add_parser("psychometric", help="psychometric fits, thresholds with bootstrap CIs, GLM")
    ps.add_argument("tables", nargs="+", help="predictions tables scored on a condition set")
    ps.add_argument("--axis", choices=list(pm.AXES), default="snr_db")
    ps.add_argument("--by", nargs="*", default=[], help="strata, e.g. duration_ms band reverb")
    ps.add_argument("--function", choices=list(pm.FUNCTIONS), default="logistic")
    ps.add_argument("--target", type=unit_interval, default=0.75, help="proportion correct at the threshold")
    ps.add_argument("--n-boot", type=positive_int, default=1000)
    ps.add_argument("--boot", choices=["nonparametric", "parametric"], default="nonparametric")
    ps.add_argument(
        "--ci",
        choices=list(pm.CI_METHODS),
        default="union",
        help="bootstrap interval: union (default) = as far as either the expanded percentile or the expanded "
        "BCa reaches; expanded = percentile widened for few base clips (Hesterberg 2015); bca = bias and skew "
        "corrected; percentile = plain",
    )
    ps.add_argument("--lapse-max", type=unit_interval, default=pm.LAPSE_MAX)
    ps.add_argument("--threshold", type=finite_float, default=0.0, help="decision threshold on the log-odds")
    ps.add_argument("--glm", action="store_true", help="also fit the GEE of correct ~ log2(duration) × SNR")
    ps.set_defaults(func=cmd_psychometric)

    er = top.add_parser("errors", help="per-clip errors across runs: consistently wrong and confident errors")
    er.add_argument("tables", nargs="+", help="predictions tables scored on the same clips (runs, seeds, detectors)")
    er.add_argument("--threshold", type=finite_float, default=0.0)
    er.add_argument(
        "--min-frac", type=unit_interval, default=0.5, help="consistently wrong: wrong in at least this fraction"
    )
    er.add_argument("--csv", help="write the per-clip table here")
    er.set_defaults(func=cmd_errors)
    ab = top.add_parser("abstain", help="decide or abstain: a conformal rule fitted on dev, judged on test")
    ab.add_argument("--dev", required=True)
    ab.add_argument("--test", required=True)
    ab.add_argument("--alpha", type=float, default=0.05, help="error among decided clips (or 1 - coverage)")
    ab.add_argument("--delta", type=float, default=0.1, help="the rule holds with probability 1 - delta")
    ab.add_argument("--mondrian", action="store_true", help="prediction sets calibrated per class")
    ab.add_argument("--by-group", action="store_true", help="count dev clips by effective sample size (groups)")
    ab.set_defaults(func=cmd_abstain)
    li = top.add_parser(
        "label-issues", help="clips whose label is probably wrong (cleanlab), from an out-of-fold table"
    )
    li.add_argument("table")
    li.add_argument("--top", type=int, default=30)
    li.set_defaults(func=cmd_label_issues)

    mp = top.add_parser("map", help="a 2-D map of a table's clips from a detector's audio embeddings (cached)")
    mp.add_argument("table")
    mp.add_argument("--embedding", default="lab-base", help="an audio-LLM detector, or run:<id> (default lab-base)")
    mp.add_argument("--method", choices=["pca", "tsne"], default="pca")
    mp.add_argument("--batch-size", type=positive_int, default=32)
    mp.add_argument("--job-dir", default=None, help=argparse.SUPPRESS)
    mp.set_defaults(func=cmd_map)
