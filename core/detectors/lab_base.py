"""The lab base model's recipe: the tiny Qwen2-Audio learns to hear real people.

What it learns from: the training part of the real-voice set's split "default" (`study_split`),
so that split's dev and test speakers and sources, FSDD and every Python package's sample audio
stay unheard and measure transfer honestly. Each clip is read once and a few augmented copies
are made before training (in worker processes): placed within silence and a noise floor, pitch
shifted, through the 8 kHz band; during training the pool's own non-speech is mixed in as
noise at a random SNR.

How: full-parameter training of the answer token's loss over the whole vocabulary (the loss the
lab's fine-tuning masks to the answer), plus a frame loss that teaches the audio encoder where
in the clip the speech is. Its targets are known, not guessed: frames of a speech clip within
30 dB of its loudest frame, before noise was added, are speech; every frame of a non-speech clip
is not. A linear head reads the encoder's pooled states for it and is dropped after training,
so the saved model is a plain `Qwen2AudioForConditionalGeneration`. Measured: the frame loss
lifts held-out ROC-AUC (`benchmarks/bench_voices.py`; README "What the lab base model can do").
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.data.augment import Augmentation

# torch, transformers and pandas are imported inside functions: importing this module stays cheap

LIMITS = (
    "The lab base model is 1.9 MB and has heard 21 clean speakers (mostly isolated words, letters and telephone "
    "prompts): on speakers it never heard, balanced accuracy 0.85 [0.74, 0.93], biased towards 'non-speech'; "
    "it was not trained in noise, so speech under music or babble is beyond it. It shows the lab's code path "
    "works; for real studies use Silero or a real audio-LLM checkpoint (README: what the lab base model can do)."
)

VOICES = "voices"
FRAME_S = 0.04  # one pooled encoder state of Qwen2-Audio: 2 × 2 × 10 ms


@dataclass(frozen=True)
class BaseRecipe:
    """Everything the base model's training depends on; saved beside the weights."""

    steps: int = 600
    batch_size: int = 16
    lr: float = 1e-3
    warmup: int = 20
    weight_decay: float = 0.01
    seed: int = 0
    copies: int = 1  # augmented copies of each pool clip, made once before training
    max_seconds: float = 2.0  # longer clips: a random 2 s piece
    placement_prob: float = 0.0  # the clip placed at a random point of 1–2.5× its length
    narrowband_prob: float = 0.0  # through 8 kHz sampling
    noise_prob: float = 0.0  # the pool's non-speech mixed in at a random SNR
    noise_snr: tuple[float, float] = (0.0, 20.0)
    frame_loss: float = 1.0  # weight of the encoder's frame loss (0 = answer loss only)
    # recordings come at every level; the pool is peak-normalised (chosen on the dev part: README)
    augmentation: Augmentation = field(default_factory=lambda: Augmentation(gain_db=(-30.0, 0.0)))


def pool_dataset():
    """The base model's training pool as a dataset (the real-voice set's train part), e.g. for
    `data audit --against-base`."""
    from core.data.datasets import Dataset, load_dataset
    from core.data.voices_dataset import build_voices, study_split

    build_voices(VOICES)  # deterministic; built here if missing (the Debian packages named if absent)
    ds = load_dataset(VOICES)
    part = study_split(ds).to_numpy()
    return Dataset("lab-base-pool", ds.root, ds.manifest[part == "train"].reset_index(drop=True), ds.info)


def speech_frames(x: np.ndarray, speech: bool, sr: int = 16_000) -> np.ndarray:
    """Frame targets (one per 40 ms): within 30 dB of the loudest frame, for a speech clip; none otherwise."""
    from core.data.audio import frame_energy_db

    e = frame_energy_db(x, sr, FRAME_S * 1000)
    return (e >= e.max() - 30.0) & speech


