"""Setting a run up: its folder and accelerator, the base model with LoRA adapters through the
family contract, the optimiser and schedule, and checkpoints to resume from.

torch, accelerate, peft and transformers are imported inside functions: importing this module
stays cheap for the pages and the CLI.
"""

from __future__ import annotations

import json
import math
import signal
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from core import atomic
from core.detectors.lab_base import ensure_base_model
from core.detectors.llm import AudioLLMSpec, Family, family_for
from core.detectors.llm.prompt import DEFAULT_PROMPT
from core.errors import LabError
from core.runs import jobs
from core.runs.train_config import TrainConfig

NON_REENTRANT = {"use_reentrant": False}


class RunBusy(Exception):
    """Another process holds this run's lock: this one must not touch the run's files."""


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
            jobs.write_status(self.run_dir, *args, **kw)

    def log(self, record: dict[str, Any]) -> None:
        if self.main:
            with open(self.run_dir / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(record) + "\n")


@dataclass
class Trainer:
    """The model with its adapters, the loss as a (data-parallel) module, and the optimiser."""

    model: Any
    parts: Any  # the checkpoint's tokenizer and feature extractor
    base_path: str
    family: Family
    objective: Any
    optimizer: Any
    scheduler: Any
    per_epoch: int  # micro-batches
    total: int  # micro-batches over the run


def start(run_dir: str | Path) -> Context:
    """Read the run's config, take SIGTERM as "stop", and set up the accelerator."""
    import torch
    from accelerate import Accelerator, DataLoaderConfiguration, InitProcessGroupKwargs

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


def build_trainer(ctx: Context, n_train: int) -> Trainer:
    """Base model (seeded; 4-bit for QLoRA), LoRA adapters on the family's modules, optimiser, schedule."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import get_scheduler

    cfg, accelerator = ctx.cfg, ctx.accelerator
    torch.manual_seed(cfg.seed)
    with accelerator.main_process_first():  # the lab base model is built once if missing
        base_path = cfg.base_model or str(ensure_base_model())
    family = family_for(AudioLLMSpec(model=base_path, family=cfg.family))  # chosen once: named, or by model_type
    spec = AudioLLMSpec(model=base_path, load_in_4bit=cfg.qlora, device=str(accelerator.device), family=family.name)
    model, parts = family.load(spec)
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
        target_modules=family.lora_targets(cfg.targets, cfg.lora_audio_encoder),
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
    objective, optimizer, scheduler = accelerator.prepare(
        answer_objective(model, family.answer_loss), optimizer, scheduler
    )
    return Trainer(model, parts, base_path, family, objective, optimizer, scheduler, per_epoch, per_epoch * cfg.epochs)


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
