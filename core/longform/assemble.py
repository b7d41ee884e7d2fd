"""Long recordings with an exact reference, assembled from a clip dataset (the embedded long-form set).

Each recording lays clips of one split part end to end — speech and non-speech in random order,
with gaps of 0.2–2 s — over a noise bed at a per-recording SNR (none, 20, 10 or 0 dB, the bed
taken from non-speech clips of the same part), and now and then puts a speech clip over a
non-speech one (speech over music: still speech). A recording is built from one part's clips
only, so the split of recordings inherits the clip split's groups: no speaker or source is heard
in two parts.

The reference is exact because the lab placed every clip: a speech clip's speech is its active
frames (10 ms frames within 35 dB of its loudest, pauses under 0.2 s bridged), shifted to where
it was placed. Written as one folder: recordings/*.wav (16 kHz PCM16), reference.rttm (one
"speaker" per source group) and recordings.csv (id, path, duration, part, SNR, groups), built in
a temporary folder and renamed into place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import LabError
from core.longform.segments import merge, union

# pandas is imported inside functions: importing this module stays cheap

SR = 16_000
SNRS = (None, 20.0, 10.0, 0.0)


def speech_extent(x: np.ndarray, sr: int = SR, floor_db: float = 35.0, bridge_s: float = 0.2) -> np.ndarray:
    """Segments (seconds, within the clip) where a speech clip speaks: active 10 ms frames, short pauses bridged."""
    from core.data.audio import frame_energy_db

    e = frame_energy_db(x, sr, 10.0)
    on = e >= e.max() - floor_db
    edges = np.diff(np.r_[0, on.astype(np.int8), 0])
    seg = np.column_stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)]) * 0.01
    if not len(seg):
        return seg.reshape(0, 2)
    seg[:, 1] = np.minimum(seg[:, 1], len(x) / sr)
    return merge(seg, bridge_s)  # a pause shorter than bridge_s joins its neighbours


def assemble_one(clips: list[tuple[np.ndarray, str, str]], bed: np.ndarray | None, snr_db: float | None,
                 rng: np.random.Generator, overlap_prob: float = 0.15) -> tuple[np.ndarray, dict[str, list]]:  # fmt: skip
    """One recording from (samples, label, group) clips, and its speech turns by group.

    A speech clip follows a non-speech one into its last part with probability `overlap_prob`
    (mixed, not replaced)."""
    turns: dict[str, list] = {}
    t = 0
    out_len = sum(len(c[0]) for c in clips) + int(2.0 * SR) * (len(clips) + 1)
    y = np.zeros(out_len, np.float32)
    prev_nonspeech = None
    for x, label, group in clips:
        start = t + int(rng.uniform(0.2, 2.0) * SR)
        if label == "speech" and prev_nonspeech is not None and rng.random() < overlap_prob:
            ns_start, ns_end = prev_nonspeech
            start = max(ns_start, ns_end - len(x) // 2)  # over the non-speech clip's last part
        y[start : start + len(x)] += x
        if label == "speech":
            for a, b in speech_extent(x):
                turns.setdefault(group, []).append((start / SR + a, start / SR + b))
        prev_nonspeech = (start, start + len(x)) if label != "speech" else None
        t = max(t, start + len(x))
    y = y[: t + int(rng.uniform(0.2, 2.0) * SR)]
    if bed is not None and snr_db is not None and len(bed):
        noise = np.resize(bed, len(y))
        speech = np.zeros(len(y), bool)
        for segs in turns.values():
            for a, b in segs:
                speech[int(a * SR) : int(b * SR)] = True
        ref = y[speech] if speech.any() else y
        gain = np.sqrt(np.mean(ref.astype(np.float64) ** 2) / max(np.mean(noise.astype(np.float64) ** 2), 1e-12))
        y = y + noise * gain * 10 ** (-snr_db / 20)
    peak = float(np.max(np.abs(y))) or 1.0
    y = (y * (0.89 / peak)).astype(np.float32)
    return y, {g: union(np.array(s)) for g, s in turns.items()}


def build_longform(ds, split: str | None, name: str, seconds: float = 60.0, seed: int = 0, progress=None,
                   nonspeech=None) -> Path:  # fmt: skip
    """Long recordings from dataset `ds` (its saved split `split`, or a fresh group-aware split when
    None: one part per recording) as folder `name`.

    `nonspeech`: another dataset whose non-speech clips join the recordings (split by their own
    groups, so no source is heard in two parts) — how a speech-only corpus such as FSDD becomes
    recordings with music and effects between the voices."""
    import pandas as pd

    from core import atomic
    from core.data.audio import write_wav
    from core.data.splits import load_split, make_split
    from core.longform.dataset import longform_dir
    from core.names import check_name

    check_name(name, "long-form dataset")
    if not 5.0 <= seconds <= 4 * 3600:
        raise LabError(f"recordings of {seconds:g} s: choose between 5 s and 4 h")
    parts = (load_split(ds, split) if split else make_split(ds.manifest, seed=seed)).to_numpy()
    manifest, load = ds.manifest, ds.load_clip
    if nonspeech is not None:
        other = nonspeech.manifest[nonspeech.manifest["label"] != "speech"]
        if other.empty:
            raise LabError(f"dataset {nonspeech.name!r} has no non-speech clips to add")
        other_parts = make_split(other, seed=seed).to_numpy()
        manifest = pd.concat([ds.manifest, other.assign(clip_id="ns:" + other["clip_id"].astype(str))],
                             ignore_index=True)  # fmt: skip
        parts = np.r_[parts, other_parts]

        def load(cid: str):
            return nonspeech.load_clip(cid[3:]) if cid.startswith("ns:") else ds.load_clip(cid)

    rng = np.random.default_rng(seed)
    target = longform_dir() / name
    rows, rttm_lines = [], []
    with atomic.building_dir(target) as tmp:
        (tmp / "recordings").mkdir()
        for part in ("train", "dev", "test"):
            m = manifest[parts == part]
            if m.empty:
                continue
            order = m.sample(frac=1.0, random_state=int(rng.integers(2**31))).reset_index(drop=True)
            per = max(2, int(seconds / max(order["duration_ms"].mean() / 1000 + 1.1, 0.5)))
            beds = [load(c).samples for c in order[order["label"] != "speech"]["clip_id"].head(8)]
            for k, chunk in enumerate(range(0, len(order) - per // 2, per)):
                rec_id = f"{name}-{part}-{k:03d}"
                sub = order.iloc[chunk : chunk + per]
                clips = [(load(r.clip_id).samples, r.label, r.group_id) for r in sub.itertuples()]
                snr = SNRS[int(rng.integers(len(SNRS)))]
                bed = np.concatenate(beds) if beds else None
                y, turns = assemble_one(clips, bed, snr, rng)
                path = write_wav(tmp / "recordings" / f"{rec_id}.wav", y)
                for group, segs in sorted(turns.items()):
                    rttm_lines.append((rec_id, group, segs))
                rows.append({"recording_id": rec_id, "path": str(path.relative_to(tmp)), "duration_s": len(y) / SR,
                             "part": part, "snr_db": snr, "groups": ";".join(sorted(set(sub["group_id"])))})  # fmt: skip
                if progress:
                    progress(min(1.0, len(rows) / max(1, len(manifest) / per)), f"{len(rows)} recordings")
        lines = [f"SPEAKER {rec} 1 {a:.3f} {b - a:.3f} <NA> <NA> {group} <NA> <NA>"
                 for rec, group, segs in rttm_lines for a, b in segs]  # fmt: skip
        lines.sort(key=lambda s: (s.split()[1], float(s.split()[3])))
        (tmp / "reference.rttm").write_text("\n".join(lines) + "\n")
        atomic.write_csv(tmp / "recordings.csv", pd.DataFrame(rows))
        atomic.write_json(tmp / "info.json", {"kind": "assembled", "source_dataset": ds.name,
                                              "nonspeech_from": nonspeech.name if nonspeech is not None else "", "split": split or f"fresh (seed {seed})", "seconds": seconds,
                                              "seed": seed, "n_recordings": len(rows)})  # fmt: skip
    return target
