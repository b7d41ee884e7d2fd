"""`python -m core prompts ...`: try candidate prompts on a split, and optimise them (OPRO) as a study."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from core.cli.common import add_executor, executor_of, on_ray, positive_int, run_job, tqdm_progress
from core.errors import LabError


def _candidates(args: argparse.Namespace) -> list:
    """Prompts from repeated --candidate TEXT [SPEECH NONSPEECH] and/or a JSON file of {text, speech, nonspeech}."""
    from core.detectors.llm.prompt import Prompt

    out = []
    for values in args.candidate or []:
        if len(values) not in (1, 3):
            raise LabError(f"--candidate takes TEXT or TEXT SPEECH NONSPEECH, got {len(values)} values: {values}")
        out.append(Prompt(*values))
    if args.candidates_file:
        try:
            items = json.loads(Path(args.candidates_file).read_text(encoding="utf-8"))
            out += [Prompt(str(i["text"]), str(i.get("speech", "A")), str(i.get("nonspeech", "B"))) for i in items]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise LabError(f"{args.candidates_file}: not a JSON list of {{text, speech, nonspeech}} ({exc})") from exc
    if not out:
        raise LabError("give at least one candidate: --candidate TEXT [SPEECH NONSPEECH] or --candidates-file")
    return out


def _detector_options(args: argparse.Namespace) -> dict:
    opts = {"adapter": args.adapter, "dtype": args.dtype, "batch_size": args.batch_size}
    opts.update(load_in_4bit=args.load_in_4bit, compile=args.compile)
    from core.detectors import needs_model

    return {**opts, "model": args.model} if needs_model(args.detector) else opts


def cmd_try(args: argparse.Namespace) -> int:
    from core.data.datasets import load_dataset
    from core.data.splits import select_clips
    from core.detectors import make_detector
    from core.detectors.llm.prompt import check_prompt_text
    from core.prompts import candidates as cand
    from core.prompts import report
    from core.prompts.subset import stratified_subset
    from core.scoring import predictions
    from core.scoring.evaluate import evaluate_prompts

    prompts = _candidates(args)
    seen: dict = {}
    for i, p in enumerate(prompts, 1):
        check_prompt_text(p)
        reason = cand.check(p, seen)
        if reason:
            raise LabError(f"candidate {i}: {reason}")
        seen[cand.key(p)] = f"candidate {i}"
    from core.detectors import LLM_DETECTORS

    if args.detector not in LLM_DETECTORS:
        raise LabError(
            f"prompts are asked of audio LLMs: --detector {' or '.join(LLM_DETECTORS)}, not {args.detector!r}"
        )
    ds = load_dataset(args.dataset)
    ids = None
    if args.subset:
        ids = stratified_subset(select_clips(ds, args.split, args.part), args.subset, args.seed)
    name = args.name or f"{ds.name}-{args.split}-{args.part}-prompt"

    def work(update, should_stop):
        det = make_detector(
            args.detector, **_detector_options(args), prompt=prompts[0].text, answers=prompts[0].answers
        )
        return evaluate_prompts(
            ds, args.split, args.part, det, prompts, clip_ids=ids, names=[f"{name}{k + 1}" for k in range(len(prompts))],
            progress=update, should_stop=should_stop,
        )  # fmt: skip

    if executor_of(args).ray and not args.job_dir:  # the scoring job runs as a Ray task; its tables come back
        paths = [predictions.resolve(stem) for stem in on_ray(args, "prompts", f"scoring {len(prompts)} prompts")]
    else:
        paths = run_job(
            args, f"scoring {len(prompts)} prompts", work, lambda ps: (f"wrote {len(ps)} tables", [p.stem for p in ps])
        )
    tables = {p.stem: predictions.load(p)[0] for p in paths}
    answers = {p.stem: pr.answers for p, pr in zip(paths, prompts)}
    summary = report.summary(tables, answers)
    cols = ["table", "speech", "nonspeech", "balanced_accuracy", "ci_lower", "ci_upper", "roc_auc", "ece", "clips"]
    print(summary[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    bw = report.best_and_worst(report.by_condition(tables))
    if len(bw):
        print("\nbest and worst prompt per condition:")
        print(bw.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def _config(args: argparse.Namespace):
    from core.prompts.study import StudyConfig

    values = {f.name: getattr(args, f.name) for f in fields(StudyConfig) if getattr(args, f.name, None) is not None}
    return StudyConfig(**values)


def cmd_optimise(args: argparse.Namespace) -> int:
    from core.prompts import study

    executor = executor_of(args)
    study_id = study.create(_config(args), executor=executor)
    if args.background or executor.ray:
        study.launch(study_id)
        print(study_id)
        return 0
    print(f"prompt study {study_id}: running in the foreground (results/prompts/{study_id})", file=sys.stderr)
    return _run(study_id)


def _run(study_id: str, resume: bool = False) -> int:
    """Run a study here; under --job-dir style status files (the background process) its folder is the job."""
    import signal

    from core.prompts import study
    from core.runs import jobs

    d = study.folder(study_id)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("now", True))
    if jobs.hold_lock(d) is None:  # kept for the process's life: one search per study
        raise LabError(f"prompt study {study_id} is already running in another process")
    update, close = tqdm_progress(f"prompt study {study_id}")

    def report(frac: float, msg: str) -> None:
        update(frac, msg)
        jobs.write_status(d, "running", frac, msg)

    jobs.write_status(d, "running", 0.0, "resuming" if resume else "starting")
    try:
        res = study.run(study_id, report, lambda: stop["now"] or jobs.cancel_requested(d))
    except KeyboardInterrupt:
        jobs.write_status(d, "cancelled", 0.0, "cancelled; finished iterations are kept, resume continues")
        raise
    except Exception as exc:
        jobs.write_status(d, "failed", 0.0, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        close()
    best, start = res["best"], res["start"]
    jobs.write_status(
        d, "finished", 1.0,
        f"test balanced accuracy {start['test']['balanced_accuracy']:.3f} (start) → {best['test']['balanced_accuracy']:.3f} (chosen)",
    )  # fmt: skip
    _print_result(res)
    return 0


def _print_result(res: dict) -> None:
    for role in ("start", "best"):
        r = res[role]
        t, d = r["test"], r["dev"]
        unseen = f"dev unseen {d['balanced_accuracy']:.3f}" if d else "dev unseen: none"
        print(
            f"{role:>5}: #{r['id']} dev subset {r['dev_subset']:.3f}; {unseen} ({r['dev_clips_unseen']} clips); "
            f"test {t['balanced_accuracy']:.3f} [{t['ci_lower']:.3f}, {t['ci_upper']:.3f}]\n       {r['prompt']!r} {r['answers']}"
        )
    g, o = res["balanced_accuracy_gain_on_test"], res["optimism"]
    c = res["compare_best_vs_start_on_test"]
    print(
        f"chosen − start on test: balanced accuracy {g['diff']:+.3f}, 95% CI clustered by group "
        f"[{g['ci'][0]:+.3f}, {g['ci'][1]:+.3f}]; McNemar exact p {c['mcnemar']['exact']:.3g}"
    )
    print(
        f"optimism (gain on the searched subset − gain on test): {o['diff']:+.3f}, 95% CI [{o['ci'][0]:+.3f}, {o['ci'][1]:+.3f}]"
    )


def cmd_run(args: argparse.Namespace) -> int:
    return _run(args.study, resume=args.resume)


def cmd_manage(args: argparse.Namespace) -> int:
    from core.prompts import study

    if args.action == "list":
        t = study.list_studies()
        print(t.to_string(index=False) if len(t) else "no prompt studies")
    elif args.action == "resume":
        study.launch(args.study, resume=True)
        print(args.study)
    elif args.action == "cancel":
        study.cancel(args.study)
    elif args.action == "show":
        st = study.status(args.study)
        print(f"{args.study}: {st['state']} — {st.get('message', '')}")
        print(study.progress_frame(args.study).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        h = study.history(args.study)
        if len(h):
            print(
                h.sort_values("score", ascending=False)[
                    ["id", "iteration", "score", "ci_lower", "ci_upper", "speech", "nonspeech", "text"]
                ]
                .head(10)
                .to_string(index=False, float_format=lambda v: f"{v:.3f}")
            )
        res = study.result(args.study)
        if res:
            _print_result(res)
    return 0


def _scoring_args(p: argparse.ArgumentParser) -> None:
    from core.detectors import LLM_DETECTORS

    p.add_argument("--dataset", default="default")
    p.add_argument("--split", default="default")
    p.add_argument("--detector", default="lab-base", choices=list(LLM_DETECTORS))
    p.add_argument("--model", default="", help="the checkpoint folder (audio-llm: also a cached id); not for lab-base")
    p.add_argument("--adapter", default="", help="LoRA adapter folder")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--load-in-4bit", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    add_executor(p)


def register(top: argparse._SubParsersAction) -> None:
    """`prompts try | optimise | run | resume | cancel | list | show`."""
    from core.prompts.study import StudyConfig

    pr = top.add_parser("prompts", help="try candidate prompts; optimise them (OPRO), judged on test at the end")
    sub = pr.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("try", help="score several prompts on a split's part; one predictions table each")
    _scoring_args(t)
    t.add_argument("--part", default="dev", help="dev (default), test, train or all")
    t.add_argument("--candidate", nargs="+", action="append", metavar="TEXT [SPEECH NONSPEECH]",
                   help="a prompt and, optionally, its two answers (default A and B); repeat for more")  # fmt: skip
    t.add_argument("--candidates-file", help="JSON list of {text, speech, nonspeech}")
    t.add_argument("--subset", type=int, default=0, help="score a label- and condition-stratified subset of N clips")
    t.add_argument("--name", default="", help="table name prefix")
    t.add_argument("--job-dir", help=argparse.SUPPRESS)
    t.set_defaults(func=cmd_try)

    o = sub.add_parser("optimise", aliases=["optimize"], help="an OPRO search from a starting prompt")
    defaults = {f.name: f.default for f in fields(StudyConfig) if f.default is not MISSING}
    _scoring_args(o)
    o.add_argument(
        "--start-prompt", default=None, help="the prompt the search starts from (default: the lab's question)"
    )
    o.add_argument("--start-speech", default=None, help="its answer meaning speech (default A)")
    o.add_argument("--start-nonspeech", default=None, help="its answer meaning non-speech (default B)")
    o.add_argument("--proposer", default=None, choices=["builtin", "causal-lm", "audio-llm-text"])
    o.add_argument("--optimiser-model", default=None, help="causal-lm: folder or cached id of the optimiser LLM")
    o.add_argument("--optimiser-4bit", action="store_true", default=None)
    for name in ("iterations", "candidates", "subset"):
        o.add_argument(f"--{name}", type=positive_int, default=None, help=f"default {defaults[name]}")
    o.add_argument("--task", default=None, help="the task description the optimiser reads")
    o.add_argument("--background", action="store_true", help="run as a background job; print its id")
    o.set_defaults(func=cmd_optimise)

    r = sub.add_parser("run", help="run (or continue) a registered study here (the background job runs this)")
    r.add_argument("study")
    r.add_argument("--resume", action="store_true")
    r.set_defaults(func=cmd_run)

    for action in ("resume", "cancel", "show"):
        m = sub.add_parser(action, help=f"{action} a prompt study")
        m.add_argument("study")
        m.set_defaults(func=cmd_manage, action=action)
    ls = sub.add_parser("list", help="prompt studies")
    ls.set_defaults(func=cmd_manage, action="list", study=None)
