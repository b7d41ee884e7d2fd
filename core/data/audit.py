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
from core.data.copy_scores import planted_scores, score_histogram
from core.data.fingerprint import fingerprint
from core.data.near_copies import FINDING_COLUMNS, NEAR_THRESHOLD, TOP_K, Progress, near_findings


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
