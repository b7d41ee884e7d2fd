"""Offline detectors on the real-voice dataset (Debian sound packages) and on FSDD against its
real non-speech: what each can and cannot do on real recordings, with intervals clustered by group.

Two tests, both held out from every detector here (the lab base model never trained on any of it):
  voices test: the test part of a group-aware split (seed 0) of the real-voice set — held-out
               speakers (voice actors, spoken letters in 22 languages, codec2 speakers) against
               held-out music, game effects and desktop sounds;
  FSDD:        the Free Spoken Digit Dataset in ../shared (6 speakers, 8 kHz) against all of the
               real-voice set's non-speech.
Prints balanced accuracy with a Korn-Graubard interval clustered by group, and ROC-AUC.
    .venv/bin/python -m benchmarks.bench_voices        (needs ./run.sh's Debian packages)
"""

from __future__ import annotations

import time

import numpy as np


def report(name: str, labels: np.ndarray, logit: np.ndarray, groups: np.ndarray) -> None:
    from sklearn.metrics import roc_auc_score

    from core.analysis.stats import balanced_accuracy_ci

    y = labels == "speech"
    says = logit > 0
    est, lo, hi = balanced_accuracy_ci(labels, says == y, groups)
    print(f"  {name:12s} balanced accuracy {est:.3f} [{lo:.3f}, {hi:.3f}]  ROC-AUC {roc_auc_score(y, logit):.3f}  "
          f"speech recall {says[y].mean():.3f}  non-speech recall {(~says[~y]).mean():.3f}")  # fmt: skip


def main() -> None:
    import os
    import tempfile

    os.environ.setdefault("LAB_DATA_DIR", tempfile.mkdtemp(prefix="lab-bench-"))
    import pandas as pd

    from core.data.datasets import load_dataset
    from core.data.importers import import_dataset
    from core.data.splits import make_split
    from core.data.voices_dataset import build_voices
    from core.detectors import make_detector
    from core.paths import repo_root

    t0 = time.perf_counter()
    build_voices(force=True)
    voices = load_dataset("voices")
    m = voices.manifest.assign(part=make_split(voices.manifest, seed=0).to_numpy())
    print(f"real-voice set: {len(m)} clips, {m.groupby('label')['group_id'].nunique().to_dict()} groups, built in "
          f"{time.perf_counter() - t0:.0f} s; test part: {m[m['part'] == 'test'].groupby('label')['group_id'].nunique().to_dict()} groups")  # fmt: skip
    import_dataset("fsdd", repo_root().parent / "shared" / "audio" / "fsdd", "fsdd", force=True)
    fsdd = load_dataset("fsdd").manifest
    test = m[m["part"] == "test"]
    nonspeech = m[m["label"] == "nonspeech"]
    sets = {"voices test": (voices, test), "FSDD vs real non-speech": (None, pd.concat([fsdd.assign(ds="fsdd"),
                                                                                       nonspeech.assign(ds="voices")]))}  # fmt: skip
    fsdd_ds = load_dataset("fsdd")
    for name, opts in (("silero-vad", {}), ("webrtc-vad", {}), ("lab-base", {"batch_size": 32})):
        det = make_detector(name, **opts)
        for title, (ds, rows) in sets.items():
            if ds is not None:
                clips = [ds.load_clip(c).samples for c in rows["clip_id"]]
            else:
                clips = [
                    (fsdd_ds if r.ds == "fsdd" else voices).load_clip(r.clip_id).samples for r in rows.itertuples()
                ]
            logits = det.score(clips, 16000)
            print(title)
            report(name, rows["label"].to_numpy(), logits[:, 0] - logits[:, 1], rows["group_id"].to_numpy())


if __name__ == "__main__":
    main()
