"""One dataset from the clips of several: a speech corpus with no non-speech (FSDD) plus another
set's non-speech, so it can be split, cross-validated and searched for label issues.

Why a new dataset and not a view: splits, audits, runs and relabels all key on one manifest.
Audio is read in place (absolute paths), nothing is copied. Clip and group ids keep their source's
names; a clip id or a group id that two sources share is refused, because a shared group id would
silently merge two speakers into one group (and a shared clip id would make two clips one).
"""

from __future__ import annotations

import pandas as pd

from core import atomic
from core.data.datasets import Dataset, dataset_root, load_dataset, manifest_in_place, save_dataset
from core.errors import LabError


def parse_part(text: str) -> tuple[str, str | None, int]:
    """'NAME', 'NAME:LABEL' or 'NAME:LABEL:MAX' (MAX clips, drawn evenly over groups) from the CLI."""
    bits = text.split(":")
    if not 1 <= len(bits) <= 3 or not bits[0]:
        raise LabError(f"a part is NAME, NAME:LABEL or NAME:LABEL:MAX, not {text!r}")
    label = bits[1] if len(bits) > 1 and bits[1] else None
    if label not in (None, "speech", "nonspeech"):
        raise LabError(f"{text!r}: the label is speech or nonspeech, not {label!r}")
    try:
        cap = int(bits[2]) if len(bits) > 2 else 0
    except ValueError:
        raise LabError(f"{text!r}: MAX must be a whole number") from None
    return bits[0], label, cap


def _take(m: pd.DataFrame, cap: int, seed: int) -> pd.DataFrame:
    """At most `cap` rows, the same number from every group where possible (0 = all)."""
    if not cap or len(m) <= cap:
        return m
    shuffled = m.sample(frac=1.0, random_state=seed)
    turn = shuffled.groupby("group_id").cumcount()  # round robin over groups: the k-th clip of each group
    return shuffled.assign(_turn=turn.to_numpy()).sort_values("_turn", kind="stable").head(cap).drop(columns="_turn")


def merge_datasets(name: str, parts: list[tuple[str, str | None, int]], seed: int = 0) -> Dataset:
    """Dataset `name` from `parts` = [(dataset, label or None for all, max clips or 0)]."""
    root = dataset_root(name)
    if root.exists():
        raise LabError(f"dataset {name!r} already exists; pick another name")
    if not parts:
        raise LabError("name at least one dataset to merge")
    frames, sources = [], []
    for src_name, label, cap in parts:
        src = load_dataset(src_name)
        m = manifest_in_place(src)
        m = m if label is None else m[m["label"] == label]
        if m.empty:
            raise LabError(f"dataset {src_name!r} has no {label or ''} clips".replace("  ", " "))
        m = _take(m, cap, seed).copy()
        m["source_dataset"] = src_name
        frames.append(m)
        sources.append({"dataset": src_name, "label": label or "all", "clips": len(m),
                        "licence": src.info.get("licence", src.info.get("license", ""))})  # fmt: skip
    out = pd.concat(frames, ignore_index=True)
    for col, what in (("clip_id", "clip id"), ("group_id", "group id")):
        owners = out.groupby(col)["source_dataset"].nunique()
        shared = owners.index[owners > 1]
        if len(shared):
            raise LabError(f"{what} {shared[0]!r} occurs in more than one of the datasets; rename before merging")
    info = {"kind": "merged", "description": "merged: " + " + ".join(f"{s['dataset']} ({s['label']})" for s in sources),
            "sources": sources, "seed": seed}  # fmt: skip
    with atomic.building_dir(root) as tmp:
        save_dataset(tmp, out, info)
    return load_dataset(name)
