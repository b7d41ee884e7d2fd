"""LoRA / QLoRA fine-tuning of an audio LLM on a dataset's train split, resumable.

One `accelerate` loop: `python -m core train --run-dir DIR` on one device, or
`accelerate launch --multi_gpu --num_processes N -m core train --run-dir DIR` (or torchrun)
data-parallel: each process takes a weighted share of every batch (`train_loop.shard`), so the
run takes the steps it would take on one device. The model, its inputs, its LoRA targets and
the loss (the answer tokens' cross-entropy only, on the same forward path evaluation reads its
logits from) come from the checkpoint's audio-LLM family (`core.detectors.llm`); nothing here
depends on which family it is.

The phases, one module each: settings (`train_config`), data and sampling (`train_data`),
model and optimiser set-up and checkpoints (`train_setup`), the step loop (`train_loop`),
evaluation during and after training (`train_eval`).

Resuming is exact: the data order and every augmentation draw are functions of
(seed, epoch, batch index), and a checkpoint holds the adapter, optimiser, scheduler and
position, so a run killed mid-epoch and resumed computes what it would have computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.detectors.base import check_clip_lengths
from core.runs import jobs
from core.runs.train_config import TrainConfig
from core.runs.train_data import TrainData, load_data
from core.runs.train_eval import finish
from core.runs.train_loop import Stop, train_epochs
from core.runs.train_setup import RunBusy, Trainer, build_trainer, restore, save_checkpoint, start

__all__ = ["RunBusy", "Stop", "TrainConfig", "train_run"]


def check_lengths(data: TrainData, tr: Trainer) -> None:
    """Clips outside the family's audio window (too long, or too short to hear) named before the first step."""
    shortest, longest = tr.family.clip_limits(tr.parts)
    if shortest is None and longest is None:
        return
    for part in (data.train, data.dev):
        check_clip_lengths(part["clip_id"].tolist(), part["duration_ms"].fillna(0).to_numpy() / 1000, longest,
                           "the base model's audio encoder", shortest)  # fmt: skip


def train_run(run_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    """Train the run in `run_dir` (config.json) to the end; return the final metrics.

    The phases: start → load_data → build_trainer → restore (when resuming) → train_epochs →
    finish. Writes status.json, metrics.jsonl, checkpoint.pt, adapter/ and predictions/ in the
    folder. Under `accelerate launch` only the main process writes them and returns the
    metrics; the others return {}.
    """
    ctx = start(run_dir)
    if jobs.cancel_requested(ctx.run_dir):  # cancelled while it was starting: nothing to save yet
        ctx.status("cancelled", 0.0, "cancelled before training started; resumable")
        raise Stop(0)
    ctx.status("running", 0.0, "loading data and model")
    data = load_data(ctx.cfg)
    tr = build_trainer(ctx, len(data.train))
    check_lengths(data, tr)
    done = restore(ctx, tr) if resume else 0
    try:
        done = train_epochs(ctx, data, tr, done)
    except Stop as stop:
        done = stop.done
        save_checkpoint(ctx, tr, done)
        ctx.status("cancelled", 0.9 * done / tr.total, f"cancelled at batch {done}/{tr.total}; resumable",
                   step=done, total=tr.total)  # fmt: skip
        raise
    if not ctx.main:  # the main process saves and evaluates alone; the others are done
        return {}
    return finish(ctx, data, tr)
