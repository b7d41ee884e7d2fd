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
NEAR_THRESHOLD = 0.87  # unrelated clips of the default dataset score ≤ 0.82
TOP_K = 10


@dataclass
class AuditReport:
    findings: pd.DataFrame
    n_clips: int
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)

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

    Returns unique (i, j) index pairs with i < j, shape (n_pairs, 2).
    """
    n = len(descriptors)
    codes = pd.factorize(splits)[0]
    out = []
    k = min(top_k, n - 1)
    if k <= 0:
        return np.zeros((0, 2), int)
    for s in range(0, n, chunk):
        sim = descriptors[s : s + chunk] @ descriptors.T
        sim[codes[s : s + chunk, None] == codes[None, :]] = -np.inf
        idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        ok = np.isfinite(np.take_along_axis(sim, idx, 1))
        rows = np.repeat(np.arange(s, s + len(sim)), k).reshape(-1, k)
        out.append(np.stack([rows[ok], idx[ok]], axis=1))
    pairs = np.concatenate(out) if out else np.zeros((0, 2), int)
    pairs = np.sort(pairs, axis=1)
    return np.unique(pairs, axis=0)


def near_findings(
    manifest: pd.DataFrame,
    fps: list[Fingerprint],
    hashes: pd.Series,
    threshold: float = NEAR_THRESHOLD,
    top_k: int = TOP_K,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Pairs in different splits whose fingerprints match above `threshold` (exact dups excluded)."""
    desc = np.stack([f.descriptor for f in fps])
    pairs = candidate_pairs(desc, manifest["split"].to_numpy(), top_k)
    h = hashes.to_numpy()
    pairs = pairs[h[pairs[:, 0]] != h[pairs[:, 1]]]
    # Sort by length so a batch pads little; batch size keeps memory near 200 MB.
    lengths = np.array([f.frames for f in fps])
    pairs = pairs[np.argsort(np.maximum(lengths[pairs[:, 0]], lengths[pairs[:, 1]]), kind="stable")]
    scores = np.empty(len(pairs))
    lags = np.empty(len(pairs), int)
    pos = 0
    while pos < len(pairs):
        t = int(max(lengths[pairs[pos]].max(), 1))
        batch = max(8, int(2.5e7 // (len(fps[0].pattern) * 4 * t)))
        sl = slice(pos, pos + batch)
        scores[sl], lags[sl] = match_scores([fps[i] for i in pairs[sl, 0]], [fps[j] for j in pairs[sl, 1]])
        pos += batch
        if progress:
            progress(min(1.0, pos / len(pairs)), f"compared {min(pos, len(pairs))}/{len(pairs)} candidate pairs")
    hit = scores >= threshold
    ids, spl = manifest["clip_id"].to_numpy(), manifest["split"].to_numpy()
    rows = [
        {
            "kind": "near_duplicate",
            "clip_a": ids[i],
            "split_a": spl[i],
            "clip_b": ids[j],
            "split_b": spl[j],
            "score": round(float(sc), 4),
            "detail": f"fingerprint match {sc:.2f} at lag {lag * 10:+d} ms",
        }
        for (i, j), sc, lag in zip(pairs[hit], scores[hit], lags[hit])
    ]
    return pd.DataFrame(rows, columns=FINDING_COLUMNS)


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
        parts.append(near_findings(manifest, fps, hashes, threshold, top_k, sub))
    findings = (
        pd.concat([p for p in parts if len(p)], ignore_index=True)
        if any(len(p) for p in parts)
        else pd.DataFrame(columns=FINDING_COLUMNS)
    )
    settings = {"content": content, "threshold": threshold, "top_k": top_k}
    return AuditReport(findings, len(manifest), time.perf_counter() - t0, settings)


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
    from core import atomic
    from core.data.splits import file_hash, load_split, splits_dir

    manifest = ds.manifest.assign(split=load_split(ds, name).to_numpy())
    report = audit(
        manifest,
        lambda row: ds.load_clip(row["clip_id"]).samples,
        content=content,
        threshold=threshold,
        top_k=top_k,
        progress=progress,
    )
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
        },
    )
    return report


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
