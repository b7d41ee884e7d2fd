"""Leakage audit of a split: structural overlap and content-level duplicates across splits.

Structural: a group (speaker/source) or a base clip on two sides of a split.
Content: the same audio under another name, on two sides of a split:
  - exact duplicates, by a hash of the decoded samples (renamed or losslessly re-encoded);
  - near duplicates, by fingerprint similarity (gain-changed, lossy re-encoded, trimmed,
    shifted copies; see `core.fingerprint`).
Each finding names both clips. A split with any finding is leaky.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.data.audio import content_hash
from core.data.fingerprint import Fingerprint, fingerprint, match_scores

Progress = Callable[[float, str], None]
FINDING_COLUMNS = ["kind", "clip_a", "split_a", "clip_b", "split_b", "score", "detail"]
NEAR_THRESHOLD = 0.5  # copy score (core.data.fingerprint): planted copies ≥ 0.64, unrelated clips ≤ 0.43
TOP_K = 10


@dataclass
class AuditReport:
    findings: pd.DataFrame
    n_clips: int
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)
    # the copy score of every candidate pair compared (most are not copies): where unrelated clips sit
    pair_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def leaky(self) -> bool:
        return len(self.findings) > 0

    def counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.findings["kind"].value_counts().items()}


def structural_findings(manifest: pd.DataFrame) -> pd.DataFrame:
    """Groups and base clips that appear in more than one split (one finding per pair of splits)."""
    rows = []
    for col, kind in (("group_id", "group_overlap"), ("base_clip_id", "base_clip_overlap")):
        for key, sub in manifest.groupby(col, sort=True):
            sides = sub.groupby("split", sort=True)
            if sides.ngroups < 2:
                continue
            names = list(sides.groups)
            for i, sa in enumerate(names):
                for sb in names[i + 1 :]:
                    a, b = sides.get_group(sa), sides.get_group(sb)
                    rows.append(
                        {
                            "kind": kind,
                            "clip_a": a["clip_id"].iloc[0],
                            "split_a": sa,
                            "clip_b": b["clip_id"].iloc[0],
                            "split_b": sb,
                            "score": 1.0,
                            "detail": f"{col} {key!r}: {len(a)} clip(s) in {sa}, {len(b)} in {sb}",
                        }
                    )
    return pd.DataFrame(rows, columns=FINDING_COLUMNS)


def exact_findings(manifest: pd.DataFrame, hashes: pd.Series, max_pairs: int = 50) -> pd.DataFrame:
    """Clips with identical decoded samples in different splits."""
    rows = []
    df = pd.DataFrame({"clip_id": manifest["clip_id"], "split": manifest["split"], "h": hashes})
    for h, sub in df.groupby("h", sort=True):
        if sub["split"].nunique() < 2:
            continue
        pairs = [
            (a, b)
            for i, a in enumerate(sub.itertuples())
            for b in list(sub.itertuples())[i + 1 :]
            if a.split != b.split
        ]
        for a, b in pairs[:max_pairs]:
            rows.append(
                {
                    "kind": "exact_duplicate",
                    "clip_a": a.clip_id,
                    "split_a": a.split,
                    "clip_b": b.clip_id,
                    "split_b": b.split,
                    "score": 1.0,
                    "detail": f"identical decoded samples (hash {h})",
                }
            )
    return pd.DataFrame(rows, columns=FINDING_COLUMNS)


def candidate_pairs(descriptors: np.ndarray, splits: np.ndarray, top_k: int = TOP_K, chunk: int = 2048) -> np.ndarray:
    """For each clip, its `top_k` most similar clips (cosine of descriptors) in other splits.

    `descriptors` is (n, d), or (n, variants, d) with variant 0 the clip as it is and the others
    as if reverberated: the similarity of i and j is then the best of (i as is, j any variant)
    and (i any variant, j as is), so a reverberant copy is near its dry original.
    Returns unique (i, j) index pairs with i < j, shape (n_pairs, 2).
    """
    d = descriptors if descriptors.ndim == 3 else descriptors[:, None, :]
    n = len(d)
    codes = pd.factorize(splits)[0]
    out = []
    k = min(top_k, n - 1)
    if k <= 0:
        return np.zeros((0, 2), int)
    plain = d[:, 0]
    for s in range(0, n, chunk):
        rows = d[s : s + chunk]
        sim = np.max([rows[:, v] @ plain.T for v in range(d.shape[1])], axis=0)
        sim = np.maximum(sim, np.max([rows[:, 0] @ d[:, v].T for v in range(d.shape[1])], axis=0))
        sim[codes[s : s + chunk, None] == codes[None, :]] = -np.inf
        idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        ok = np.isfinite(np.take_along_axis(sim, idx, 1))
        rows_i = np.repeat(np.arange(s, s + len(sim)), k).reshape(-1, k)
        out.append(np.stack([rows_i[ok], idx[ok]], axis=1))
    pairs = np.concatenate(out) if out else np.zeros((0, 2), int)
    pairs = np.sort(pairs, axis=1)
    return np.unique(pairs, axis=0)


def landmark_pairs(fps: list[Fingerprint], splits: np.ndarray, top_k: int = TOP_K, common: int = 64) -> np.ndarray:
    """For each clip, the `top_k` clips in other splits sharing most landmarks at one time offset.

    Landmark hashes are joined across clips (a hash held by more than `common` clips says
    nothing and is skipped); each pair's votes are counted per time offset (2-frame bins) and
    its best offset counts, divided by the smaller clip's number of landmarks.
    Returns unique (i, j) index pairs with i < j.
    """
    codes = pd.factorize(splits)[0]
    sizes = np.array([len(f.hashes) for f in fps])
    if sizes.sum() == 0:
        return np.zeros((0, 2), int)
    h = np.concatenate([f.hashes for f in fps])
    c = np.repeat(np.arange(len(fps)), sizes)
    tt = np.concatenate([f.times for f in fps]).astype(np.int64)
    order = np.argsort(h, kind="stable")
    h, c, tt = h[order], c[order], tt[order]
    starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
    counts = np.diff(np.r_[starts, len(h)])
    pa, pb = [], []
    for size in np.unique(counts):
        if size < 2 or size > common:
            continue
        iu, ju = np.triu_indices(size, 1)
        base = starts[counts == size][:, None]
        ia, ib = (base + iu[None, :]).ravel(), (base + ju[None, :]).ravel()
        pa.append(ia)
        pb.append(ib)
    if not pa:
        return np.zeros((0, 2), int)
    ia, ib = np.concatenate(pa), np.concatenate(pb)
    a, b = c[ia], c[ib]
    keep = codes[a] != codes[b]
    a, b, dt = a[keep], b[keep], (tt[ia] - tt[ib])[keep]
    swap = a > b
    a, b, dt = np.where(swap, b, a), np.where(swap, a, b), np.where(swap, -dt, dt)
    if not len(a):
        return np.zeros((0, 2), int)
    key = (a.astype(np.int64) * len(fps) + b) * 4096 + np.floor_divide(dt, 2) + 2048
    uniq, votes = np.unique(key, return_counts=True)
    pair = uniq // 4096
    best = pd.Series(votes).groupby(pair).max()
    pa_, pb_ = best.index.to_numpy() // len(fps), best.index.to_numpy() % len(fps)
    score = best.to_numpy() / np.maximum(1, np.minimum(sizes[pa_], sizes[pb_]))
    frame = pd.DataFrame({"a": np.r_[pa_, pb_], "b": np.r_[pb_, pa_], "s": np.r_[score, score]})
    top = frame.sort_values("s", ascending=False, kind="stable").groupby("a").head(top_k)
    pairs = np.sort(top[["a", "b"]].to_numpy(), axis=1)
    return np.unique(pairs, axis=0)


def near_findings(
    manifest: pd.DataFrame,
    fps: list[Fingerprint],
    hashes: pd.Series,
    threshold: float = NEAR_THRESHOLD,
    top_k: int = TOP_K,
    progress: Progress | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Pairs in different splits whose copy score reaches `threshold` (exact duplicates excluded).

    Returns (findings, the copy score of every candidate pair compared): the scores of pairs
    that are not copies show how far below the threshold unrelated clips stay.
    """
    splits = manifest["split"].to_numpy()
    desc = np.stack([f.descriptors for f in fps])
    pairs = np.concatenate([candidate_pairs(desc, splits, top_k), landmark_pairs(fps, splits, top_k)])
    pairs = np.unique(pairs, axis=0) if len(pairs) else np.zeros((0, 2), int)
    h = hashes.to_numpy()
    pairs = pairs[h[pairs[:, 0]] != h[pairs[:, 1]]]
    lengths = np.array([f.samples for f in fps])
    pairs = pairs[np.argsort(lengths[pairs[:, 0]] + lengths[pairs[:, 1]], kind="stable")]  # similar FFT sizes
    scores = np.empty(len(pairs))
    lags = np.empty(len(pairs), int)
    step = 256
    for pos in range(0, len(pairs), step):
        sl = slice(pos, pos + step)
        scores[sl], lags[sl] = match_scores([fps[i] for i in pairs[sl, 0]], [fps[j] for j in pairs[sl, 1]])
        if progress:
            done = min(pos + step, len(pairs))
            progress(done / len(pairs), f"compared {done}/{len(pairs)} candidate pairs")
    hit = scores >= threshold
    ids = manifest["clip_id"].to_numpy()
    rows = [
        {
            "kind": "near_duplicate",
            "clip_a": ids[i],
            "split_a": splits[i],
            "clip_b": ids[j],
            "split_b": splits[j],
            "score": round(float(sc), 4),
            "detail": f"copy score {sc:.2f} (same waveform phase) at lag {lag:+d} ms",
        }
        for (i, j), sc, lag in zip(pairs[hit], scores[hit], lags[hit])
    ]
    return pd.DataFrame(rows, columns=FINDING_COLUMNS), scores