def _copy(args) -> tuple[np.ndarray, np.ndarray]:
    """One augmented copy of a clip and its frame targets (a worker process's job)."""
    from core.data import augment

    x, speech, seed, recipe = args
    rng = np.random.default_rng(seed)
    if rng.random() < recipe.placement_prob:
        x = augment.place(x, rng)
    x = augment.before_noise(x, recipe.augmentation, rng, recipe.seed)
    frames = speech_frames(x, speech)
    x = augment.after_noise(x, recipe.augmentation, rng)
    if rng.random() < recipe.narrowband_prob:
        x = augment.narrowband(x)
    return x.astype(np.float32), frames


def _crop(x: np.ndarray, rng: np.random.Generator, seconds: float, sr: int = 16_000) -> np.ndarray:
    n = int(seconds * sr)
    if len(x) <= n:
        return x
    start = int(rng.integers(0, len(x) - n + 1))
    return x[start : start + n]


def training_set(recipe: BaseRecipe, workers: int = 2, progress=None):
    """(clips, is_speech, frame targets, manifest) of the pool: originals and augmented copies."""
    from concurrent.futures import ProcessPoolExecutor

    pool = pool_dataset()
    rng = np.random.default_rng([recipe.seed, 1])
    clips = [_crop(pool.load_clip(c).samples, rng, recipe.max_seconds) for c in pool.manifest["clip_id"]]
    speech = (pool.manifest["label"] == "speech").to_numpy()
    frames = [speech_frames(x, s) for x, s in zip(clips, speech)]
    jobs = [(x, bool(s), [recipe.seed, k, i], recipe) for k in range(recipe.copies) for i, (x, s) in
            enumerate(zip(clips, speech))]  # fmt: skip
    if progress:
        progress(0.0, f"augmenting {len(jobs)} copies of {len(clips)} pool clips")
    with ProcessPoolExecutor(max(1, workers)) as ex:
        made = list(ex.map(_copy, jobs, chunksize=32))
    return (clips + [m[0] for m in made], np.concatenate([speech] * (recipe.copies + 1)),
            frames + [m[1] for m in made], pool.manifest)  # fmt: skip


def _noisy(x: np.ndarray, noises: list[np.ndarray], recipe: BaseRecipe, rng: np.random.Generator) -> np.ndarray:
    from core.data.augment import with_noise
    from core.errors import AudioError

    if not noises or rng.random() >= recipe.noise_prob:
        return x
    try:
        return with_noise(x, noises, recipe.noise_snr, rng)
    except AudioError:  # a silent stretch of noise or clip: leave the clip clean
        return x


def _frame_targets(frames: list[np.ndarray], lengths, width: int):
    """(targets, valid) of shape (batch, width): each clip's frame targets over its encoder states."""
    import torch

    targets = torch.zeros(len(frames), width)
    valid = torch.zeros(len(frames), width)
    for r, (f, n) in enumerate(zip(frames, lengths)):
        n = int(min(int(n), width))
        k = min(len(f), n)
        targets[r, :k] = torch.from_numpy(f[:k].astype(np.float32))
        valid[r, :n] = 1.0
    return targets, valid


