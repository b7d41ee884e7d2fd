"""`python -m core evaluate`: score a split with a detector into a predictions table."""

from __future__ import annotations

import argparse
import sys

from core.cli.common import add_executor, executor_of, positive_int, run_job


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.data.datasets import load_dataset
    from core.detectors import make_detector
    from core.runs.sharded import evaluate_sharded
    from core.scoring.evaluate import evaluate

    load_dataset(args.dataset)  # refused here, before any job: a missing dataset, model or adapter
    opts = _detector_options(args)
    executor = executor_of(args)
    if args.shard is not None:  # one replica of a sharded evaluation: score its clips, hand them back
        return _replica(args, opts)

    def work(update, should_stop):
        ds = load_dataset(args.dataset)
        if args.gpus > 1 or executor.ray:
            return evaluate_sharded(
                ds, args.split, args.part, _replica_argv(args), args.gpus, executor, seed=args.seed,
                progress=update, should_stop=should_stop, exclude_tags=args.exclude_tags, labels=args.labels,
            )  # fmt: skip
        return evaluate(
            ds,
            args.split,
            args.part,
            make_detector(args.detector, **opts),
            batch_size=args.batch_size,
            seed=args.seed,
            progress=update,
            should_stop=should_stop,
            exclude_tags=args.exclude_tags,
            labels=args.labels,
        )

    path = run_job(args, f"scoring with {args.detector}", work, lambda p: (f"wrote {p.name}", str(p)))
    print(f"predictions: {path}")
    from core.scoring.evaluate import window_note
    from core.scoring.predictions import read_meta

    if note := window_note(read_meta(path)):  # the sidecar only, not the rows
        print(f"note: {note}")
    return 0


def _detector_options(args: argparse.Namespace) -> dict:
    """The chosen detector's options from the flags, its checkpoint folder and adapter checked first."""
    from core.detectors import LLM_DETECTORS, REGISTRY, check_checkpoint, needs_model
    from core.detectors.checkpoints import require_adapter
    from core.detectors.llm.prompt import check_prompt
    from core.runs import registry

    name = args.detector
    if name == "audio-llm" and not args.model:
        from core.detectors.llm.qwen2_audio import DEFAULT_MODEL

        args.model = DEFAULT_MODEL
    if not REGISTRY[name].offline:
        check_checkpoint(name, args.model)
    if name not in LLM_DETECTORS:  # whisper, classifiers, CLAP: a folder and their own settings
        opts = {"model": args.model, "batch_size": args.batch_size, "dtype": args.dtype}
        if name == "audio-classifier":
            opts.update(speech_labels=args.speech_labels or None, head=args.head)
        if name == "clap":
            opts.update(speech_prompts=args.speech_prompt or None, nonspeech_prompts=args.nonspeech_prompt or None)
        return opts
    check_prompt(args.prompt)
    if args.adapter:
        require_adapter(args.adapter)
    opts = {"batch_size": args.batch_size, "padding": args.padding, "adapter": args.adapter or "", "dtype": args.dtype,
            "load_in_4bit": args.load_in_4bit}  # fmt: skip
    opts.update(mode=args.mode, compile=args.compile)  # a family without generate() or compile refuses them
    if needs_model(name):
        opts["model"] = args.model
    args.prompt, other = registry.scoring_prompt(args.adapter, args.prompt)  # evaluation matches training
    if other:
        print("warning: scoring with another prompt than the adapter was trained with", file=sys.stderr)
    if args.prompt:
        opts["prompt"] = args.prompt
    trained = registry.trained_answers(args.adapter) if args.adapter else None
    default = trained or ("A", "B")  # a run's adapter answers what its run was trained to answer
    args.answer_speech = args.answer_speech or default[0]
    args.answer_nonspeech = args.answer_nonspeech or default[1]
    if trained and (args.answer_speech, args.answer_nonspeech) != trained:
        print(f"warning: scoring with answers other than the adapter was trained to give {trained}", file=sys.stderr)
    opts["answers"] = (args.answer_speech, args.answer_nonspeech)
    return opts


def _replica_argv(args: argparse.Namespace) -> list[str]:
    """The evaluate command each replica runs (the same settings; the shard is added per replica)."""
    argv = ["evaluate", f"--dataset={args.dataset}", f"--split={args.split}", f"--part={args.part}"]
    argv += [f"--detector={args.detector}", f"--model={args.model}", f"--adapter={args.adapter}"]
    argv += [
        f"--prompt={args.prompt}",
        f"--answer-speech={args.answer_speech}",
        f"--answer-nonspeech={args.answer_nonspeech}",
    ]
    argv += [
        f"--padding={args.padding}",
        f"--mode={args.mode}",
        f"--dtype={args.dtype}",
        f"--batch-size={args.batch_size}",
    ]
    argv += (["--load-in-4bit"] if args.load_in_4bit else []) + (["--compile"] if args.compile else [])
    argv += [f"--speech-labels={x}" for x in args.speech_labels] + [f"--head={args.head}"]
    argv += [f"--speech-prompt={x}" for x in args.speech_prompt] + [
        f"--nonspeech-prompt={x}" for x in args.nonspeech_prompt
    ]
    return argv + [f"--exclude-tags={t}" for t in args.exclude_tags] + [f"--labels={args.labels}"]