def audit(
    manifest: pd.DataFrame,
    load: Callable[[pd.Series], np.ndarray],
    *,
    content: bool = True,
    threshold: float = NEAR_THRESHOLD,
    top_k: int = TOP_K,
    progress: Progress | None = None,
) -> AuditReport:
    """Audit a manifest that has a `split` column; `load(row)` returns the clip's samples at 16 kHz.

    Progress is reported as (fraction, message): loading takes the first 70%, comparing the rest.
    """
    t0 = time.perf_counter()
    if "split" not in manifest.columns:
        raise ValueError("the manifest to audit needs a 'split' column")
    manifest = manifest.reset_index(drop=True)
    parts = [structural_findings(manifest)]
    pair_scores = np.zeros(0)
    if content:
        fps, hashes = [], []
        n = len(manifest)
        for i, row in manifest.iterrows():
            x = load(row)
            hashes.append(content_hash(x))
            fps.append(fingerprint(x))
            if progress and (i % 50 == 0 or i == n - 1):
                progress(0.7 * (i + 1) / n, f"fingerprinted {i + 1}/{n} clips")
        hashes = pd.Series(hashes, index=manifest.index)
        parts.append(exact_findings(manifest, hashes))
        sub = (lambda f, m: progress(0.7 + 0.3 * f, m)) if progress else None
        near, pair_scores = near_findings(manifest, fps, hashes, threshold, top_k, sub)
        parts.append(near)
    findings = (
        pd.concat([p for p in parts if len(p)], ignore_index=True)
        if any(len(p) for p in parts)
        else pd.DataFrame(columns=FINDING_COLUMNS)
    )
    settings = {"content": content, "threshold": threshold, "top_k": top_k}
    report = AuditReport(findings, len(manifest), time.perf_counter() - t0, settings)
    report.pair_scores = pair_scores
    return report