def train(recipe: BaseRecipe, progress=None):
    """The trained model, its processor and (training manifest, loss history, seconds)."""
    import torch
    from transformers import get_cosine_schedule_with_warmup

    from core.detectors import lab_model
    from core.detectors.llm.prompt import DEFAULT_PROMPT, answer_token_ids
    from core.detectors.llm.qwen2_audio import next_token_logits, prepare

    t0 = time.perf_counter()
    clips, speech, frames, manifest = training_set(recipe, progress=progress)
    noises = [x for x, s in zip(clips[: len(manifest)], speech) if not s]
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng([recipe.seed, 2])
    processor = lab_model.build_processor()
    model = lab_model.build_model(processor, seed=recipe.seed)
    model.train()
    tower = model.model.audio_tower
    head = torch.nn.Linear(tower.config.d_model, 1)  # the frame loss's head: dropped after training
    states = {}
    hook = tower.layer_norm.register_forward_hook(lambda _m, _i, out: states.__setitem__("audio", out))
    id_a, id_b = answer_token_ids(processor.tokenizer, ("A", "B"))
    params = [*model.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = get_cosine_schedule_with_warmup(opt, recipe.warmup, recipe.steps)
    by_label = [np.flatnonzero(speech), np.flatnonzero(~speech)]
    history = []
    for step in range(recipe.steps):
        half = recipe.batch_size // 2  # class-balanced batches
        idx = np.concatenate([rng.choice(by_label[0], half), rng.choice(by_label[1], recipe.batch_size - half)])
        batch = prepare(processor, [_noisy(clips[i], noises, recipe, rng) for i in idx], DEFAULT_PROMPT, padded=False)
        target = torch.tensor(np.where(speech[idx], id_a, id_b))
        loss = torch.nn.functional.cross_entropy(next_token_logits(model, batch, padded=False), target)
        if recipe.frame_loss:
            audio = states["audio"]
            _, lengths = tower._get_feat_extract_output_lengths(batch["feature_attention_mask"].sum(-1))
            targets, valid = _frame_targets([frames[i] for i in idx], lengths, audio.shape[1])
            per_frame = torch.nn.functional.binary_cross_entropy_with_logits(
                head(audio).squeeze(-1), targets, reduction="none"
            )
            loss = loss + recipe.frame_loss * (per_frame * valid).sum() / valid.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
        if progress and (step % 10 == 0 or step == recipe.steps - 1):
            progress((step + 1) / recipe.steps, f"step {step + 1}/{recipe.steps} loss {np.mean(history[-10:]):.3f}")
    hook.remove()
    model.eval()
    return model, processor, (manifest, history, time.perf_counter() - t0)


def recipe_record(recipe: BaseRecipe) -> dict:
    from core.data.voices_dataset import STUDY_FRACTIONS, STUDY_SPLIT

    return {**asdict(recipe), "pool": {"dataset": VOICES, "split": STUDY_SPLIT, "part": "train",
                                       "fractions": STUDY_FRACTIONS}}  # fmt: skip


# ---------------------------------------------------------------- the committed model


def train_base_model(out_dir: str | Path | None = None, recipe=None, progress=None) -> Path:
    """Train the tiny Qwen2-Audio on the real-voice pool (`train`); save model,
    processor, the pool's manifest and the recipe, swapping the folder in whole."""
    import shutil

    import torch

    from core import atomic
    from core.detectors.lab_model import TINY, base_model_dir, save
    from core.detectors.llm.prompt import DEFAULT_PROMPT

    recipe = recipe or BaseRecipe()
    out_dir = Path(out_dir or base_model_dir())
    model, processor, (manifest, history, seconds) = train(recipe, progress=progress)
    tmp = out_dir.with_name(f".{out_dir.name}.building")
    if tmp.exists():
        shutil.rmtree(tmp)
    save(model, processor, tmp)
    atomic.write_csv(tmp / "training_manifest.csv", manifest.drop(columns=["path"]))
    atomic.write_json(
        tmp / "lab_recipe.json",
        {
            "recipe": recipe_record(recipe),
            "sizes": TINY,
            "prompt": DEFAULT_PROMPT,
            "answers": ["A", "B"],
            "n_pool_clips": len(manifest),
            "pool_groups": manifest.groupby("label")["group_id"].nunique().to_dict(),
            "final_loss_mean_last_20": float(np.mean(history[-20:])),
            "seconds": round(seconds, 1),
            "torch": torch.__version__,
        },
    )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def ensure_base_model(progress=None) -> Path:
    """The base model's folder, training it first if it is missing."""
    from core.detectors.lab_model import base_model_dir

    folder = base_model_dir()
    if not (folder / "config.json").exists():
        train_base_model(folder, progress=progress)
    return folder
