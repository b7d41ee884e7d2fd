"""Relabels: a researcher's verdict on a clip's label, kept beside the manifest, never in it.

Why a layer, not an edit: the manifest is what the importer or recipe produced, and a corrected
label is a judgement someone made on a date after listening. Keeping both lets any split, run or
score use either the original labels or the corrected ones, and say which (its config records the
choice and a fingerprint of the decisions it used). The file is a dated log (relabels.csv): one
row per decision, the latest decision about a clip wins, so a change of mind is history, not a
lost line. A decision is "relabel" (the label becomes `label`) or "dismiss" (the flag was wrong:
the original stands, and the clip need not be looked at again).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pandas as pd

from core import atomic
from core.data.datasets import Dataset
from core.errors import LabError

COLUMNS = ["clip_id", "original", "label", "decision", "note", "created"]
DECISIONS = ("relabel", "dismiss")
LABEL_CHOICES = ("original", "corrected")


def path(ds: Dataset):
    return ds.root / "relabels.csv"


def log(ds: Dataset) -> pd.DataFrame:
    """Every decision ever made on the dataset's labels, oldest first (empty when none)."""
    from core.csvfiles import read_side_table

    return read_side_table(path(ds), "relabels file", COLUMNS)


def current(ds: Dataset) -> pd.DataFrame:
    """The standing decision per clip (the latest one), in the order they were made."""
    t = log(ds)
    return t.drop_duplicates("clip_id", keep="last").reset_index(drop=True)


def decide(ds: Dataset, clip_id: str, decision: str, label: str = "", note: str = "") -> pd.DataFrame:
    """Record a decision on one clip: `relabel` to `label` (speech/nonspeech), or `dismiss` a flag.

    Relabelling a clip to its original label is refused (that is a dismissal). The log is replaced
    atomically, so a crash mid-write leaves the previous log whole."""
    if decision not in DECISIONS:
        raise LabError(f"a decision is one of {DECISIONS}, not {decision!r}")
    original = str(ds.row(clip_id)["label"])  # names the dataset and clip when unknown
    if decision == "relabel":
        if label not in ("speech", "nonspeech"):
            raise LabError(f"relabel {clip_id!r} to speech or nonspeech, not {label!r}")
        if label == original:
            raise LabError(f"{clip_id!r} is already labelled {label!r}: dismiss the flag instead")
    else:
        label = original
    row = {"clip_id": clip_id, "original": original, "label": label, "decision": decision,
           "note": note.strip(), "created": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    t = pd.concat([log(ds), pd.DataFrame([row])], ignore_index=True)
    atomic.write_csv(path(ds), t)
    return t


def relabelled_count(ds: Dataset) -> int:
    """How many clips a standing decision relabels (for a form's hint; never raises on a stale log)."""
    return int((current(ds)["decision"] == "relabel").sum())


def corrected_labels(ds: Dataset) -> pd.Series:
    """clip_id -> corrected label, for the clips whose standing decision is a relabel."""
    c = current(ds)
    c = c[c["decision"] == "relabel"]
    stale = c[c["original"] != c["clip_id"].map(ds.manifest.set_index("clip_id")["label"])]
    if len(stale):
        raise LabError(
            f"relabels.csv of {ds.name!r}: clip {stale['clip_id'].iloc[0]!r} was relabelled from "
            f"{stale['original'].iloc[0]!r}, but the manifest now says otherwise; review the relabels"
        )
    return c.set_index("clip_id")["label"]


def fingerprint(ds: Dataset) -> str:
    """A short hash of the standing relabels: two runs with the same one learnt the same labels."""
    return _digest(corrected_labels(ds))


def _digest(fixed: pd.Series) -> str:
    s = fixed.sort_index()
    return hashlib.sha256("\n".join(f"{k}\t{v}" for k, v in s.items()).encode()).hexdigest()[:12]


def _corrected_provenance(fixed: pd.Series, changed: int) -> dict[str, object]:
    return {"labels": "corrected", "relabels_fingerprint": _digest(fixed), "relabeled_clips": changed}


def apply(clips: pd.DataFrame, ds: Dataset, labels: str = "original") -> pd.DataFrame:
    """`clips` (manifest rows) with `labels` = "original" (unchanged) or "corrected" (the standing
    relabels applied, the original kept in `original_label`). attrs["relabeled"] lists changed ids;
    attrs["label_provenance"] is what a table or run records about them (`provenance`)."""
    if labels not in LABEL_CHOICES:
        raise LabError(f"labels must be one of {LABEL_CHOICES}, not {labels!r}")
    out = clips.copy()
    out.attrs = dict(clips.attrs)
    out.attrs["relabeled"] = []
    out.attrs["label_provenance"] = {"labels": "original"}
    if labels == "original":
        return out
    fixed = corrected_labels(ds)  # relabels.csv read once for the rows and their provenance
    hit = out["clip_id"].isin(fixed.index)
    out["original_label"] = out["label"]
    out.loc[hit, "label"] = out.loc[hit, "clip_id"].map(fixed)
    out.attrs["relabeled"] = sorted(out.loc[hit, "clip_id"])
    out.attrs["label_provenance"] = _corrected_provenance(fixed, int(hit.sum()))
    return out


def provenance(ds: Dataset, labels: str) -> dict[str, object]:
    """What a run records about its labels: the choice, and for corrected labels the fingerprint of
    the relabels and how many clips of the dataset they change (a table's rows: `apply`)."""
    if labels == "original":
        return {"labels": "original"}
    fixed = corrected_labels(ds)
    return _corrected_provenance(fixed, len(fixed))
