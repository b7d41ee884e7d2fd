"""The settings of one fine-tuning run, saved as its config.json so a run is reproducible from its folder."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from core.errors import LabError


@dataclass
class TrainConfig:
    """Everything a run needs; saved as config.json so a run is reproducible from its folder."""

    dataset: str = "default"
    split: str = "default"
    base_model: str = ""  # "" = the lab base model; else Qwen2-Audio, Qwen2.5-Omni or Audio Flamingo 3 (a folder)
    family: str = ""  # the audio-LLM family (core.detectors.llm.FAMILIES); "" = from the checkpoint's model_type
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
    # what real recordings need (core.data.augment; 0 = off): talker, room, gain, channel
    stretch: float = 0.0  # time stretch by a factor in [1 − stretch, 1 + stretch]: 0.1 = 0.9–1.1×
    pitch: float = 0.0  # pitch shift in [−pitch, +pitch] semitones
    room_prob: float = 0.0  # a simulated room (pyroomacoustics image-source, RT60 in room_rt60)
    room_rt60: tuple[float, float] = (0.2, 0.9)
    gain_db: tuple[float, float] = (0.0, 0.0)  # recording gain range in dB, e.g. (-30, 6): quiet … clipped
    telephone_prob: float = 0.0  # the telephone channel: 300–3400 Hz at 8 kHz, 8-bit µ-law
    codec_prob: float = 0.0  # a low-bit-rate codec: GSM 06.10, MP3 or Vorbis
    qlora: bool = False  # 4-bit NF4 base (CUDA + bitsandbytes)
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, slower (QLoRA always)
    allow_leaky: bool = False  # explicit override to train on a split the audit marked leaky
    checkpoint_every: int = 20  # optimiser steps
    max_train_clips: int = 0  # 0 = all (a cap makes tiny runs for tests and demos)
    max_dev_clips: int = 0
    exclude_tags: str = ""  # comma-separated annotation tags whose clips are left out (e.g. "label wrong")
    labels: str = "original"  # or "corrected": the dataset's relabels applied (core.data.relabels)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known - {"provenance"}
        if unknown:
            raise LabError(f"unknown training setting(s): {sorted(unknown)}")
        d = {k: v for k, v in d.items() if k in known}
        for name in ("noise_snr", "room_rt60", "gain_db"):
            if name in d:
                d[name] = tuple(d[name])
        return cls(**d)

    def augmentation(self):
        """The run's `core.data.augment.Augmentation` (refuses values out of range, naming the setting)."""
        from core.data.augment import Augmentation

        return Augmentation(stretch=self.stretch, pitch=self.pitch, room_prob=self.room_prob,
                            room_rt60=tuple(self.room_rt60), gain_db=tuple(self.gain_db),
                            telephone_prob=self.telephone_prob, codec_prob=self.codec_prob)  # fmt: skip
