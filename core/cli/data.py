"""`python -m core data ...`, `tag`, `conditions`: datasets, splits, audits, annotations, condition sets."""

from __future__ import annotations

import argparse
import sys

from core.cli.common import finite_float, positive_int, run_job, tqdm_progress, unit_interval
from core.errors import LabError


def cmd_build_default(args: argparse.Namespace) -> int:
    from core.data.default_dataset import build_default

    update, close = tqdm_progress("building embedded dataset")
    try:
        root = build_default(args.name, force=args.force, workers=args.workers, progress=update)
    finally:
        close()
    print(f"dataset ready: {root}")
    return 0


def cmd_build_voices(args: argparse.Namespace) -> int:
    from core.data.voices_dataset import build_voices

    update, close = tqdm_progress("building the real-voice dataset")
    try:
        root = build_voices(args.name, force=args.force, workers=args.workers, synthetic=args.synthetic,
                            progress=update)  # fmt: skip
    finally:
        close()
    print(f"dataset ready: {root}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from core.data.importers import import_dataset

    options: dict = {}
    if args.kind == "voxconverse":
        options = {"include_gaps": args.include_gaps}
    elif args.kind == "lhotse":
        options = {"supervisions": args.supervisions or "", "include_gaps": args.include_gaps,
                   "max_seconds": args.max_seconds}  # fmt: skip
    elif args.kind == "hf":
        options = {"label_column": args.label_column, "speech_values": args.speech_values,
                   "nonspeech_values": args.nonspeech_values, "group_column": args.group_column,
                   "clip_groups": args.clip_groups, "hf_split": args.hf_split}  # fmt: skip
    elif args.supervisions:
        raise LabError(f"a second path is for the lhotse importer (its supervisions), not {args.kind}")
    root = run_job(
        args,
        f"importing {args.kind}",
        lambda update, _stop: import_dataset(
            args.kind,
            args.source,
            args.name,
            skip_bad=args.skip_bad,
            force=args.force,
            progress=update,
            cut_seconds=args.cut_seconds,
            paths_outside_ok=args.paths_outside_ok,
            **options,
        ),  # fmt: skip
        lambda root: (f"imported {args.name}", str(root)),
    )
    from core.data.datasets import load_dataset

    ds = load_dataset(args.name)
    print(f"imported {len(ds.manifest)} clips into {root}")
    for note, n in ds.info.get("load_notes", {}).items():
        print(f"  note: {note} ({n} clips)")
    for problem in ds.info.get("skipped", []):
        print(f"  skipped: {problem}")
    for key, value in ds.info.get("summary", {}).items():
        print(f"  {key.replace('_', ' ')}: {value}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.data.export import export_dataset

    update, close = tqdm_progress(f"exporting {args.dataset}")
    try:
        out = export_dataset(args.dataset, args.out, args.format, progress=update)
    finally:
        close()
    print(f"wrote {out}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from core.data.audit import split_status
    from core.data.datasets import list_datasets, load_dataset
    from core.data.splits import list_splits

    for name in list_datasets():
        ds = load_dataset(name)
        splits = ", ".join(f"{s} [{split_status(ds, s)}]" for s in list_splits(ds)) or "no splits"
        print(f"{name}: {len(ds.manifest)} clips, {ds.manifest['group_id'].nunique()} groups; {splits}")
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    from core.data.datasets import load_dataset
    from core.data.splits import check_split, make_split, one_class_parts, save_split

    ds = load_dataset(args.dataset)
    fractions = dict(zip(("train", "dev", "test"), args.fractions))
    split = make_split(ds.manifest, fractions, seed=args.seed)
    problems = check_split(ds.manifest, split)
    if problems:
        raise LabError("split is invalid: " + "; ".join(problems))
    path = save_split(ds, args.name, split, {"fractions": fractions, "seed": args.seed, "method": "group-stratified"})
    table = ds.manifest.assign(split=split.to_numpy()).groupby(["split", "label"]).size().unstack(fill_value=0)
    print(f"saved {path}\n{table.to_string()}")
    for part, label in one_class_parts(ds.manifest, split).items():
        print(f"warning: the {part} part holds {label} clips only: its accuracy is {label} recall, and balanced "
              "accuracy, ROC-AUC and calibration cannot be judged on it", file=sys.stderr)  # fmt: skip
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from core.data.audit import audit_split
    from core.data.datasets import load_dataset

    ds = load_dataset(args.dataset)
    update, close = tqdm_progress("auditing")
    try:
        if args.against_base:
            from core.data.audit import audit_against
            from core.detectors.lab_base import pool_dataset

            reference = pool_dataset()  # the real-voice set's train part: what the base model learnt from
            report = audit_against(ds, args.split, args.part, reference, threshold=args.threshold, progress=update)
        else:
            report = audit_split(
                ds, args.split, content=not args.structural_only, threshold=args.threshold, progress=update
            )
    finally:
        close()
    verdict = "LEAKY" if report.leaky else "clean"
    print(f"split {args.split!r}: {verdict} — {report.counts() or 'no findings'} ({report.seconds:.1f} s)")
    for limit in report.settings.get("limits", []):
        print(f"  limit: {limit}")
    if report.leaky:
        print(report.findings.head(args.show).to_string(index=False))
    return 1 if report.leaky and args.fail_on_leak else 0


def cmd_tag(args: argparse.Namespace) -> int:
    from core.data import annotations
    from core.data.datasets import load_dataset

    ds = load_dataset(args.dataset)
    if args.clip and args.tag:
        if args.remove:
            annotations.remove_tag(ds, args.clip, args.tag)
        else:
            annotations.set_tag(ds, args.clip, args.tag, args.note)
    elif args.clip or args.tag:
        raise LabError("give both a clip id and a tag (or neither, to list the tags)")
    t = annotations.load(ds)
    print(t.to_string(index=False) if len(t) else f"no tags in {ds.name}")
    return 0


def cmd_relabel(args: argparse.Namespace) -> int:
    from core.data import relabels
    from core.data.datasets import load_dataset

    ds = load_dataset(args.dataset)
    if args.clip:
        if bool(args.to) == bool(args.dismiss):
            raise LabError("give --to speech|nonspeech to relabel, or --dismiss to keep the label")
        relabels.decide(ds, args.clip, "dismiss" if args.dismiss else "relabel", args.to or "", args.note)
    t = relabels.log(ds) if args.history else relabels.current(ds)
    print(t.to_string(index=False) if len(t) else f"no relabels in {ds.name} (the manifest's labels stand)")
    return 0


def cmd_plant_flips(args: argparse.Namespace) -> int:
    from core.data.planted_flips import plant_flips

    ds = plant_flips(args.source, args.name, args.share, args.seed)
    print(f"{ds.name}: {ds.info['flipped']} of {len(ds.manifest)} labels flipped ({args.share:.0%} of each group); "
          f"the truth is in {ds.root / 'planted_flips.csv'}. Cross-validate it by group, then: "
          f"python -m core label-issues CV-oof-s0")  # fmt: skip
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from core.data.merge import merge_datasets, parse_part

    ds = merge_datasets(args.name, [parse_part(p) for p in args.parts], args.seed)
    counts = ds.manifest.groupby("label").agg(clips=("clip_id", "size"), groups=("group_id", "nunique"))
    print(f"{ds.name}: {ds.info['description']}\n{counts.to_string()}")
    return 0


def cmd_conditions(args: argparse.Namespace) -> int:
    from core.data.conditions import ConditionSpec, generate
    from core.data.datasets import load_dataset

    spec = ConditionSpec(
        durations_ms=tuple(args.durations),
        snrs_db=tuple(args.snrs),
        include_clean=not args.no_clean,
        noise=args.noise,
        noise_folder=args.noise_folder or "",
        bands=tuple(args.bands),
        rooms=tuple(args.rooms),
        bases_per_label=args.bases_per_label,
        seed=args.seed,
    )
    ds = run_job(
        args,
        f"conditions {args.name}",
        lambda update, should_stop: generate(
            load_dataset(args.dataset), args.split, args.part, args.name, spec, args.force, update, should_stop
        ),
        lambda d: (f"{d.name}: {len(d.manifest)} clips", d.name),
    )
    print(
        f"condition set {ds.name}: {len(ds.manifest)} clips from {ds.info['base_clips']} base clips; split 'conditions'"
    )
    print(f"score it: python -m core evaluate --dataset {ds.name} --split conditions --part test --detector silero-vad")
    return 0


# long: argparse declarations only, one block per command of the data stage
def register(top: argparse._SubParsersAction) -> None:
    """`data ...` (datasets, splits, audits), `tag` and `conditions`."""
    from core.data import conditions as cond
    from core.data.audit import NEAR_THRESHOLD
    from core.data.importers import SCANNERS

    data = top.add_parser("data", help="datasets, splits and leakage audits").add_subparsers(dest="cmd", required=True)

    b = data.add_parser("build-default", help="build the embedded default dataset (offline)")
    b.add_argument("--name", default="default")
    b.add_argument("--force", action="store_true", help="rebuild even if it exists")
    b.add_argument("--workers", type=positive_int, default=2)
    b.set_defaults(func=cmd_build_default)

    v = data.add_parser("build-voices", help="build the real-voice dataset from Debian sound packages (offline)")
    v.add_argument("--name", default="voices")
    v.add_argument("--force", action="store_true", help="rebuild even if it exists")
    v.add_argument("--workers", type=positive_int, default=2)
    v.add_argument(
        "--synthetic",
        default="",
        metavar="DATASET",
        help="also take this synthetic dataset's clean clips, as source 'synthetic' (e.g. default)",
    )
    v.set_defaults(func=cmd_build_voices)

    i = data.add_parser("import", help="import a real corpus (audio read in place)")
    i.add_argument("kind", choices=sorted(SCANNERS))
    i.add_argument(
        "source", help="folder; CSV file (csv); recordings manifest (lhotse); save_to_disk folder or cached id (hf)"
    )
    i.add_argument("supervisions", nargs="?", help="lhotse: the supervisions manifest")
    i.add_argument("--name", required=True, help="dataset name")
    i.add_argument("--skip-bad", action="store_true", help="skip unusable clips instead of failing")
    i.add_argument("--force", action="store_true", help="replace an existing dataset of that name")
    i.add_argument("--include-gaps", action="store_true", help="voxconverse, lhotse: gaps between turns as non-speech")
    i.add_argument("--max-seconds", type=finite_float, default=10.0, help="lhotse: cut longer segments into pieces")
    i.add_argument(
        "--paths-outside-ok",
        action="store_true",
        help="let a manifest list audio outside its own folder (refused otherwise; never offered on a page)",
    )
    i.add_argument("--cut-seconds", type=finite_float, default=None,
                   help="any format: cut clips longer than this into pieces (kept together in splits); "
                        "30 fits Qwen2-Audio's window")  # fmt: skip
    i.add_argument("--label-column", default="label", help="hf: the column holding the class")
    i.add_argument("--speech-values", nargs="+", default=[], help="hf: values of the label column that mean speech")
    i.add_argument("--nonspeech-values", nargs="+", default=[],
                   help="hf: values meaning non-speech (default: every other value)")  # fmt: skip
    i.add_argument("--group-column", default="", help="hf: the column holding the speaker or source")
    i.add_argument("--clip-groups", action="store_true",
                   help="hf: no group column; each clip its own group (no split can then be speaker-safe)")  # fmt: skip
    i.add_argument("--hf-split", default="", help="hf: one split of a DatasetDict (default: all, joined)")
    i.add_argument("--job-dir", help=argparse.SUPPRESS)
    i.set_defaults(func=cmd_import)

    ex = data.add_parser("export", help="a dataset's manifest (and audio, for hf) as Parquet, CSV or a HF dataset")
    ex.add_argument("dataset")
    ex.add_argument("--format", choices=["parquet", "csv", "hf"], default="parquet")
    ex.add_argument("--out", required=True, help="file (parquet, csv) or folder (hf) to write")
    ex.set_defaults(func=cmd_export)

    ls = data.add_parser("list", help="datasets and their splits")
    ls.set_defaults(func=cmd_list)

    s = data.add_parser("split", help="make and save a group-aware, label-stratified split")
    s.add_argument("--dataset", default="default")
    s.add_argument("--name", default="default", help="split name")
    s.add_argument(
        "--fractions", type=finite_float, nargs=3, default=[0.7, 0.15, 0.15], metavar=("TRAIN", "DEV", "TEST")
    )
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_split)

    a = data.add_parser("audit", help="audit a saved split for leakage")
    a.add_argument("--dataset", default="default")
    a.add_argument("--split", default="default")
    a.add_argument("--threshold", type=unit_interval, default=NEAR_THRESHOLD, help="near-duplicate match score")
    a.add_argument("--structural-only", action="store_true", help="skip the content (audio) checks")
    a.add_argument("--show", type=positive_int, default=20, help="findings to print")
    a.add_argument("--fail-on-leak", action="store_true", help="exit 1 if the split is leaky")
    a.add_argument(
        "--against-base",
        action="store_true",
        help="check --part of the split against the lab base model's training pool instead",
    )
    a.add_argument("--part", default="test", help="with --against-base: train, dev, test or all")
    a.set_defaults(func=cmd_audit)

    tg = top.add_parser("tag", help="tag a clip in the dataset's annotations (or --remove the tag); list with no clip")
    tg.add_argument("--dataset", default="default")
    tg.add_argument("clip", nargs="?", help="clip id")
    tg.add_argument("tag", nargs="?", help="e.g. 'label wrong', 'ambiguous'")
    tg.add_argument("--note", default="")
    tg.add_argument("--remove", action="store_true")
    tg.set_defaults(func=cmd_tag)

    rl = top.add_parser("relabel", help="correct a clip's label (kept beside the manifest, dated); list with no clip")
    rl.add_argument("--dataset", default="default")
    rl.add_argument("clip", nargs="?", help="clip id")
    rl.add_argument("--to", choices=["speech", "nonspeech"], help="the corrected label")
    rl.add_argument("--dismiss", action="store_true", help="the label is right: keep it and dismiss the flag")
    rl.add_argument("--note", default="")
    rl.add_argument("--history", action="store_true", help="every decision, not only the standing ones")
    rl.set_defaults(func=cmd_relabel)

    mg = data.add_parser("merge", help="one dataset from clips of several (audio read in place), e.g. fsdd + voices' "
                         "non-speech: merge fsdd-mix fsdd voices:nonspeech")  # fmt: skip
    mg.add_argument("name")
    mg.add_argument(
        "parts", nargs="+", metavar="NAME[:LABEL[:MAX]]", help="a dataset, optionally one label, at most MAX clips"
    )
    mg.add_argument("--seed", type=int, default=0)
    mg.set_defaults(func=cmd_merge)

    pf = data.add_parser("plant-flips", help="a copy of a dataset with a known share of labels flipped (by group)")
    pf.add_argument("source")
    pf.add_argument("name")
    pf.add_argument("--share", type=unit_interval, default=0.08)
    pf.add_argument("--seed", type=int, default=0)
    pf.set_defaults(func=cmd_plant_flips)

    cd = top.add_parser("conditions", help="a psychoacoustic condition set (durations × SNRs × bands × rooms)")
    cd.add_argument("--dataset", default="default", help="source dataset")
    cd.add_argument("--split", required=True, help="a saved split of the source dataset")
    cd.add_argument("--part", default="test", help="which part supplies the base clips (the rest supply babble)")
    cd.add_argument("--name", required=True, help="name of the new dataset")
    cd.add_argument("--durations", type=positive_int, nargs="+", default=list(cond.DURATIONS_MS), help="milliseconds")
    cd.add_argument("--snrs", type=finite_float, nargs="+", default=list(cond.SNRS_DB), help="dB")
    cd.add_argument("--no-clean", action="store_true", help="leave out the noise-free variants")
    cd.add_argument("--noise", choices=list(cond.NOISES), default="white")
    cd.add_argument(
        "--noise-folder",
        help="with --noise folder: a folder of noise recordings, or dataset:NAME (its non-speech clips)",
    )
    cd.add_argument("--bands", nargs="+", choices=list(cond.BANDS), default=["clean"])
    cd.add_argument("--rooms", nargs="+", choices=list(cond.ROOMS), default=["none"])
    cd.add_argument("--bases-per-label", type=positive_int, default=24)
    cd.add_argument("--seed", type=int, default=0)
    cd.add_argument("--force", action="store_true", help="replace an existing dataset of that name")
    cd.add_argument("--job-dir", help=argparse.SUPPRESS)
    cd.set_defaults(func=cmd_conditions)
