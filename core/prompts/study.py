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
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import atomic
from core.detectors.audio_llm import DEFAULT_PROMPT
from core.detectors.prompt_batch import Prompt, check_prompt_text
from core.errors import LabError
from core.paths import results_root
from core.prompts import candidates, report
from core.prompts.proposers.base import TASK, Scored, meta_prompt
from core.runs import jobs

Progress = Callable[[float, str], None]


@dataclass
class StudyConfig:
    """Everything a search needs; saved in study.json so a search is reproducible from its folder."""

    dataset: str = "default"
    split: str = "default"
    detector: str = "lab-base"  # or "audio-llm" (any Qwen2-Audio folder or cached id)
    model: str = ""
    adapter: str = ""
    dtype: str = "auto"
    batch_size: int = 32
    load_in_4bit: bool = False
    compile: bool = False
    start_prompt: str = DEFAULT_PROMPT
    start_speech: str = "A"
    start_nonspeech: str = "B"
    proposer: str = "builtin"  # builtin | causal-lm | audio-llm-text
    optimiser_model: str = ""  # causal-lm: folder or cached id; audio-llm-text: "" = the scored model
    optimiser_4bit: bool = False
    iterations: int = 3
    candidates: int = 8  # proposals asked for per iteration
    subset: int = 150  # dev clips every candidate is scored on
    seed: int = 0
    task: str = TASK
    shown: int = 20  # best prompts shown to an LLM optimiser
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def start(self) -> Prompt:
        return Prompt(self.start_prompt, self.start_speech, self.start_nonspeech)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudyConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise LabError(f"unknown prompt-study setting(s): {sorted(unknown)}")
        return cls(**d)

    def detector_options(self) -> dict[str, Any]:
        opts = {"adapter": self.adapter, "dtype": self.dtype, "batch_size": self.batch_size}
        opts.update(load_in_4bit=self.load_in_4bit, compile=self.compile)
        return {**opts, "model": self.model} if self.detector == "audio-llm" else opts


def studies_dir() -> Path:
    return results_root() / "prompts"


def folder(study_id: str) -> Path:
    d = studies_dir() / study_id
    if "/" in study_id or study_id.startswith(".") or not (d / "study.json").exists():
        raise LabError(f"no prompt study {study_id!r}")
    return d


def check_config(cfg: StudyConfig) -> None:
    """Refuse, while the user is still at the form, what a search would only fail on after it starts."""
    from core.prompts.proposers import check as check_proposer

    if cfg.detector not in ("lab-base", "audio-llm"):
        raise LabError(f"prompts are asked of audio LLMs: detector 'lab-base' or 'audio-llm', got {cfg.detector!r}")
    for name in ("iterations", "candidates", "subset", "batch_size"):
        if getattr(cfg, name) < 1:
            raise LabError(f"{name} must be at least 1, got {getattr(cfg, name)}")
    check_prompt_text(cfg.start)
    bad = candidates.check(cfg.start, {})
    if bad:
        raise LabError(f"the starting prompt: {bad}")
    from core.detectors.audio_llm import require_adapter, require_available

    if cfg.detector == "audio-llm":
        require_available(cfg.model)
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


def config(study_id: str) -> StudyConfig:
    return StudyConfig.from_dict(json.loads((folder(study_id) / "study.json").read_text())["config"])


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


def status(study_id: str) -> dict[str, Any]:
    return jobs.folder_status(folder(study_id))


def cancel(study_id: str) -> None:
    jobs.signal_folder(folder(study_id))


def iterations(study_id: str) -> list[dict[str, Any]]:
    """The finished iterations, in order (a torn last line, from a kill mid-write, is ignored)."""
    path = folder(study_id) / "history.jsonl"
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out


def history(study_id: str) -> pd.DataFrame:
    """Every scored prompt: id, iteration, text, answers, dev score and CI, parents, origin, table."""
    rows = [e for it in iterations(study_id) for e in it["scored"]]
    columns = ["id", "iteration", "text", "speech", "nonspeech", "score", "ci_lower", "ci_upper", "roc_auc", "ece"]
    return (
        pd.DataFrame(rows, columns=[*columns, "parents", "origin", "table"]) if rows else pd.DataFrame(columns=columns)
    )


