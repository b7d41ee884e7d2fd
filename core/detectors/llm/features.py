"""Log-mel features for Whisper-style audio towers, padded to the batch instead of 30 s, and batching by length.

Shared by the families whose encoder takes features of any length (Qwen2-Audio, Qwen2.5-Omni);
Audio Flamingo 3 pads to its 30 s window instead (see its module).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

HOP = 160  # Whisper feature extractor: 10 ms hop at 16 kHz
MARGIN_FRAMES = 8  # padded frames kept after the longest clip (conv receptive field is 5)


def audio_token_count(n_frames: int) -> int:
    """Audio tokens for `n_frames` valid mel frames: conv stride 2, then average pooling by 2.

    Mirrors `Qwen2AudioEncoder._get_feat_extract_output_lengths` of transformers 5.25 (the same
    arithmetic in Qwen2.5-Omni's and Audio Flamingo 3's towers);
    `tests/test_audio_llm.py::test_audio_token_count_is_the_encoders_own` fails if it moves.
    """
    return (((n_frames - 1) // 2 + 1) - 2) // 2 + 1


def trimmed_features(feature_extractor, clips: Sequence[np.ndarray]) -> dict:
    """Log-mel features padded to the batch's longest clip plus a margin (not to 30 s), with their mask."""
    longest = max(len(c) for c in clips)
    need = -(-longest // HOP)
    n_frames = need + MARGIN_FRAMES
    if need <= feature_extractor.nb_max_frames:  # the margin never takes a clip that fits past the 30 s window
        n_frames = min(n_frames, feature_extractor.nb_max_frames)
    n_frames += (-n_frames) % 4  # two stride-2 stages
    return feature_extractor(
        list(clips),
        sampling_rate=16000,
        padding="max_length",
        max_length=n_frames * HOP,
        truncation=True,
        return_attention_mask=True,
        return_tensors="pt",
    )


def shortest_heard(feature_extractor) -> float:
    """Seconds of the shortest clip that gives the encoder at least one audio token (Whisper-style
    towers: 321 samples, just over 20 ms), found with the checkpoint's own feature extractor."""
    lo, hi = 1, 16000
    while lo < hi:  # the token count never falls as a clip grows: bisect on it
        mid = (lo + hi) // 2
        n = int(trimmed_features(feature_extractor, [np.full(mid, 0.01, np.float32)])["attention_mask"].sum())
        lo, hi = (mid + 1, hi) if audio_token_count(n) < 1 else (lo, mid)
    return lo / 16000


def window_seconds(feature_extractor) -> float:
    """The audio encoder's fixed window in seconds (Whisper-style: 30), from its feature extractor."""
    return feature_extractor.n_samples / 16000


def length_groups(lengths: list[int], batch_size: int, ramp: bool = False) -> list[np.ndarray]:
    """Clip indices in batches, shortest clips first, so each batch holds little padding.

    `ramp`: the first batches hold 1/8, 1/4 and 1/2 of `batch_size`. When worker processes
    prepare the batches, the device then starts as soon as a small batch is ready instead of
    idling while a whole one is prepared (half a second of a 12 s run on an H100), and each
    next batch is ready before the device finishes the one before.
    """
    order = np.argsort(lengths, kind="stable")
    sizes = [max(1, batch_size // d) for d in (8, 4, 2)] if ramp else []
    groups, start = [], 0
    for size in sizes:
        if start < len(order):
            groups.append(order[start : start + size])
            start += size
    return groups + [order[i : i + batch_size] for i in range(start, len(order), batch_size)]