# ---------------------------------------------------------------- how copies score: the threshold's evidence

COPY_TRANSFORMS = (
    "white10", "white20", "pink10", "pink20", "babble10", "babble20",
    "telephone", "am-radio", "small-room", "large-hall", "gain", "resampled", "shifted", "lossy",
)  # fmt: skip


def planted_copy(name: str, x: np.ndarray, rng: np.random.Generator, babble: list[np.ndarray]) -> np.ndarray:
    """`x` as a careless dataset builder would copy it (one of COPY_TRANSFORMS), at 16 kHz.

    Noise at 10 or 20 dB SNR (white, pink, or babble from `babble` talkers), a telephone or AM
    band, a small room (RT60 0.3 s) or a large hall (1.5 s), −10 dB gain, resampled through
    8 kHz, shifted by 30 ms, or re-encoded lossily (Ogg Vorbis).
    """
    import io

    import soundfile as sf

    from core.data import conditions as cond
    from core.data.audio import mix_at_snr, peak_normalise, resample

    if name[:-2] in ("white", "pink", "babble"):
        noise = cond.NoiseSource(name[:-2], 16000, babble)(len(x), rng)
        return peak_normalise(mix_at_snr(x, noise, float(name[-2:]))[0])
    if name in ("telephone", "am-radio"):
        return peak_normalise(cond.band_limit(x, 16000, cond.BANDS[name]))
    if name in ("small-room", "large-hall"):
        return peak_normalise(cond.reverberate(x, cond.synth_rir(cond.ROOMS[name], 16000, rng)))
    if name == "gain":
        return (x * 10 ** (-10 / 20)).astype(np.float32)
    if name == "resampled":
        return resample(resample(x, 16000, 8000), 8000, 16000)
    if name == "shifted":
        return np.concatenate([np.zeros(480, np.float32), x])
    if name == "lossy":
        buf = io.BytesIO()
        sf.write(buf, x, 16000, format="OGG", subtype="VORBIS")
        buf.seek(0)
        return sf.read(buf, dtype="float32")[0]
    raise ValueError(f"unknown copy transform {name!r}; choose from {COPY_TRANSFORMS}")


