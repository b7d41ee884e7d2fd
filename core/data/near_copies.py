"""Near-copy search for the leakage audit: which clip pairs across a split to compare, and their
copy scores. Pairs come from nearest neighbours of pooled descriptors and from shared landmark
hashes, so gain-changed, noisy, band-limited, shifted or re-encoded copies are compared without
comparing every pair.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from core.data.fingerprint import Fingerprint, match_scores

FINDING_COLUMNS = ["kind", "clip_a", "split_a", "clip_b", "split_b", "score", "detail"]
NEAR_THRESHOLD = 0.5  # copy score (core.data.fingerprint): planted copies ≥ 0.64, unrelated clips ≤ 0.43
TOP_K = 10
Progress = Callable[[float, str], None]


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
