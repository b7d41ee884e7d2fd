"""A prompt search (OPRO) kept on disk: settings, every iteration, and the honest end on test.

results/prompts/<id>/ holds:
  study.json      settings and the fixed dev subset (clip ids) every candidate is scored on
  history.jsonl   one line per finished iteration: the prompts scored (id, text, answers, dev
                  score with its clustered CI, parents, the optimiser's reply), the proposals
                  turned away with their reasons, and the meta-prompt the optimiser saw
  proposals-N.json  iteration N's proposals, written before they are scored (a resumed search
                  scores the same ones, even from a sampling LLM)
  tables/         one predictions table per scored candidate (dev subset)
  status.json, pid.json, log.txt   the background job (see core.runs.jobs)
  result.json     the end: the start and the chosen prompt, each scored once on dev and on test

An iteration is one line, written whole after its candidates are scored, so a search killed at
any moment resumes at the first iteration without a line and computes what it would have.
The search never reads test; only the end does, for two prompts chosen before it looks.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from core import atomic
from core.detectors import LLM_DETECTORS, check_checkpoint, needs_model
from core.detectors.llm.prompt import Prompt, check_prompt_text
from core.errors import LabError
from core.prompts import candidates, report
from core.prompts.proposers.base import Scored, meta_prompt

# the record (settings, iterations, tables, end) is read through this module too
from core.prompts.study_end import finish
from core.prompts.study_record import (  # noqa: F401
    StudyConfig,
    append_line,
    config,
    folder,
    history,
    iterations,
    list_studies,
    progress_frame,
    prompt_of,
    rejected,
    result,
    status,
    studies_dir,
)
from core.runs import jobs

Progress = Callable[[float, str], None]


def check_config(cfg: StudyConfig) -> None:
    """Refuse, while the user is still at the form, what a search would only fail on after it starts."""
    from core.prompts.proposers import check as check_proposer

    if cfg.detector not in LLM_DETECTORS:
        raise LabError(f"prompts are asked of audio LLMs: detector {' or '.join(LLM_DETECTORS)}, got {cfg.detector!r}")
    for name in ("iterations", "candidates", "subset", "batch_size"):
        if getattr(cfg, name) < 1:
            raise LabError(f"{name} must be at least 1, got {getattr(cfg, name)}")
    check_prompt_text(cfg.start)
    bad = candidates.check(cfg.start, {})
    if bad:
        raise LabError(f"the starting prompt: {bad}")
    from core.detectors.checkpoints import require_adapter

    if needs_model(cfg.detector):
        check_checkpoint(cfg.detector, cfg.model)
    if cfg.adapter:
        require_adapter(cfg.adapter)
    check_proposer(cfg.proposer, cfg.optimiser_model)


def create(cfg: StudyConfig, executor=None) -> str:
    """Register a search: settings checked, the dev subset drawn and fixed. Returns its id."""
    from core.data.datasets import load_dataset
    from core.data.splits import select_clips
    from core.prompts.subset import stratified_subset

    check_config(cfg)
    dev = select_clips(load_dataset(cfg.dataset), cfg.split, "dev")
    subset = stratified_subset(dev, cfg.subset, cfg.seed)
    study_id = f"prompts-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    d = studies_dir() / study_id
    d.mkdir(parents=True)
    atomic.write_json(d / "study.json", {"id": study_id, "config": asdict(cfg), "subset": subset})
    if executor is not None:
        from core.runs import executors

        if executor.ray:
            executors.check(executor.address)
        executors.save(d, executor)
    jobs.write_status(d, "queued", 0.0, f"queued: {cfg.iterations} iterations × {cfg.candidates} candidates")
    return study_id


def launch(study_id: str, resume: bool = False) -> None:
    """Run the search as a background `python -m core prompts run` process (survives a page reload)."""
    d = folder(study_id)
    st = status(study_id)
    if st["state"] == "finished":
        raise LabError(f"prompt study {study_id} has finished; nothing to resume")
    from core.runs import executors

    args = ["prompts", "run", study_id, *(["--resume"] if resume else [])]
    if executors.of(d).ray:  # a local driver runs the same command as a Ray task
        args = ["ray-drive", "--study", study_id, *(["--resume"] if resume else [])]
    jobs.start_locked(d, args, "resuming" if resume else "starting", st.get("progress", 0.0))


def cancel(study_id: str) -> None:
    jobs.signal_folder(folder(study_id))


# long: the search loop with its resume points; every step is a call, the loop reads as a whole
def run(study_id: str, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> dict:
    """The search: score the start, then per iteration propose, screen, score; then the end on test.

    Resumes where the history ends. Raises KeyboardInterrupt when `should_stop()` turns true
    (between batches of clips); what finished before stays on disk.
    """
    from core.data.datasets import load_dataset
    from core.detectors import make_detector
    from core.prompts.proposers import make_proposer
    from core.scoring import predictions
    from core.scoring.evaluate import evaluate_prompts

    d = folder(study_id)
    saved = json.loads((d / "study.json").read_text())
    cfg, subset = StudyConfig.from_dict(saved["config"]), saved["subset"]
    report_ = progress or (lambda f, m: None)
    ds = load_dataset(cfg.dataset)
    report_(0.0, "loading the audio LLM")
    detector = make_detector(cfg.detector, **cfg.detector_options(), prompt=cfg.start.text, answers=cfg.start.answers)
    done = iterations(study_id)
    next_id = sum(len(it["scored"]) for it in done)
    steps = cfg.iterations + 2  # the start, the iterations, the end

    def score(prompts: list[Prompt], it: int) -> list[dict[str, Any]]:
        nonlocal next_id

        def sub(f: float, m: str) -> None:
            report_((it + f) / steps, f"iteration {it}/{cfg.iterations}: {m}" if it else f"the start prompt: {m}")

        names = [f"{study_id}-i{it}-c{j + 1}" for j in range(len(prompts))]
        paths = evaluate_prompts(
            ds, cfg.split, "dev", detector, prompts, clip_ids=subset, names=names, progress=sub,
            should_stop=should_stop, folder=d / "tables", extra={"prompt_study": study_id, "iteration": it},
        )  # fmt: skip
        out = []
        for prompt, path in zip(prompts, paths):
            s = report.score(predictions.load(path)[0])
            out.append(
                {
                    "id": next_id,
                    "iteration": it,
                    "text": prompt.text,
                    "speech": prompt.speech,
                    "nonspeech": prompt.nonspeech,
                    "score": s["balanced_accuracy"],
                    "ci_lower": s["ci_lower"],
                    "ci_upper": s["ci_upper"],
                    "roc_auc": s["roc_auc"],
                    "ece": s["ece"],
                    "table": path.stem,
                }
            )
            next_id += 1
        return out

    t0 = time.time()
    if not done:
        entry = score([cfg.start], 0)[0]
        record = {"iteration": 0, "scored": [{**entry, "parents": [], "origin": "start"}], "rejected": []}
        append_line(d / "history.jsonl", {**record, "seconds": round(time.time() - t0, 2), "time": time.time()})
        done = iterations(study_id)
    proposer = None
    for it in range(len(done), cfg.iterations + 1):
        t0 = time.time()
        scored = [Scored(e["id"], prompt_of(e), e["score"]) for x in done for e in x["scored"]]
        shown = sorted(scored, key=lambda s: (s.score, -s.id))[-cfg.shown :]  # what the optimiser sees
        meta = meta_prompt(shown, cfg.task, cfg.shown)
        saved_proposals = d / f"proposals-{it}.json"
        if saved_proposals.exists():
            proposals = [
                candidates.Verdict(prompt_of(v) if v["text"] is not None else None, v["reason"], v["raw"], tuple(v["parents"]))
                for v in json.loads(saved_proposals.read_text())
            ]  # fmt: skip
        else:
            if proposer is None:
                report_(it / steps, f"iteration {it}/{cfg.iterations}: loading the optimiser ({cfg.proposer})")
                model = cfg.optimiser_model or (cfg.model if cfg.proposer == "audio-llm-text" else "")
                proposer = make_proposer(
                    cfg.proposer, model=model, adapter=cfg.adapter, load_in_4bit=cfg.optimiser_4bit
                )
            report_(it / steps, f"iteration {it}/{cfg.iterations}: asking {cfg.proposer} for {cfg.candidates} prompts")
            proposals = proposer.propose(meta, shown, cfg.candidates, seed=cfg.seed * 1000 + it)
            atomic.write_json(saved_proposals, [_verdict_json(v) for v in proposals])
        seen = {candidates.key(s.prompt): f"prompt #{s.id}" for s in scored}
        screened = candidates.screen(proposals, seen, f"iteration {it}", detector)
        ok = [v for v in screened if v.ok]
        entries = score([v.prompt for v in ok], it) if ok else []
        for e, v in zip(entries, ok):
            e.update(parents=list(v.parents), origin=v.raw[:2000])
        rejected_ = [{**_verdict_json(v), "raw": v.raw[:2000]} for v in screened if not v.ok]
        append_line(
            d / "history.jsonl",
            {
                "iteration": it,
                "scored": entries,
                "rejected": rejected_,
                "proposed": len(proposals),
                "meta_prompt": meta,
                "seconds": round(time.time() - t0, 2),
                "time": time.time(),
            },
        )
        done = iterations(study_id)
    report_((cfg.iterations + 1) / steps, "scoring the start and the chosen prompt on dev and test")
    out = finish(study_id, cfg, ds, detector, should_stop)
    report_(1.0, "finished")
    return out


def _verdict_json(v: candidates.Verdict) -> dict[str, Any]:
    p = v.prompt
    return {
        "text": p.text if p else None,
        "speech": p.speech if p else None,
        "nonspeech": p.nonspeech if p else None,
        "reason": v.reason,
        "raw": v.raw,
        "parents": list(v.parents),
    }