def rejected(study_id: str) -> pd.DataFrame:
    rows = [{"iteration": it["iteration"], **r} for it in iterations(study_id) for r in it["rejected"]]
    return pd.DataFrame(rows, columns=["iteration", "text", "speech", "nonspeech", "reason", "raw"])


def progress_frame(study_id: str) -> pd.DataFrame:
    """Per iteration: best score so far, mean and best of its candidates, how many were proposed/turned away."""
    rows, best = [], float("-inf")
    for it in iterations(study_id):
        scores = [e["score"] for e in it["scored"]]
        best = max([best, *scores])
        rows.append(
            {
                "iteration": it["iteration"],
                "best_so_far": best,
                "mean": sum(scores) / len(scores) if scores else float("nan"),
                "iteration_best": max(scores) if scores else float("nan"),
                "scored": len(scores),
                "rejected": len(it["rejected"]),
            }
        )
    return pd.DataFrame(rows, columns=["iteration", "best_so_far", "mean", "iteration_best", "scored", "rejected"])


def result(study_id: str) -> dict[str, Any] | None:
    path = folder(study_id) / "result.json"
    return json.loads(path.read_text()) if path.exists() else None


def list_studies() -> pd.DataFrame:
    rows = []
    d = studies_dir()
    for f in sorted(d.iterdir(), reverse=True) if d.exists() else []:
        if not (f / "study.json").exists():
            continue
        cfg, st, res = config(f.name), status(f.name), result(f.name) or {}
        h = progress_frame(f.name)
        rows.append(
            {
                "study": f.name,
                "state": st["state"],
                "progress": st.get("progress", 0.0),
                "dataset": cfg.dataset,
                "split": cfg.split,
                "detector": cfg.detector if cfg.detector == "lab-base" else Path(cfg.model).name,
                "proposer": cfg.proposer,
                "iterations": f"{max(len(h) - 1, 0)}/{cfg.iterations}",
                "best_dev": h["best_so_far"].iloc[-1] if len(h) else None,
                "test_start": (res.get("start") or {}).get("test", {}).get("balanced_accuracy"),
                "test_best": (res.get("best") or {}).get("test", {}).get("balanced_accuracy"),
            }
        )
    return pd.DataFrame(rows)


