"""Evaluation during and after training: dev metrics per epoch, and the final dev and test
tables scored exactly as `python -m core evaluate` would (same detector, same table, same sidecar)."""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

import numpy as np

from core import atomic
from core.analysis import metrics
from core.detectors.llm import AudioLLMDetector, AudioLLMSpec
from core.runs.train_data import TrainData
from core.runs.train_setup import Context, Trainer
from core.scoring import predictions
from core.scoring.evaluate import evaluate


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


def score_clips(tr: Trainer, prompt: str, clips: list[np.ndarray]) -> np.ndarray:
    """(n, 2) answer logits of the run's model (adapters on), through the detector evaluation uses."""
    spec = AudioLLMSpec(model="run", prompt=prompt, batch_size=32, family=tr.family.name)
    return AudioLLMDetector(spec, tr.model, tr.parts).score(clips, 16000)


def finish(ctx: Context, data: TrainData, tr: Trainer) -> dict[str, Any]:
    """Save the adapter, then score dev and test exactly as `python -m core evaluate` would."""
    cfg, run_dir = ctx.cfg, ctx.run_dir
    ctx.status("running", 0.92, "saving the adapter", phase="final scoring", phase_progress=0.0)
    tr.model.save_pretrained(run_dir / ".adapter.tmp")
    if (run_dir / "adapter").exists():
        shutil.rmtree(run_dir / "adapter")
    os.replace(run_dir / ".adapter.tmp", run_dir / "adapter")
    tr.model.eval()
    result: dict[str, Any] = {"train_seconds": round(time.time() - ctx.t_start, 1)}
    # scored and saved exactly as `python -m core evaluate` would (same table, same sidecar facts)
    final = AudioLLMDetector(
        AudioLLMSpec(model=tr.base_path, prompt=ctx.prompt, adapter=str(run_dir / "adapter"),
                     device=str(ctx.accelerator.device), load_in_4bit=cfg.qlora, batch_size=32,
                     family=tr.family.name),
        tr.model, tr.parts, name=f"run:{run_dir.name}",
    )  # fmt: skip
    excluded = data.excluded
    for i, part in enumerate(("dev", "test")):

        def progress(frac: float, message: str, i: int = i, part: str = part) -> None:
            ctx.status("running", 0.92 + 0.04 * (i + frac), f"scoring {part}: {message}",
                       phase="final scoring", phase_progress=round((i + frac) / 2, 4))  # fmt: skip

        path = evaluate(data.ds, cfg.split, part, final, seed=cfg.seed, progress=progress,
                        name=f"run-{run_dir.name}-{part}", exclude_tags=data.tags, labels=cfg.labels)  # fmt: skip
        table, meta = predictions.load(path)
        excluded[part] = meta["excluded_clips"]
        atomic.write_csv(run_dir / "predictions" / f"{part}.csv", table)
        logits = table[["logit_A", "logit_B"]].to_numpy(float)
        result[part] = dev_metrics(table["label"].to_numpy(), logits, short_noisy_mask(table), ranking=True)
    result["excluded"] = {k: (v if k == "tags" else len(v)) for k, v in excluded.items() if k != "relabeled"}
    atomic.write_json(run_dir / "excluded.json", excluded)
    atomic.write_json(run_dir / "result.json", result)
    ctx.status("finished", 1.0, f"test balanced accuracy {result['test']['balanced_accuracy']:.3f}",
               step=tr.total, total=tr.total)  # fmt: skip
    return result
