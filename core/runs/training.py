"""LoRA / QLoRA fine-tuning of an audio LLM on a dataset's train split, resumable.

One `accelerate` loop: `python -m core train --run-dir DIR` on one device, or
`accelerate launch --multi_gpu --num_processes N -m core train --run-dir DIR` (or torchrun)
data-parallel: each process takes a weighted share of every batch (`shard`), so the run
takes the steps it would take on one device.
The loss is the answer token's cross-entropy only (`audio_llm.answer_loss`), on the same
trimmed forward path the evaluation reads its logits from.

Resuming is exact: the data order and every augmentation draw are functions of
(seed, epoch, batch index), and a checkpoint holds the adapter, optimiser, scheduler and
position, so a run killed mid-epoch and resumed computes what it would have computed.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from core import atomic
from core.analysis import metrics

ATTENTION = r".*language_model\.layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|o_proj)"
MLP = r".*language_model\.layers\.\d+\.mlp\.(gate_proj|up_proj|down_proj)"
ENC_ATTENTION = r".*audio_tower\.layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|out_proj)"
ENC_MLP = r".*audio_tower\.layers\.\d+\.(fc1|fc2)"


def target_regex(targets: str, audio_encoder: bool) -> str:
    """peft target_modules regex: the LLM's attention (q,k,v,o), optionally its MLP (gate,up,down),
    and with `audio_encoder` the same roles in the audio tower (q,k,v,out / fc1,fc2)."""
    parts = [ATTENTION] + ([MLP] if targets == "attention+mlp" else [])
    if audio_encoder:
        parts += [ENC_ATTENTION] + ([ENC_MLP] if targets == "attention+mlp" else [])
    return "|".join(f"({p})" for p in parts)


@dataclass
class TrainConfig:
    """Everything a run needs; saved as config.json so a run is reproducible from its folder."""

    dataset: str = "default"
    split: str = "default"
    base_model: str = ""  # "" = the lab base model; else Qwen2-Audio, Qwen2.5-Omni or Audio Flamingo 3 (a folder)
    prompt: str = ""  # "" = the detector's default question
    answer_speech: str = "A"  # what the model learns to answer for speech: the prompt's own answers
    answer_nonspeech: str = "B"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    targets: str = "attention+mlp"  # or "attention"
    lora_audio_encoder: bool = True  # adapt the audio tower too (noise robustness lives there)
    lr: float = 1e-3
    schedule: str = "cosine"  # cosine | linear | constant
    warmup_ratio: float = 0.05
    epochs: int = 5
    batch_size: int = 16
    grad_accum: int = 1
    seed: int = 0
    class_balanced: bool = True
    noise_dir: str = ""  # noise mixed in at a random SNR: a folder of recordings, or dataset:NAME (its non-speech)
    noise_prob: float = 0.5
    noise_snr: tuple[float, float] = (0.0, 20.0)
    spec_augment: bool = False  # two frequency and two time masks on the mel features
    qlora: bool = False  # 4-bit NF4 base (CUDA + bitsandbytes)
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, slower (QLoRA always)
    allow_leaky: bool = False  # explicit override to train on a split the audit marked leaky
    checkpoint_every: int = 20  # optimiser steps
    max_train_clips: int = 0  # 0 = all (a cap makes tiny runs for tests and demos)
    max_dev_clips: int = 0
    exclude_tags: str = ""  # comma-separated annotation tags whose clips are left out (e.g. "label wrong")
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known - {"provenance"}
        if unknown:
            from core.errors import LabError

            raise LabError(f"unknown training setting(s): {sorted(unknown)}")
        d = {k: v for k, v in d.items() if k in known}
        if "noise_snr" in d:
            d["noise_snr"] = tuple(d["noise_snr"])
        return cls(**d)


def answer_positions(attention_mask, n_tokens: list[int]):
    """Where each row's answer lies: its last `n_tokens[row]` real tokens (right-padded rows).

    The loss is masked to these positions, so a prompt whose answers are words ("Yes"/"No", maybe
    several tokens) trains on the whole answer and on nothing before it.
    """
    import torch

    last = (attention_mask.sum(-1) - 1)[:, None]
    pos = torch.arange(attention_mask.shape[1])[None, :]
    return (pos <= last) & (pos > last - torch.tensor(n_tokens)[:, None])


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


def answer_objective(model, loss):
    """A module whose forward is `loss(model, batch, labels, answer_mask)`.

    Data parallelism (DDP) only averages gradients of what runs through the wrapped module's
    forward; the answer loss calls the model's parts directly, so it becomes that forward.
    """
    import torch

    class AnswerObjective(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, batch, labels, answer_mask):
            return loss(self.model, batch, labels, answer_mask)

    return AnswerObjective()


NON_REENTRANT = {"use_reentrant": False}


def enable_checkpointing(model) -> None:
    """Recompute each layer's activations in the backward pass instead of keeping them.

    Non-reentrant: the reentrant kind (torch's old default, and peft's when given no setting)
    gives no gradient inside a layer whose input needs none. The audio tower's input is frozen
    conv features, so its adapters would not train unless every tower's input is hooked to
    require a gradient, which older transformers did not do.
    """
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x names it so; the old name goes in v6
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=NON_REENTRANT)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=NON_REENTRANT)


class RunBusy(Exception):
    """Another process holds this run's lock: this one must not touch the run's files."""


class Stop(Exception):
    """Raised inside the loop when the run was asked to stop (SIGTERM), at micro-batch `done`."""

    def __init__(self, done: int = 0) -> None:
        super().__init__(f"stopped at micro-batch {done}")
        self.done = done


def _status(run_dir: Path, state: str, progress: float, message: str, **extra: Any) -> None:
    from core.runs.jobs import write_status

    write_status(run_dir, state, progress, message, **extra)


def _log_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    with open(run_dir / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")


def _epoch_order(n: int, labels: np.ndarray, cfg: TrainConfig, epoch: int) -> np.ndarray:
    """The clips of one epoch, in order: a permutation, or class-balanced draws with replacement."""
    rng = np.random.default_rng([cfg.seed, epoch, 7])
    if not cfg.class_balanced:
        return rng.permutation(n)
    w = np.where(labels, 0.5 / max(labels.sum(), 1), 0.5 / max((~labels).sum(), 1))
    return rng.choice(n, size=n, replace=True, p=w / w.sum())


def _load_noises(spec: str) -> list[np.ndarray]:
    from core.data.noise import load_noises

    return load_noises(spec)


def _augment(clips: list[np.ndarray], noises: list[np.ndarray], cfg: TrainConfig, rng: np.random.Generator):
    from core.data.audio import mix_at_snr, peak_normalise

    out = []
    for x in clips:
        if noises and rng.random() < cfg.noise_prob:
            noise = noises[int(rng.integers(len(noises)))]
            reps = int(np.ceil(len(x) / len(noise)))
            noise = np.tile(noise, reps + 1)
            start = int(rng.integers(0, len(noise) - len(x) + 1))
            x = peak_normalise(mix_at_snr(x, noise[start : start + len(x)], float(rng.uniform(*cfg.noise_snr)))[0])
        out.append(x)
    return out


def spec_augment(features, valid_frames, rng: np.random.Generator, n_freq: int = 2, n_time: int = 2) -> None:
    """SpecAugment in place: frequency bands and time spans of the valid frames set to the clip's mean."""
    n_mels = features.shape[1]
    for i in range(features.shape[0]):
        t = int(valid_frames[i])
        fill = features[i, :, :t].mean()
        for _ in range(n_freq):
            w = int(rng.integers(0, max(1, n_mels // 8)))
            f0 = int(rng.integers(0, n_mels - w + 1))
            features[i, f0 : f0 + w, :t] = fill
        for _ in range(n_time):
            w = int(rng.integers(0, max(1, t // 10)))
            t0 = int(rng.integers(0, max(1, t - w + 1)))
            features[i, :, t0 : t0 + w] = fill


def _score(model, processor, prompt: str, clips: list[np.ndarray], batch_size: int = 32, family=None) -> np.ndarray:
    from core.detectors.audio_llm import AudioLLMDetector, AudioLLMSpec

    if family is not None:
        from core.detectors.chat_audio import ChatAudioDetector, ChatSpec

        spec = ChatSpec(family=family.name, model="run", prompt=prompt, batch_size=batch_size)
        return ChatAudioDetector(spec, model, processor).score(clips, 16000)
    det = AudioLLMDetector(AudioLLMSpec(model="run", prompt=prompt, batch_size=batch_size), model, processor)
    return det.score(clips, 16000)


def short_noisy_mask(frame) -> np.ndarray:
    """Clips of ≤ 400 ms with noise added: where base models fail and fine-tuning should help."""
    return (frame["duration_ms"].to_numpy() <= 400) & frame["snr_db"].notna().to_numpy()


def dev_metrics(
    labels: np.ndarray, logits: np.ndarray, short_noisy: np.ndarray, ranking: bool = False
) -> dict[str, float]:
    """Dev metrics, plus balanced accuracy on short (≤ 400 ms) noisy clips, where base models fail."""
    out = metrics.summary(labels, logits[:, 0] - logits[:, 1], ranking=ranking)
    if short_noisy.any():
        out["short_noisy_balanced_accuracy"] = metrics.summary(
            labels[short_noisy], (logits[:, 0] - logits[:, 1])[short_noisy], ranking=False
        )["balanced_accuracy"]
    return out


@dataclass
class Context:
    """One process's share of a run: its folder, settings and accelerator, and who writes files."""

    run_dir: Path
    cfg: TrainConfig
    prompt: str
    accelerator: Any
    stop: dict[str, bool]
    t_start: float

    @property
    def main(self) -> bool:
        """The one process that writes the run's files (all others only compute)."""
        return self.accelerator.is_main_process

    def status(self, *args: Any, **kw: Any) -> None:
        if self.main:
            _status(self.run_dir, *args, **kw)

    def log(self, record: dict[str, Any]) -> None:
        if self.main:
            _log_metrics(self.run_dir, record)


@dataclass
class TrainData:
    """The clips a run learns from (train) and early-stops on (dev), read once into memory."""

    ds: Any
    train: Any  # manifest rows
    dev: Any
    train_audio: list[np.ndarray]
    dev_audio: list[np.ndarray]
    labels: np.ndarray  # train clip is speech
    noises: list[np.ndarray]
    tags: list[str]
    excluded: dict[str, Any]


@dataclass
class Trainer:
    """The model with its adapters, the loss as a (data-parallel) module, and the optimiser."""

    model: Any
    processor: Any
    base_path: str
    objective: Any
    optimizer: Any
    scheduler: Any
    per_epoch: int  # micro-batches
    total: int  # micro-batches over the run
    family: Any = None  # a chat_audio.ChatFamily, or None for Qwen2-Audio (audio_llm)


def start(run_dir: str | Path) -> Context:
    """Read the run's config, take SIGTERM as "stop", and set up the accelerator."""
    import torch
    from accelerate import Accelerator, DataLoaderConfiguration, InitProcessGroupKwargs

    from core.detectors.audio_llm import DEFAULT_PROMPT
    from core.runs import jobs

    run_dir = Path(run_dir)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("now", True))
    lock = jobs.hold_lock(run_dir)  # kept open for the process's life: one trainer per run
    if lock is None:
        raise RunBusy(f"run {run_dir.name} is being trained by another process; this one stops here")
    cfg = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    t_start = time.time()
    # split_batches: under `accelerate launch` each process takes its share of every batch, so
    # the run sees the same batches (and the scheduler the same steps) as on one device
    accelerator = Accelerator(
        gradient_accumulation_steps=cfg.grad_accum,
        cpu=not torch.cuda.is_available(),
        dataloader_config=DataLoaderConfiguration(split_batches=True),
        # the others wait while the main process scores dev after each epoch: room for a large model
        kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(hours=2))],
    )
    return Context(run_dir, cfg, cfg.prompt or DEFAULT_PROMPT, accelerator, stop, t_start)


def load_data(cfg: TrainConfig) -> TrainData:
    """The split's train and dev clips (the audit gate first), tagged clips left out, caps applied."""
    from core.data.audit import require_clean_split
    from core.data.datasets import load_dataset
    from core.data.splits import select_clips

    ds = load_dataset(cfg.dataset)
    require_clean_split(ds, cfg.split, allow_leaky=cfg.allow_leaky)
    tags = [t.strip() for t in cfg.exclude_tags.split(",") if t.strip()]
    train = select_clips(ds, cfg.split, "train", tags)
    dev = select_clips(ds, cfg.split, "dev", tags)
    excluded = {"tags": tags, "train": train.attrs["excluded"], "dev": dev.attrs["excluded"]}
    if cfg.max_train_clips:
        train = train.sample(min(cfg.max_train_clips, len(train)), random_state=cfg.seed).reset_index(drop=True)
    if cfg.max_dev_clips:
        dev = dev.sample(min(cfg.max_dev_clips, len(dev)), random_state=cfg.seed).reset_index(drop=True)
    return TrainData(
        ds=ds,
        train=train,
        dev=dev,
        train_audio=[ds.load_clip(c).samples for c in train["clip_id"]],
        dev_audio=[ds.load_clip(c).samples for c in dev["clip_id"]],
        labels=(train["label"] == "speech").to_numpy(),
        noises=_load_noises(cfg.noise_dir) if cfg.noise_dir else [],
        tags=tags,
        excluded=excluded,
    )


def build_trainer(ctx: Context, n_train: int) -> Trainer:
    """Base model (seeded; 4-bit for QLoRA), LoRA adapters on the chosen modules, optimiser, schedule."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import get_scheduler

    from core.detectors import chat_audio
    from core.detectors.audio_llm import AudioLLMSpec, answer_loss, load
    from core.detectors.lab_model import ensure_base_model

    cfg, accelerator = ctx.cfg, ctx.accelerator
    torch.manual_seed(cfg.seed)
    with accelerator.main_process_first():  # the lab base model is built once if missing
        base_path = cfg.base_model or str(ensure_base_model())
    family = chat_audio.family_of(base_path)  # another audio-LLM family than Qwen2-Audio, or None
    if family is not None:
        model, processor = chat_audio.load(
            chat_audio.ChatSpec(family.name, base_path, load_in_4bit=cfg.qlora, device=str(accelerator.device))
        )
        loss_fn, targets = chat_audio.answer_loss, chat_audio.target_regex(family, cfg.targets, cfg.lora_audio_encoder)
    else:
        model, processor = load(AudioLLMSpec(model=base_path, load_in_4bit=cfg.qlora, device=str(accelerator.device)))
        loss_fn, targets = answer_loss, target_regex(cfg.targets, cfg.lora_audio_encoder)
    if cfg.qlora:
        from peft import prepare_model_for_kbit_training

        # peft's recipe, with checkpointing made non-reentrant (see `enable_checkpointing`)
        model = prepare_model_for_kbit_training(model, gradient_checkpointing_kwargs=NON_REENTRANT)
    elif cfg.gradient_checkpointing:
        enable_checkpointing(model)
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        bias="none",
    )
    model = get_peft_model(model, lora)
    per_epoch = math.ceil(n_train / cfg.batch_size)  # micro-batches
    opt_steps = math.ceil(per_epoch / cfg.grad_accum) * cfg.epochs
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    scheduler = get_scheduler(
        cfg.schedule if cfg.schedule != "constant" else "constant_with_warmup",
        optimizer,
        num_warmup_steps=int(cfg.warmup_ratio * opt_steps),
        num_training_steps=opt_steps,
    )
    # the loss goes through the prepared module's forward, so under data parallelism DDP sees
    # it and averages gradients; `model` stays the PEFT model, for saving and scoring
    objective, optimizer, scheduler = accelerator.prepare(answer_objective(model, loss_fn), optimizer, scheduler)
    return Trainer(
        model, processor, base_path, objective, optimizer, scheduler, per_epoch, per_epoch * cfg.epochs, family
    )


def restore(ctx: Context, tr: Trainer) -> int:
    """Load the run's checkpoint (adapter, optimiser, schedule, RNG); the micro-batches already done."""
    import torch
    from peft import set_peft_model_state_dict

    ckpt = ctx.run_dir / "checkpoint.pt"
    if not ckpt.exists():
        return 0
    try:  # tensors and plain data only: loading a checkpoint never runs code from it
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickled object, a truncated file: refused, with the reason
        from core.errors import LabError

        raise LabError(f"{ckpt}: not a plain checkpoint, refused ({type(exc).__name__}: {str(exc)[:200]})") from exc
    set_peft_model_state_dict(tr.model, state["adapter"])
    tr.optimizer.load_state_dict(state["optimizer"])
    tr.scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    ctx.log({"type": "resume", "micro_batches": state["micro_batches"], "time": time.time()})
    return state["micro_batches"]


def save_checkpoint(ctx: Context, tr: Trainer, done: int) -> None:
    """Adapter, optimiser, scheduler, position and RNG, written atomically (main process only)."""
    import torch
    from peft import get_peft_model_state_dict

    if not ctx.main:
        return
    state = {
        "adapter": get_peft_model_state_dict(tr.model),
        "optimizer": tr.optimizer.state_dict(),
        "scheduler": tr.scheduler.state_dict(),
        "micro_batches": done,
        "torch_rng": torch.get_rng_state(),
    }
    atomic.write_with(ctx.run_dir / "checkpoint.pt", lambda p: torch.save(state, p))


def train_epochs(ctx: Context, data: TrainData, tr: Trainer, done: int) -> int:
    """Train from micro-batch `done` to the end, scoring dev after each epoch; raises Stop on SIGTERM.

    Each batch's clips, augmentation and SpecAugment draws are functions of (seed, epoch, batch),
    so a resumed run computes exactly what an uninterrupted one would.
    """

    from core.detectors import chat_audio
    from core.detectors.audio_llm import prepare
    from core.errors import LabError
    from core.runs import jobs

    cfg, accelerator = ctx.cfg, ctx.accelerator
    answer = {True: cfg.answer_speech, False: cfg.answer_nonspeech}
    # the loss reads every token of the answer (one for "A"; "Yes" may be several), nothing before it
    answer_tokens = {a: len(tr.processor.tokenizer.encode(a, add_special_tokens=False)) for a in answer.values()}
    per_epoch, total = tr.per_epoch, tr.total
    t_loop, start_done = time.time(), done
    for epoch in range(done // per_epoch, cfg.epochs):
        order = _epoch_order(len(data.train), data.labels, cfg, epoch)
        tr.objective.train()
        for b in range(done - epoch * per_epoch, per_epoch):
            if _any_process(accelerator, ctx.stop["now"] or jobs.cancel_requested(ctx.run_dir)):
                raise Stop(done)
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            rng = np.random.default_rng([cfg.seed, epoch, b, 11])
            clips = _augment([data.train_audio[i] for i in idx], data.noises, cfg, rng)
            answers = [answer[bool(data.labels[i])] for i in idx]
            if tr.family is None:
                batch = prepare(tr.processor, clips, ctx.prompt, padded=False, answers=answers)
                mask_key = "feature_attention_mask"
            else:
                batch = chat_audio.prepare(tr.family, tr.processor, clips, ctx.prompt, answers=answers)
                mask_key = tr.family.feature_mask
                if len(batch["input_features"]) != len(clips):
                    raise LabError(f"{tr.family.title} training takes clips of at most {tr.family.window_s} s")
            if cfg.spec_augment:
                spec_augment(batch["input_features"], batch[mask_key].sum(-1), rng)
            rows, weight = shard(len(idx), accelerator.num_processes, accelerator.process_index)
            batch = {k: v[rows] for k, v in batch.items()}
            ids = batch["input_ids"]
            answer_mask = answer_positions(batch["attention_mask"], [answer_tokens[answers[int(r)]] for r in rows])
            with accelerator.accumulate(tr.objective):
                loss = tr.objective(batch, ids, answer_mask) * weight
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(tr.objective.parameters(), 1.0)
                tr.optimizer.step()
                tr.scheduler.step()
                tr.optimizer.zero_grad()
            done += 1
            rate = (done - start_done) / max(time.time() - t_loop, 1e-9)
            eta = (total - done) / max(rate, 1e-9)
            # the batch's loss: the weighted shares of every process, averaged
            batch_loss = float(accelerator.reduce(loss.detach(), "mean"))
            ctx.log(
                {
                    "type": "train",
                    "micro_batch": done,
                    "epoch": epoch,
                    "processes": accelerator.num_processes,
                    "loss": batch_loss,
                    "lr": float(tr.scheduler.get_last_lr()[0]),
                    "time": time.time(),
                },
            )
            if done % 5 == 0 or done == total:
                ctx.status(
                    "running",
                    0.9 * done / total,
                    f"epoch {epoch + 1}/{cfg.epochs}, batch {b + 1}/{per_epoch}, loss {batch_loss:.3f}",
                    eta_s=round(eta),
                    step=done,
                    total=total,
                    phase="training",
                )
            if done % (cfg.checkpoint_every * cfg.grad_accum) == 0:
                save_checkpoint(ctx, tr, done)
        tr.model.eval()
        if ctx.main:
            ctx.status(
                "running",
                0.9 * done / total,
                f"epoch {epoch + 1}/{cfg.epochs} done: scoring {len(data.dev_audio)} dev clips",
                step=done,
                total=total,
                phase="dev check",
            )
            dev_logits = _score(tr.model, tr.processor, ctx.prompt, data.dev_audio, family=tr.family)
            ctx.log(
                {
                    "type": "dev",
                    "epoch": epoch + 1,
                    "micro_batch": done,
                    "time": time.time(),
                    **dev_metrics(data.dev["label"].to_numpy(), dev_logits, short_noisy_mask(data.dev)),
                },
            )
        save_checkpoint(ctx, tr, done)
        accelerator.wait_for_everyone()
    return done


def finish(ctx: Context, data: TrainData, tr: Trainer) -> dict[str, Any]:
    """Save the adapter, then score dev and test exactly as `python -m core evaluate` would."""
    from core.detectors.audio_llm import AudioLLMDetector, AudioLLMSpec
    from core.scoring import predictions
    from core.scoring.evaluate import evaluate

    cfg, run_dir = ctx.cfg, ctx.run_dir
    _status(run_dir, "running", 0.92, "saving the adapter", phase="final scoring", phase_progress=0.0)
    tr.model.save_pretrained(run_dir / ".adapter.tmp")
    if (run_dir / "adapter").exists():
        import shutil

        shutil.rmtree(run_dir / "adapter")
    os.replace(run_dir / ".adapter.tmp", run_dir / "adapter")
    tr.model.eval()
    result: dict[str, Any] = {"train_seconds": round(time.time() - ctx.t_start, 1)}
    # scored and saved exactly as `python -m core evaluate` would (same table, same sidecar facts)
    common = dict(
        model=tr.base_path,
        prompt=ctx.prompt,
        adapter=str(run_dir / "adapter"),
        device=str(ctx.accelerator.device),
        load_in_4bit=cfg.qlora,
        batch_size=32,
    )
    if tr.family is None:
        detector = AudioLLMDetector(AudioLLMSpec(**common), tr.model, tr.processor, name=f"run:{run_dir.name}")
    else:
        from core.detectors.chat_audio import ChatAudioDetector, ChatSpec

        spec = ChatSpec(family=tr.family.name, **common)
        detector = ChatAudioDetector(spec, tr.model, tr.processor, name=f"run:{run_dir.name}")
    excluded = data.excluded
    for i, part in enumerate(("dev", "test")):

        def progress(frac: float, message: str, i: int = i, part: str = part) -> None:
            _status(
                run_dir,
                "running",
                0.92 + 0.04 * (i + frac),
                f"scoring {part}: {message}",
                phase="final scoring",
                phase_progress=round((i + frac) / 2, 4),
            )

        path = evaluate(
            data.ds,
            cfg.split,
            part,
            detector,
            seed=cfg.seed,
            progress=progress,
            name=f"run-{run_dir.name}-{part}",
            exclude_tags=data.tags,
        )
        table, meta = predictions.load(path)
        excluded[part] = meta["excluded_clips"]
        atomic.write_csv(run_dir / "predictions" / f"{part}.csv", table)
        logits = table[["logit_A", "logit_B"]].to_numpy(float)
        result[part] = dev_metrics(table["label"].to_numpy(), logits, short_noisy_mask(table), ranking=True)
    result["excluded"] = {k: (v if k == "tags" else len(v)) for k, v in excluded.items()}
    atomic.write_json(run_dir / "excluded.json", excluded)
    atomic.write_json(run_dir / "result.json", result)
    _status(
        run_dir,
        "finished",
        1.0,
        f"test balanced accuracy {result['test']['balanced_accuracy']:.3f}",
        step=tr.total,
        total=tr.total,
    )
    return result


def train_run(run_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    """Train the run in `run_dir` (config.json) to the end; return the final metrics.

    The phases: start → load_data → build_trainer → restore (when resuming) → train_epochs →
    finish. Writes status.json, metrics.jsonl, checkpoint.pt, adapter/ and predictions/ in the
    folder. Under `accelerate launch` only the main process writes them and returns the
    metrics; the others return {}.
    """
    from core.runs import jobs

    ctx = start(run_dir)
    if jobs.cancel_requested(ctx.run_dir):  # cancelled while it was starting: nothing to save yet
        ctx.status("cancelled", 0.0, "cancelled before training started; resumable")
        raise Stop(0)
    ctx.status("running", 0.0, "loading data and model")
    data = load_data(ctx.cfg)
    tr = build_trainer(ctx, len(data.train))
    if tr.family is None:  # Qwen2-Audio's fixed window (30 s): longer clips named before the first step
        from core.detectors.audio_llm import shortest_heard, window_seconds
        from core.detectors.base import check_clip_lengths

        for part in (data.train, data.dev):
            check_clip_lengths(part["clip_id"].tolist(), part["duration_ms"].fillna(0).to_numpy() / 1000,
                               window_seconds(tr.processor), "the base model's audio encoder",
                               shortest_heard(tr.processor))  # fmt: skip
    done = restore(ctx, tr) if resume else 0
    try:
        done = train_epochs(ctx, data, tr, done)
    except Stop as stop:
        done = stop.done
        save_checkpoint(ctx, tr, done)
        ctx.status(
            "cancelled",
            0.9 * done / tr.total,
            f"cancelled at batch {done}/{tr.total}; resumable",
            step=done,
            total=tr.total,
        )
        raise
    if not ctx.main:  # the main process saves and evaluates alone; the others are done
        return {}
    return finish(ctx, data, tr)
