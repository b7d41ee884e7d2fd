"""A prompt search's record on disk: its settings, every iteration, its candidates' tables and
its end, as the pages, the CLI and the report read them (the layout: see `study`)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from core import atomic
from core.detectors import needs_model
from core.detectors.llm.prompt import DEFAULT_PROMPT, Prompt
from core.errors import LabError
from core.paths import results_root
from core.prompts.proposers.base import TASK
from core.runs import jobs
from core.scoring import predictions


@dataclass
class StudyConfig:
    """Everything a search needs; saved in study.json so a search is reproducible from its folder."""

    dataset: str = "default"
    split: str = "default"
    detector: str = "lab-base"  # or any audio-LLM detector (core.detectors.LLM_DETECTORS) with its `model`
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
        return {**opts, "model": self.model} if needs_model(self.detector) else opts


def studies_dir() -> Path:
    return results_root() / "prompts"


def folder(study_id: str) -> Path:
    d = studies_dir() / study_id
    if "/" in study_id or study_id.startswith(".") or not (d / "study.json").exists():
        raise LabError(f"no prompt study {study_id!r}")
    return d


def config(study_id: str) -> StudyConfig:
    return StudyConfig.from_dict(json.loads((folder(study_id) / "study.json").read_text())["config"])


def status(study_id: str) -> dict[str, Any]:
    return jobs.folder_status(folder(study_id))


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
                "detector": Path(cfg.model).name if needs_model(cfg.detector) else cfg.detector,
                "proposer": cfg.proposer,
                "iterations": f"{max(len(h) - 1, 0)}/{cfg.iterations}",
                "best_dev": h["best_so_far"].iloc[-1] if len(h) else None,
                "test_start": (res.get("start") or {}).get("test", {}).get("balanced_accuracy"),
                "test_best": (res.get("best") or {}).get("test", {}).get("balanced_accuracy"),
            }
        )
    return pd.DataFrame(rows)


def append_line(path: Path, record: dict[str, Any]) -> None:
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


def prompt_of(e: dict[str, Any]) -> Prompt:
    return Prompt(e["text"], e["speech"], e["nonspeech"])


def table_path(study_id: str, stem: str) -> Path:
    """A candidate's table (scored on the dev subset) in the study's tables/ folder."""
    for suffix in predictions.SUFFIXES:
        path = folder(study_id) / "tables" / f"{stem}{suffix}"
        if path.exists():
            return path
    raise LabError(f"prompt study {study_id}: the table {stem!r} of a candidate is missing")
