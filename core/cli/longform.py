"""`python -m core longform ...`: long recordings scored over time (the Timeline page's command line).

build      the embedded long-form set, assembled from a clip dataset (seconds)
import     long recordings with references: a folder + RTTM, a folder + CSV, or Lhotse manifests
list       the long-form sets and curve tables
score      a detector's speech curve over a part's recordings (native frames or sliding windows)
tune       the post-processing rule chosen on a dev curve table for an objective
evaluate   a rule applied to a (test) curve table: pooled and per-recording error with intervals
compare    two detectors' curve tables on the same recordings, paired
export     hypothesis segments as RTTM or CSV
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.cli.common import finite_float, run_job


def _default_source() -> str:
    from core.data.datasets import list_datasets

    return "voices" if "voices" in list_datasets() else "default"


def cmd_build(args: argparse.Namespace) -> int:
    from core.cli.common import tqdm_progress
    from core.data.datasets import load_dataset
    from core.data.splits import list_splits
    from core.longform.assemble import build_longform
    from core.longform.dataset import list_longform

    source = args.dataset or _default_source()
    name = args.name or f"{source}-long"
    if name in list_longform() and not args.force:
        print(f"long-form set ready: {name} (exists; --force rebuilds it)")
        return 0
    ds = load_dataset(source)
    split = args.split if args.split in list_splits(ds) else None
    update, close = tqdm_progress(f"assembling long recordings from {source}")
    try:
        other = load_dataset(args.nonspeech_from) if args.nonspeech_from else None
        root = build_longform(ds, split, name, seconds=args.seconds, seed=args.seed, progress=update, nonspeech=other)
    finally:
        close()
    print(f"long-form set ready: {root}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from core.longform.dataset import import_longform

    root = import_longform(args.kind, args.source, args.name, args.reference, group_by=args.group_by, seed=args.seed,
                           force=args.force)  # fmt: skip
    print(f"long-form set ready: {root}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from core.longform.curves import list_curves, read_meta
    from core.longform.dataset import list_longform, load_longform

    for name in list_longform():
        lf = load_longform(name)
        by = lf.recordings.groupby("part")["duration_s"].agg(["count", "sum"])
        parts = ", ".join(f"{p} {int(r['count'])} ({r['sum'] / 60:.1f} min)" for p, r in by.iterrows())
        print(f"{name}: {parts}")
        for path in list_curves(name):
            m = read_meta(path)
            how = "native frames" if m.get("native") else f"windows {m.get('window')} s, hop {m.get('hop')} s"
            print(f"    {path.stem}: {m.get('detector')} on {m.get('part')}, {how}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from core.cli.scoring import _detector_options
    from core.detectors import make_detector
    from core.longform.curves import save_curves, score_longform
    from core.longform.dataset import load_longform

    load_longform(args.set)  # refused here, before any job
    opts = _detector_options(args)
    if args.window is None and args.detector not in ("silero-vad", "webrtc-vad"):
        args.window, args.hop = 2.0, args.hop or 1.0  # clip detectors slide; say so in the table's sidecar

    def work(update, should_stop):
        lf = load_longform(args.set)
        table, meta = score_longform(lf, make_detector(args.detector, **opts), args.part, args.window,
                                     args.hop, update, should_stop)  # fmt: skip
        return save_curves(table, meta, args.name or None)

    path = run_job(args, f"scoring {args.set} with {args.detector}", work, lambda p: (f"wrote {p.name}", str(p)))
    print(f"curves: {path}")
    return 0


def _rule_args(args: argparse.Namespace):
    """A rule from --rule (a tune result) or the onset/offset flags."""
    from core.longform.postprocess import Binarize

    if args.rule:
        saved = json.loads(Path(args.rule).read_text())
        return Binarize(**saved["rule"]), saved
    return Binarize(args.onset, args.offset if args.offset is not None else args.onset, args.min_speech,
                    args.min_silence, args.pad_onset, args.pad_offset), {}  # fmt: skip


def _curves(name: str):
    from core.longform.curves import curves_of, load_curves
    from core.longform.dataset import load_longform

    table, meta = load_curves(name)
    lf = load_longform(meta["longform"])
    return lf, curves_of(table, meta, {r: lf.duration(r) for r in lf.ids()}), meta


def cmd_tune(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from core import atomic
    from core.longform.curves import resolve
    from core.longform.tuning import tune

    lf, curves, meta = _curves(args.curves)
    if meta.get("part") not in ("dev", "train"):
        print(f"warning: tuning on part {meta.get('part')!r}; tune on dev and apply to test unchanged")
    rule, table = tune(curves, {r: lf.reference(r) for r in curves}, objective=args.objective, collar=args.collar,
                       skip_overlap=args.skip_overlap, fa_budget=args.fa_budget)  # fmt: skip
    out = Path(args.out) if args.out else resolve(args.curves).with_suffix(".rule.json")
    best = table[0]
    atomic.write_json(out, {"rule": asdict(rule), "objective": args.objective, "collar": args.collar,
                            "skip_overlap": args.skip_overlap, "fa_budget": args.fa_budget,
                            "tuned_on": resolve(args.curves).stem, "dev": best})  # fmt: skip
    print(f"rule (tuned on {resolve(args.curves).stem}, {args.objective}): {asdict(rule)}")
    print(f"dev: error rate {best['error_rate']:.3f}, precision {best['precision']:.3f}, recall {best['recall']:.3f}")
    print(f"saved: {out}")
    return 0


def _report(lf, curves, rule, args) -> tuple:
    from core.longform.evaluation import hypotheses, per_recording, summarise

    hyp = hypotheses(curves, rule)
    per = per_recording(lf, hyp, collar=args.collar, skip_overlap=args.skip_overlap)
    return hyp, per, summarise(per, args.cluster)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.longform.segments import write_csv, write_rttm

    lf, curves, meta = _curves(args.curves)
    rule, saved = _rule_args(args)
    if saved and saved.get("tuned_on") and meta.get("part") == "dev" and saved["tuned_on"] in str(args.curves):
        print("warning: evaluating on the curves the rule was tuned on")
    collar = args.collar if args.collar is not None else saved.get("collar", 0.0)
    args.collar = collar
    hyp, per, s = _report(lf, curves, rule, args)
    e, p, r = s.error_rate, s.precision, s.recall
    print(f"{meta.get('detector')} on {lf.name}/{meta.get('part')}: {s.n_recordings} recordings, "
          f"{s.n_clusters} clusters by {args.cluster}, collar {collar:g} s")  # fmt: skip
    print(f"detection error rate {e[0]:.3f} [{e[1]:.3f}, {e[2]:.3f}]  (miss {s.miss_rate:.3f}, "
          f"false alarm {s.false_alarm_rate:.3f})")  # fmt: skip
    print(f"precision {p[0]:.3f} [{p[1]:.3f}, {p[2]:.3f}]  recall {r[0]:.3f} [{r[1]:.3f}, {r[2]:.3f}]  F1 {s.f1:.3f}")
    from core.longform.evaluation import all_events, event_line, event_summary

    print(event_line(event_summary(all_events(lf, hyp))))
    if args.per_recording:
        print(per[["recording_id", "error_rate", "precision", "recall", "miss", "false_alarm", "total"]].to_string())
    if args.rttm:
        print(f"wrote {write_rttm(args.rttm, hyp)}")
    if args.csv:
        print(f"wrote {write_csv(args.csv, hyp)}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from core.longform.evaluation import paired_difference

    lf_a, ca, ma = _curves(args.a)
    lf_b, cb, mb = _curves(args.b)
    if lf_a.name != lf_b.name:
        print(f"error: the tables score different long-form sets ({lf_a.name}, {lf_b.name})")
        return 2
    args.rule, rule_b = args.rule_a, args.rule_b
    ra, _ = _rule_args(args)
    args.rule = rule_b
    rb, _ = _rule_args(args)
    _, pa, sa = _report(lf_a, ca, ra, args)
    _, pb, sb = _report(lf_b, cb, rb, args)
    d = paired_difference(pa, pb, args.cluster)
    na, nb = ma.get("detector", "A"), mb.get("detector", "B")
    print(f"{na}: error rate {sa.error_rate[0]:.3f}; {nb}: {sb.error_rate[0]:.3f}")
    print(f"difference {na} − {nb}: {d.diff:+.3f} [{d.lo:+.3f}, {d.hi:+.3f}] over {d.n_recordings} recordings, "
          f"{d.n_clusters} clusters")  # fmt: skip
    print(d.verdict(na, nb))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.longform.segments import write_csv, write_rttm

    _, curves, _ = _curves(args.curves)
    rule, _ = _rule_args(args)
    from core.longform.evaluation import hypotheses

    hyp = hypotheses(curves, rule)
    out = write_rttm(args.out, hyp) if args.format == "rttm" else write_csv(args.out, hyp)
    print(f"wrote {out}")
    return 0


def _add_rule_args(p: argparse.ArgumentParser, rule_flag: bool = True) -> None:
    if rule_flag:
        p.add_argument("--rule", default="", help="a rule saved by `longform tune` (else the flags below)")
    p.add_argument("--onset", type=finite_float, default=0.5)
    p.add_argument("--offset", type=finite_float, default=None, help="default: the onset")
    p.add_argument("--min-speech", type=finite_float, default=0.0, help="seconds")
    p.add_argument("--min-silence", type=finite_float, default=0.0, help="seconds")
    p.add_argument("--pad-onset", type=finite_float, default=0.0, help="seconds")
    p.add_argument("--pad-offset", type=finite_float, default=0.0, help="seconds")


def _add_metric_args(p: argparse.ArgumentParser, collar_default: float | None = None) -> None:
    from core.longform.evaluation import CLUSTERS

    p.add_argument("--collar", type=finite_float, default=collar_default, help="seconds (total width, half each side)")
    p.add_argument("--skip-overlap", action="store_true", help="leave overlapped speech out of the evaluation")
    p.add_argument("--cluster", choices=CLUSTERS, default="recording", help="unit of the 95%% intervals")


def register(top: argparse._SubParsersAction) -> None:
    """`longform`: long recordings scored over time."""
    from core.cli.common import add_executor
    from core.cli.scoring import add_detector_args
    from core.longform.dataset import GROUP_BY
    from core.longform.tuning import OBJECTIVES

    lf = top.add_parser("longform", help="long recordings: build, import, score over time, tune, evaluate")
    sub = lf.add_subparsers(dest="longform_cmd", required=True)

    b = sub.add_parser("build", help="assemble the embedded long-form set from a clip dataset (offline)")
    b.add_argument("--dataset", default="", help="clip dataset (default: voices if built, else default)")
    b.add_argument("--split", default="default", help="its saved split (recordings keep its parts)")
    b.add_argument("--name", default="", help="default: DATASET-long")
    b.add_argument("--seconds", type=finite_float, default=60.0, help="about how long each recording is")
    b.add_argument("--nonspeech-from", default="", help="add another dataset's non-speech clips (e.g. FSDD + voices)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--force", action="store_true")
    b.set_defaults(func=cmd_build)

    i = sub.add_parser("import", help="long recordings with references (RTTM, CSV or Lhotse)")
    i.add_argument("kind", choices=["rttm", "csv", "lhotse"])
    i.add_argument("source", help="folder of recordings (rttm, csv) or the recordings manifest (lhotse)")
    i.add_argument("reference", nargs="?", help="RTTM file or folder; CSV (recording,start,end,label); supervisions")
    i.add_argument("--name", required=True)
    i.add_argument("--group-by", choices=GROUP_BY, default="speaker",
                   help="speaker: labels are the same people across recordings; recording: each its own group")  # fmt: skip
    i.add_argument("--seed", type=int, default=0, help="seed of the split of recordings")
    i.add_argument("--force", action="store_true")
    i.set_defaults(func=cmd_import)

    sub.add_parser("list", help="long-form sets and their curve tables").set_defaults(func=cmd_list)

    s = sub.add_parser("score", help="a detector's speech curve over a part's recordings (a background job)")
    s.add_argument("--set", required=True, help="long-form set")
    s.add_argument("--part", default="test", help="train, dev, test or all")
    s.add_argument("--window", type=finite_float, default=None,
                   help="seconds per window (clip detectors; default 2); Silero/WebRTC: native frames unless given")  # fmt: skip
    s.add_argument("--hop", type=finite_float, default=None, help="seconds between windows (default 1)")
    s.add_argument("--name", default="", help="curve table name (default: set-part-detector-time)")
    add_detector_args(s)
    s.add_argument("--job-dir", default=None, help=argparse.SUPPRESS)
    add_executor(s)
    s.set_defaults(func=cmd_score, seed=None, exclude_tags=[], labels="original", gpus=1)

    t = sub.add_parser("tune", help="choose onset/offset and durations on a dev curve table")
    t.add_argument("--curves", required=True, help="curve table (name or path), dev part")
    t.add_argument("--objective", choices=OBJECTIVES, default="error_rate")
    t.add_argument("--fa-budget", type=finite_float, default=0.05, help="miss_at_fa: false alarm / reference speech")
    t.add_argument("--out", default="", help="rule file (default: beside the table, .rule.json)")
    _add_metric_args(t, 0.0)
    t.set_defaults(func=cmd_tune)

    e = sub.add_parser("evaluate", help="apply a rule to a curve table; detection error with clustered intervals")
    e.add_argument("--curves", required=True, help="curve table (name or path), usually the test part")
    _add_rule_args(e)
    _add_metric_args(e)
    e.add_argument("--per-recording", action="store_true")
    e.add_argument("--rttm", default="", help="write the hypothesis segments as RTTM")
    e.add_argument("--csv", default="", help="write the hypothesis segments as CSV")
    e.set_defaults(func=cmd_evaluate)

    c = sub.add_parser("compare", help="two curve tables on the same recordings: paired error difference")
    c.add_argument("--a", required=True)
    c.add_argument("--b", required=True)
    c.add_argument("--rule-a", default="")
    c.add_argument("--rule-b", default="")
    _add_rule_args(c, rule_flag=False)
    _add_metric_args(c, 0.0)
    c.set_defaults(func=cmd_compare)

    x = sub.add_parser("export", help="hypothesis segments of a curve table under a rule, as RTTM or CSV")
    x.add_argument("--curves", required=True)
    x.add_argument("--format", choices=["rttm", "csv"], default="rttm")
    x.add_argument("--out", required=True)
    _add_rule_args(x)
    x.set_defaults(func=cmd_export)
