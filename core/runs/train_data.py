"""What a run learns from: the split's clips read once, the epoch order and every augmentation draw.

The order and the draws are functions of (seed, epoch, batch index), so a resumed run computes
what an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.data.audit import require_clean_split
from core.data.augment import after_noise, before_noise, with_noise
from core.data.datasets import load_dataset
from core.data.noise import load_noises
from core.data.splits import select_clips
from core.runs.train_config import TrainConfig


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


def load_data(cfg: TrainConfig) -> TrainData:
    """The split's train and dev clips (the audit gate first), tagged clips left out, caps applied."""
    ds = load_dataset(cfg.dataset)
    require_clean_split(ds, cfg.split, allow_leaky=cfg.allow_leaky)
    tags = [t.strip() for t in cfg.exclude_tags.split(",") if t.strip()]
    train = select_clips(ds, cfg.split, "train", tags, cfg.labels)
    dev = select_clips(ds, cfg.split, "dev", tags, cfg.labels)
    excluded = {"tags": tags, "train": train.attrs["excluded"], "dev": dev.attrs["excluded"],
                "relabeled": {"train": train.attrs["relabeled"], "dev": dev.attrs["relabeled"]}}  # fmt: skip
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
        noises=load_noises(cfg.noise_dir) if cfg.noise_dir else [],
        tags=tags,
        excluded=excluded,
    )


def epoch_order(n: int, labels: np.ndarray, cfg: TrainConfig, epoch: int) -> np.ndarray:
    """The clips of one epoch, in order: a permutation, or class-balanced draws with replacement."""
    rng = np.random.default_rng([cfg.seed, epoch, 7])
    if not cfg.class_balanced:
        return rng.permutation(n)
    w = np.where(labels, 0.5 / max(labels.sum(), 1), 0.5 / max((~labels).sum(), 1))
    return rng.choice(n, size=n, replace=True, p=w / w.sum())


def augment(clips: list[np.ndarray], noises: list[np.ndarray], cfg: TrainConfig, rng: np.random.Generator):
    """Each clip through the run's augmentation chain (`core.data.augment`): talker and room, then,
    with probability `noise_prob`, a random stretch of a noise at a random SNR, then gain and channel.
    With every augmentation setting at 0 only the noise draws are made (older runs resume the same)."""
    aug = cfg.augmentation()
    out = []
    for x in clips:
        if aug.active:
            x = before_noise(x, aug, rng, cfg.seed)
        if noises and rng.random() < cfg.noise_prob:
            x = with_noise(x, noises, cfg.noise_snr, rng)
        if aug.active:
            x = after_noise(x, aug, rng)
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