def planted_scores(
    manifest: pd.DataFrame, load: Callable[[pd.Series], np.ndarray], n: int = 12, seed: int = 0
) -> pd.DataFrame:
    """Copy scores of copies of `n` of the manifest's own clips under every COPY_TRANSFORMS.

    Beside the scores of the pairs an audit compared (nearly all strangers), these show where
    this dataset's copies would land, so a threshold is an informed choice. Babble is drawn
    from speech clips outside the ones copied.
    """
    rng = np.random.default_rng(seed)
    picks = manifest.sample(min(n, len(manifest)), random_state=seed)
    talkers = manifest[(manifest["label"] == "speech") & ~manifest["clip_id"].isin(picks["clip_id"])].head(24)
    babble = [load(row) for _, row in talkers.iterrows()] or [load(row) for _, row in picks.iterrows()]
    rows = []
    for _, row in picks.iterrows():
        x = load(row)
        fx = fingerprint(x)
        copies = [fingerprint(np.asarray(planted_copy(t, x, rng, babble), np.float32)) for t in COPY_TRANSFORMS]
        scores, _ = match_scores(copies, [fx] * len(copies))
        rows += [
            {"transform": t, "clip_id": row["clip_id"], "score": float(s)} for t, s in zip(COPY_TRANSFORMS, scores)
        ]
    return pd.DataFrame(rows)


def score_histogram(scores: np.ndarray, bins: int = 50) -> dict[str, list]:
    """Counts of scores in `bins` equal bins over [0, 1] (what the audit view draws; small to save)."""
    counts, edges = np.histogram(np.clip(scores, 0, 1), bins=bins, range=(0.0, 1.0))
    return {"edges": edges.round(4).tolist(), "counts": counts.tolist()}


# ---------------------------------------------------------------- saved audits of saved splits


def _audit_path(ds, name: str):
    from core.data.splits import splits_dir, validate_split_name

    return splits_dir(ds) / f"{validate_split_name(name)}.audit.json"


def audit_split(
    ds,
    name: str,
    *,
    content: bool = True,
    threshold: float = NEAR_THRESHOLD,
    top_k: int = TOP_K,
    progress: Progress | None = None,
) -> AuditReport:
    """Audit the saved split `name` of dataset `ds` and save the report beside it."""
    from core.data.splits import load_split

    manifest = ds.manifest.assign(split=load_split(ds, name).to_numpy())
    load = lambda row: ds.load_clip(row["clip_id"]).samples  # noqa: E731
    report = audit(manifest, load, content=content, threshold=threshold, top_k=top_k, progress=progress)
    limit = ds.info.get("summary", {}).get("clip_level_groups")
    if limit:  # the importer was told each clip is its own group: no split can be speaker-safe
        report.settings["limits"] = [limit]
    evidence = {}
    if content:  # where this dataset's own copies would score, beside the pairs compared
        evidence = {
            "pair_scores": score_histogram(report.pair_scores),
            "planted": planted_scores(manifest, load).to_dict(orient="records"),
        }
    save_audit(ds, name, report, evidence)
    return report


