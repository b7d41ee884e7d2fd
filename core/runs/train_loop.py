"""The step loop of a run: batches in the run's order, augmented, through the family's answer
loss, data-parallel where launched so, with progress, checkpoints and a dev check per epoch.

Each batch's clips, augmentation and SpecAugment draws are functions of (seed, epoch, batch),
so a resumed run computes exactly what an uninterrupted one would.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from core.detectors.llm import answer_mask
from core.runs import jobs
from core.runs.train_data import TrainData, augment, epoch_order, spec_augment
from core.runs.train_eval import dev_metrics, score_clips, short_noisy_mask
from core.runs.train_setup import Context, Trainer, save_checkpoint

# torch is imported inside functions: importing this module stays cheap


class Stop(Exception):
    """Raised inside the loop when the run was asked to stop (SIGTERM), at micro-batch `done`."""

    def __init__(self, done: int = 0) -> None:
        super().__init__(f"stopped at micro-batch {done}")
        self.done = done


def shard(n: int, processes: int, rank: int) -> tuple[np.ndarray, float]:
    """This process's rows of a batch of `n` clips, and the weight of its loss.

    Data-parallel processes average their gradients; weighting each process's mean loss by
    its share of the batch (share × processes) makes that average the whole batch's mean. A
    process left without a row (a short last batch) runs one row at weight 0, so it still
    joins the gradient exchange.
    """
    rows = np.array_split(np.arange(n), processes)[rank]
    if len(rows) == 0:
        return np.arange(1), 0.0
    return rows, len(rows) * processes / n


def _any_process(accelerator, flag: bool) -> bool:
    """True when `flag` is set in any process (one cancel stops them all together)."""
    if accelerator.num_processes == 1:
        return flag
    import torch

    return bool(accelerator.reduce(torch.tensor(float(flag), device=accelerator.device), "sum") > 0)


def train_step(ctx: Context, data: TrainData, tr: Trainer, idx: np.ndarray, rng: np.random.Generator,
               answer_tokens: dict[str, int]) -> float:  # fmt: skip
    """One micro-batch: this process's share of the clips `idx`, through the answer loss; the batch's loss."""
    cfg, accelerator = ctx.cfg, ctx.accelerator
    answer = {True: cfg.answer_speech, False: cfg.answer_nonspeech}
    clips = augment([data.train_audio[i] for i in idx], data.noises, cfg, rng)
    answers = [answer[bool(data.labels[i])] for i in idx]
    batch = tr.family.prepare(tr.parts, clips, ctx.prompt, padded=False, answers=answers)
    if cfg.spec_augment:
        spec_augment(batch["input_features"], batch[tr.family.feature_mask].sum(-1), rng)
    rows, weight = shard(len(idx), accelerator.num_processes, accelerator.process_index)
    batch = {k: v[rows] for k, v in batch.items()}
    mask = answer_mask(batch["attention_mask"], [answer_tokens[answers[int(r)]] for r in rows])
    with accelerator.accumulate(tr.objective):
        loss = tr.objective(batch, batch["input_ids"], mask) * weight
        accelerator.backward(loss)
        if accelerator.sync_gradients:
            accelerator.clip_grad_norm_(tr.objective.parameters(), 1.0)
        tr.optimizer.step()
        tr.scheduler.step()
        tr.optimizer.zero_grad()
    # the batch's loss: the weighted shares of every process, averaged
    return float(accelerator.reduce(loss.detach(), "mean"))


def dev_check(ctx: Context, data: TrainData, tr: Trainer, epoch: int, done: int) -> None:
    """Score dev after an epoch (main process) and log its metrics."""
    tr.model.eval()
    if not ctx.main:
        return
    ctx.status("running", 0.9 * done / tr.total,
               f"epoch {epoch + 1}/{ctx.cfg.epochs} done: scoring {len(data.dev_audio)} dev clips",
               step=done, total=tr.total, phase="dev check")  # fmt: skip
    logits = score_clips(tr, ctx.prompt, data.dev_audio)
    metrics = dev_metrics(data.dev["label"].to_numpy(), logits, short_noisy_mask(data.dev))
    ctx.log({"type": "dev", "epoch": epoch + 1, "micro_batch": done, "time": time.time(), **metrics})


def train_epochs(ctx: Context, data: TrainData, tr: Trainer, done: int) -> int:
    """Train from micro-batch `done` to the end, scoring dev after each epoch; raises Stop on SIGTERM."""
    cfg, accelerator = ctx.cfg, ctx.accelerator
    # the loss reads every token of the answer (one for "A"; "Yes" may be several), nothing before it
    tokenizer = tr.parts.tokenizer
    answer_tokens = {a: len(tokenizer.encode(a, add_special_tokens=False))
                     for a in (cfg.answer_speech, cfg.answer_nonspeech)}  # fmt: skip
    per_epoch, total = tr.per_epoch, tr.total
    t_loop, start_done = time.time(), done
    for epoch in range(done // per_epoch, cfg.epochs):
        order = epoch_order(len(data.train), data.labels, cfg, epoch)
        tr.objective.train()
        for b in range(done - epoch * per_epoch, per_epoch):
            if _any_process(accelerator, ctx.stop["now"] or jobs.cancel_requested(ctx.run_dir)):
                raise Stop(done)
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            rng = np.random.default_rng([cfg.seed, epoch, b, 11])
            batch_loss = train_step(ctx, data, tr, idx, rng, answer_tokens)
            done += 1
            rate = (done - start_done) / max(time.time() - t_loop, 1e-9)
            record: dict[str, Any] = {"type": "train", "micro_batch": done, "epoch": epoch,
                                      "processes": accelerator.num_processes, "loss": batch_loss,
                                      "lr": float(tr.scheduler.get_last_lr()[0]), "time": time.time()}  # fmt: skip
            ctx.log(record)
            if done % 5 == 0 or done == total:
                ctx.status("running", 0.9 * done / total,
                           f"epoch {epoch + 1}/{cfg.epochs}, batch {b + 1}/{per_epoch}, loss {batch_loss:.3f}",
                           eta_s=round((total - done) / max(rate, 1e-9)), step=done, total=total,
                           phase="training")  # fmt: skip
            if done % (cfg.checkpoint_every * cfg.grad_accum) == 0:
                save_checkpoint(ctx, tr, done)
        dev_check(ctx, data, tr, epoch, done)
        save_checkpoint(ctx, tr, done)
        accelerator.wait_for_everyone()
    return done
