"""A corpus with a planted group cue: a known truth for what a leaky evaluation rewards.

Every clip is white noise plus one pure tone that all clips of its group share, and labels are
drawn per group (half the groups "speech", half "nonspeech"). The audio therefore says nothing
about speech: the only thing that predicts a clip's label is recognising its group. A detector
tested on groups it never trained on must score at chance (grouped cross-validation), while one
whose folds share groups with training (rows shuffled into folds) can score near 1. The gap is
the optimism of a leaky split with nothing else in it, which is what the CV view's shuffled twin
is there to show; `tests/test_cv.py` checks it with the lab base model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.atomic import write_csv
from core.data.audio import write_wav
from core.errors import LabError

SR = 16000


def group_tones(groups: int) -> np.ndarray:
    """One tone per group, log-spaced over 250 Hz–4 kHz (quarter-octave steps at 16 groups)."""
    return 250.0 * 2.0 ** (np.arange(groups) * 4.0 / groups)


def write_planted_corpus(
    folder: Path,
    groups: int = 16,
    clips_per_group: int = 24,
    tone_db: float = 6.0,
    seconds: float = 1.0,
    seed: int = 0,
) -> Path:
    """Write the clips (16 kHz WAV) and a manifest to `folder`; return the manifest's path.

    `tone_db`: the tone's level relative to the noise (0 dB = equal power).
    """
    if groups < 4 or groups % 2:
        raise LabError(f"a planted corpus needs an even number of groups, at least 4; got {groups}")
    if clips_per_group < 2:
        raise LabError(f"a planted corpus needs at least 2 clips per group; got {clips_per_group}")
    rng = np.random.default_rng(seed)
    labels = np.array(["speech", "nonspeech"] * (groups // 2))
    rng.shuffle(labels)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(SR * seconds)) / SR
    noise_rms = 0.05
    amplitude = noise_rms * np.sqrt(2.0) * 10 ** (tone_db / 20)  # a sine's RMS is its amplitude / √2
    rows = []
    for g, freq in enumerate(group_tones(groups)):
        for i in range(clips_per_group):
            x = noise_rms * rng.standard_normal(t.size) + amplitude * np.sin(
                2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)
            )
            clip_id = f"g{g:02d}-{i:03d}"
            write_wav(folder / f"{clip_id}.wav", x / max(1.0, np.abs(x).max() / 0.99), SR, atomic_write=False)
            rows.append(
                {
                    "clip_id": clip_id,
                    "path": f"{clip_id}.wav",
                    "label": labels[g],
                    "group_id": f"g{g:02d}",
                    "base_clip_id": clip_id,
                    "source": f"tone {freq:.0f} Hz",
                }
            )
    return write_csv(folder / "manifest.csv", pd.DataFrame(rows))