def _replica(args: argparse.Namespace, opts: dict) -> int:
    import time
    from pathlib import Path

    from core.data.datasets import load_dataset
    from core.data.splits import select_clips
    from core.detectors import make_detector
    from core.runs.sharded import save_shard, shard_clips
    from core.scoring.evaluate import score_clips

    def work(update, should_stop):
        ds = load_dataset(args.dataset)
        clips = shard_clips(
            select_clips(ds, args.split, args.part, args.exclude_tags, args.labels), args.shard, args.of
        )
        detector = make_detector(args.detector, **opts)
        t0 = time.perf_counter()
        logits = score_clips(ds, clips, detector, args.batch_size, update, should_stop)
        info = {
            **detector.info(),
            "detector_name": detector.name,
            "prompt": detector.prompt,
            "adapter": detector.adapter,
        }
        save_shard(Path(args.shard_out), clips["clip_id"].tolist(), logits, time.perf_counter() - t0, info)
        return len(clips)

    n = run_job(args, f"replica {args.shard + 1}/{args.of}", work, lambda k: (f"scored {k} clips", k))
    print(f"replica {args.shard + 1}/{args.of}: {n} clips")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.scoring.export import export_table

    print(f"wrote {export_table(args.table, args.out, args.format)}")
    return 0


def add_detector_args(e: argparse.ArgumentParser) -> None:
    """The flags that choose and set up a detector (shared by evaluate and longform score)."""
    from core.detectors import DETECTORS

    e.add_argument("--detector", default="lab-base", choices=sorted(DETECTORS))
    e.add_argument(
        "--model",
        default="",
        help="the checkpoint folder of a detector that needs one (audio-llm: also a cached id; "
        "default Qwen/Qwen2-Audio-7B-Instruct)",
    )
    e.add_argument(
        "--speech-labels",
        nargs="*",
        action="extend",
        default=[],
        help="audio-classifier: the labels that mean speech (default: labels whose names say speech)",
    )
    e.add_argument(
        "--head",
        default="auto",
        choices=["auto", "softmax", "sigmoid"],
        help="audio-classifier: how the head's logits become a clip log-odds",
    )
    e.add_argument("--speech-prompt", action="append", default=[], help="clap: a text for speech (repeatable)")
    e.add_argument("--nonspeech-prompt", action="append", default=[], help="clap: a text for non-speech (repeatable)")
    e.add_argument("--adapter", default="", help="LoRA adapter folder (peft)")
    e.add_argument(
        "--prompt",
        default="",
        help="question text (answers A = speech, B = non-speech); the clip goes first, or where it says <audio>; "
        "default: a run's adapter's own prompt, else the default question",
    )
    e.add_argument(
        "--answer-speech", default="", help="audio LLMs: the answer that means speech (default: a run's own, else A)"
    )
    e.add_argument(
        "--answer-nonspeech",
        default="",
        help="audio LLMs: the answer that means non-speech (default: a run's own, else B)",
    )
    e.add_argument("--padding", default="trimmed", choices=["trimmed", "padded"])
    e.add_argument("--mode", default="logits", choices=["logits", "generate"])
    e.add_argument("--dtype", default="auto")
    e.add_argument("--load-in-4bit", action="store_true", help="NF4 base weights (CUDA + bitsandbytes)")
    e.add_argument("--batch-size", type=positive_int, default=16)
    e.add_argument("--compile", action="store_true", help="audio-llm: torch.compile the layers (GPU throughput)")


def register(top: argparse._SubParsersAction) -> None:
    """`evaluate`: score a split with a detector."""

    e = top.add_parser("evaluate", help="score a split with a detector; write a predictions table")
    e.add_argument("--dataset", default="default")
    e.add_argument("--split", default="default", help="saved split name")
    e.add_argument("--part", default="test", help="train, dev, test or all")
    add_detector_args(e)
    e.add_argument("--seed", type=int, default=None, help="recorded in the table (e.g. the run's seed)")
    e.add_argument("--job-dir", default=None, help=argparse.SUPPRESS)
    e.add_argument(
        "--exclude-tags",
        nargs="*",
        action="extend",
        default=[],
        help="leave out clips with these annotation tags (--exclude-tags=TAG for a tag that starts with '-')",
    )
    e.add_argument("--labels", choices=["original", "corrected"], default="original",
                   help="the manifest's labels, or with the dataset's relabels applied (recorded in the table)")  # fmt: skip
    e.add_argument("--gpus", type=positive_int, default=1, help="model replicas, one per GPU (or process on CPU)")
    add_executor(e)
    e.add_argument("--shard", type=int, default=None, help=argparse.SUPPRESS)
    e.add_argument("--of", type=int, default=1, help=argparse.SUPPRESS)
    e.add_argument("--shard-out", default="", help=argparse.SUPPRESS)
    e.set_defaults(func=cmd_evaluate)

    x = top.add_parser(
        "export", help="a predictions table as Parquet (metadata inside), CSV + sidecar, or a HF dataset"
    )
    x.add_argument("table", help="table name or path")
    x.add_argument("--format", choices=["parquet", "csv", "hf"], default="parquet")
    x.add_argument("--out", required=True, help="file (parquet, csv) or folder (hf) to write")
    x.set_defaults(func=cmd_export)