def _append(path: Path, record: dict[str, Any]) -> None:
    """One whole line, flushed to disk. A torn tail that a kill mid-write left behind (readers ignore
    it) is cut off first, so the new line starts on a line of its own."""
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(path, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, default=atomic.json_default) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _prompt_of(e: dict[str, Any]) -> Prompt:
    return Prompt(e["text"], e["speech"], e["nonspeech"])


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
        _append(d / "history.jsonl", {**record, "seconds": round(time.time() - t0, 2), "time": time.time()})
        done = iterations(study_id)
    proposer = None
    for it in range(len(done), cfg.iterations + 1):
        t0 = time.time()
        scored = [Scored(e["id"], _prompt_of(e), e["score"]) for x in done for e in x["scored"]]
        shown = sorted(scored, key=lambda s: (s.score, -s.id))[-cfg.shown :]  # what the optimiser sees
        meta = meta_prompt(shown, cfg.task, cfg.shown)
        saved_proposals = d / f"proposals-{it}.json"
        if saved_proposals.exists():
            proposals = [
                candidates.Verdict(_prompt_of(v) if v["text"] is not None else None, v["reason"], v["raw"], tuple(v["parents"]))
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
        screened = candidates.screen(proposals, seen, f"iteration {it}", detector.processor)
        ok = [v for v in screened if v.ok]
        entries = score([v.prompt for v in ok], it) if ok else []
        for e, v in zip(entries, ok):
            e.update(parents=list(v.parents), origin=v.raw[:2000])
        rejected_ = [{**_verdict_json(v), "raw": v.raw[:2000]} for v in screened if not v.ok]
        _append(
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


def _table_path(study_id: str, stem: str) -> Path:
    """A candidate's table (scored on the dev subset) in the study's tables/ folder."""
    from core.scoring import predictions

    for suffix in predictions.SUFFIXES:
        path = folder(study_id) / "tables" / f"{stem}{suffix}"
        if path.exists():
            return path
    raise LabError(f"prompt study {study_id}: the table {stem!r} of a candidate is missing")


def finish(study_id: str, cfg: StudyConfig, ds, detector, should_stop=None) -> dict[str, Any]:
    """The honest end: the start and the best dev prompt, each scored once on the whole dev part and on test.

    The best is chosen on the dev subset before test is read. Judged by the metric the search
    optimised (balanced accuracy): on test, best − start on the same clips with a clustered
    interval; on dev, the clips the search never saw (dev minus its subset). Optimism = the gain
    over the start claimed on the subset minus the gain on test, each paired on its own clips,
    with an interval from the two (independent: dev and test share no group) variances.
    """
    from core.analysis.compare import compare
    from core.analysis.stats import paired_balanced_accuracy_diff
    from core.decision import correct
    from core.scoring import predictions
    from core.scoring.evaluate import evaluate_prompts

    h = history(study_id)
    start = h.iloc[0]
    best = h.sort_values(["score", "id"], ascending=[False, True]).iloc[0]
    prompts = [_prompt_of(start), _prompt_of(best)]
    tables: dict[str, dict[str, pd.DataFrame]] = {}
    names: dict[str, list[str]] = {}
    for part in ("dev", "test"):
        names[part] = [f"{study_id}-start-{part}", f"{study_id}-best-{part}"]
        paths = evaluate_prompts(
            ds, cfg.split, part, detector, prompts, names=names[part], should_stop=should_stop,
            extra={"prompt_study": study_id},
        )  # fmt: skip
        tables[part] = {role: predictions.load(p)[0] for role, p in zip(("start", "best"), paths)}
    tables["subset"] = {
        role: predictions.load(_table_path(study_id, row["table"]))[0]
        for role, row in (("start", start), ("best", best))
    }
    subset = set(tables["subset"]["start"]["clip_id"])

    def gain(part: str) -> tuple[float, float, float]:
        """Balanced accuracy of best − start on the same clips of `part`, with its clustered interval."""
        a, b = tables[part]["best"], tables[part]["start"].set_index("clip_id").loc[tables[part]["best"]["clip_id"]]
        labels = a["label"].to_numpy()
        return paired_balanced_accuracy_diff(
            labels, correct(labels, a["logit"].to_numpy(float)), correct(labels, b["logit"].to_numpy(float)),
            a["group_id"].to_numpy(),
        )  # fmt: skip

    c = compare(tables["test"]["best"], tables["test"]["start"], n_boot=2000, seed=cfg.seed)
    (g_sub, sub_lo, sub_hi), (g_test, test_lo, test_hi) = gain("subset"), gain("test")
    half = float(np.hypot((sub_hi - sub_lo) / 2, (test_hi - test_lo) / 2))  # independent halves, in quadrature
    out: dict[str, Any] = {
        "compare_best_vs_start_on_test": c.as_json(),
        "balanced_accuracy_gain_on_test": {"diff": g_test, "ci": [test_lo, test_hi]},
        "balanced_accuracy_gain_on_subset": {"diff": g_sub, "ci": [sub_lo, sub_hi]},
        "optimism": {"diff": g_sub - g_test, "ci": [g_sub - g_test - half, g_sub - g_test + half]},
        "tables": names,
    }
    for role, row in (("start", start), ("best", best)):
        test_score = report.score(tables["test"][role])
        rest = tables["dev"][role][~tables["dev"][role]["clip_id"].isin(subset)]
        out[role] = {
            "id": int(row["id"]),
            "prompt": row["text"],
            "answers": [row["speech"], row["nonspeech"]],
            "dev_subset": float(row["score"]),
            "dev": report.score(rest) if len(rest) and rest["label"].nunique() == 2 else None,
            "dev_clips_unseen": int(len(rest)),
            "test": test_score,
        }
    out["same_prompt"] = bool(int(start["id"]) == int(best["id"]))
    atomic.write_json(folder(study_id) / "result.json", out)
    return result(study_id)  # as saved (JSON types), so callers and the page read the same thing
