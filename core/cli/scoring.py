"""`python -m core evaluate`: score a split with a detector into a predictions table."""

from __future__ import annotations

import argparse
import sys

from core.cli.common import positive_int, run_job


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.data.datasets import load_dataset
    from core.detectors import make_detector
    from core.detectors.audio_llm import check_prompt, require_adapter, require_available
    from core.runs import registry
    from core.scoring.evaluate import evaluate

    load_dataset(args.dataset)  # refused here, before any job: a missing dataset, model or adapter
    opts = {}
    if args.detector in ("audio-llm", "lab-base"):
        check_prompt(args.prompt)
        if args.detector == "audio-llm":
            require_available(args.model)
        if args.adapter:
            require_adapter(args.adapter)
        opts = {
            "batch_size": args.batch_size,
            "padding": args.padding,
            "mode": args.mode,
            "adapter": args.adapter or "",
            "dtype": args.dtype,
            "load_in_4bit": args.load_in_4bit,
            "compile": args.compile,
        }
        if args.detector == "audio-llm":
            opts["model"] = args.model
        args.prompt, other = registry.scoring_prompt(args.adapter, args.prompt)  # evaluation matches training
        if other:
            print("warning: scoring with another prompt than the adapter was trained with", file=sys.stderr)
        if args.prompt:
            opts["prompt"] = args.prompt
        opts["answers"] = (args.answer_speech, args.answer_nonspeech)

    def work(update, should_stop):
        return evaluate(
            load_dataset(args.dataset),
            args.split,
            args.part,
            make_detector(args.detector, **opts),
            batch_size=args.batch_size,
            seed=args.seed,
            progress=update,
            should_stop=should_stop,
            exclude_tags=args.exclude_tags,
        )

    path = run_job(args, f"scoring with {args.detector}", work, lambda p: (f"wrote {p.name}", str(p)))
    print(f"predictions: {path}")
    return 0


def register(top: argparse._SubParsersAction) -> None:
    """`evaluate`: score a split with a detector."""
    from core.detectors import DETECTORS

    e = top.add_parser("evaluate", help="score a split with a detector; write a predictions table")
    e.add_argument("--dataset", default="default")
    e.add_argument("--split", default="default", help="saved split name")
    e.add_argument("--part", default="test", help="train, dev, test or all")
    e.add_argument("--detector", default="lab-base", choices=sorted(DETECTORS))
    e.add_argument("--model", default="Qwen/Qwen2-Audio-7B-Instruct", help="audio-llm: local dir or cached id")
    e.add_argument("--adapter", default="", help="LoRA adapter folder (peft)")
    e.add_argument(
        "--prompt",
        default="",
        help="question text (answers A = speech, B = non-speech); the clip goes first, or where it says <audio>; "
        "default: a run's adapter's own prompt, else the default question",
    )
    e.add_argument("--answer-speech", default="A", help="audio LLMs: the answer (one token) that means speech")
    e.add_argument("--answer-nonspeech", default="B", help="audio LLMs: the answer (one token) that means non-speech")
    e.add_argument("--padding", default="trimmed", choices=["trimmed", "padded"])
    e.add_argument("--mode", default="logits", choices=["logits", "generate"])
    e.add_argument("--dtype", default="auto")
    e.add_argument("--load-in-4bit", action="store_true", help="NF4 base weights (CUDA + bitsandbytes)")
    e.add_argument("--batch-size", type=positive_int, default=16)
    e.add_argument("--compile", action="store_true", help="audio-llm: torch.compile the layers (GPU throughput)")
    e.add_argument("--seed", type=int, default=None, help="recorded in the table (e.g. the run's seed)")
    e.add_argument("--job-dir", default=None, help=argparse.SUPPRESS)
    e.add_argument(
        "--exclude-tags",
        nargs="*",
        action="extend",
        default=[],
        help="leave out clips with these annotation tags (--exclude-tags=TAG for a tag that starts with '-')",
    )
    e.set_defaults(func=cmd_evaluate)