def save_audit(ds, name: str, report: AuditReport, extra: dict[str, Any] | None = None) -> None:
    """Save `report` as the audit of saved split `name` (tied to the split file's hash)."""
    from core import atomic
    from core.data.splits import file_hash, splits_dir

    atomic.write_json(
        _audit_path(ds, name),
        {
            "split": name,
            "split_hash": file_hash(splits_dir(ds) / f"{name}.csv"),
            "leaky": report.leaky,
            "counts": report.counts(),
            "n_clips": report.n_clips,
            "seconds": round(report.seconds, 2),
            "settings": report.settings,
            "findings": report.findings.to_dict(orient="records"),
            **(extra or {}),
        },
    )


def copies_across_units(manifest: pd.DataFrame, load, units: pd.Series, **kw) -> AuditReport:
    """One content audit for every fold of a cross-validation: copies between clips of different units.

    A fold puts whole units (groups joined by shared base clips) on one side, so only a copy
    between two units can ever cross a fold's sides; auditing once with each unit as its own
    "split" finds every such copy, and `fold_audit` keeps those a given fold divides.
    """
    return audit(manifest.assign(split=units.to_numpy()), load, **kw)


def fold_audit(manifest: pd.DataFrame, across: AuditReport) -> AuditReport:
    """The audit of one fold (`manifest` with its split column) from `copies_across_units`' findings."""
    t0 = time.perf_counter()
    side = dict(zip(manifest["clip_id"], manifest["split"]))
    content = across.findings[across.findings["kind"].isin(["exact_duplicate", "near_duplicate"])]
    mask = np.array([side.get(a) != side.get(b) for a, b in zip(content["clip_a"], content["clip_b"])], dtype=bool)
    crossing = content[mask]
    crossing = crossing.assign(
        split_a=[side[a] for a in crossing["clip_a"]], split_b=[side[b] for b in crossing["clip_b"]]
    )
    parts = [p for p in (structural_findings(manifest), crossing) if len(p)]
    findings = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=FINDING_COLUMNS)
    settings = {**across.settings, "content": "shared across folds"}
    return AuditReport(findings, len(manifest), time.perf_counter() - t0, settings)


def load_audit(ds, name: str) -> dict[str, Any] | None:
    """The saved audit of split `name`, or None if never audited or the split changed since."""
    import json

    from core.data.splits import file_hash, splits_dir

    path = _audit_path(ds, name)
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    if saved.get("split_hash") != file_hash(splits_dir(ds) / f"{name}.csv"):
        return None
    return saved


def split_status(ds, name: str) -> str:
    """'not audited', 'clean' or 'leaky'."""
    saved = load_audit(ds, name)
    if saved is None:
        return "not audited"
    return "leaky" if saved["leaky"] else "clean"


def require_clean_split(ds, name: str, allow_leaky: bool = False) -> str:
    """Gate for training: the split must be audited and clean unless the user overrides.

    Returns the status, which a run records in its config (with the override, if used).
    """
    from core.errors import SplitError

    status = split_status(ds, name)
    if status == "clean" or (allow_leaky and status == "leaky"):
        return status
    if status == "not audited":
        raise SplitError(
            f"split {name!r} of dataset {ds.name!r} has not been audited since it was saved; "
            f"run: python -m core data audit --dataset {ds.name} --split {name}"
        )
    saved = load_audit(ds, name) or {}
    raise SplitError(
        f"split {name!r} of dataset {ds.name!r} is leaky ({saved.get('counts')}); "
        "fix the split, or override explicitly (recorded with the run)"
    )


def audit_against(
    ds,
    split_name: str,
    part: str,
    reference,
    *,
    threshold: float = NEAR_THRESHOLD,
    top_k: int = TOP_K,
    progress: Progress | None = None,
) -> AuditReport:
    """Audit one side of a split against another dataset, e.g. the lab base model's training pool.

    The reference is treated as one more split named `ref:<name>`, so every finding names a
    clip of `part` and a clip of the reference that share a group, a base clip or audio.
    """
    from core.data.splits import load_split

    side = ds.manifest.assign(split=load_split(ds, split_name).to_numpy())
    if part != "all":
        side = side[side["split"] == part]
    ref = reference.manifest.assign(split=f"ref:{reference.name}")
    both = pd.concat([side.assign(_ds=0), ref.assign(_ds=1)], ignore_index=True)
    sources = (ds, reference)
    return audit(
        both,
        lambda row: sources[int(row["_ds"])].load_clip(row["clip_id"]).samples,
        threshold=threshold,
        top_k=top_k,
        progress=progress,
    )
