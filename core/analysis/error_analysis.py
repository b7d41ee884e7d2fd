"""Per-clip error analysis across runs and seeds: which clips are wrong, how often, how confidently.

Why: one accuracy figure cannot say whether errors are random (different clips per seed) or
systematic (the same clips every time: label noise, leakage, a hard condition). A clip wrong
in most runs, or wrong with a large |logit|, is where to listen first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.decision import correct, sigmoid
from core.errors import LabError

SKIP = {"logit_A", "logit_B", "logit", "p_speech", "detector", "adapter", "seed", "prompt"}


def per_clip(
    tables: dict[str, pd.DataFrame],
    threshold: float = 0.0,
    temperatures: dict[str, float] | None = None,
    decision_temperature: float = 1.0,
) -> pd.DataFrame:
    """One row per clip scored by every table: conditions, then per run its logit, calibrated p and correctness.

    Adds `runs`, `runs_wrong`, `frac_wrong` and `mean_abs_logit_wrong` (the mean confidence of the
    wrong answers, |logit / T − threshold|). Decisions are `logit / decision_temperature > threshold`
    (`core.decision.decide`, the rule of the Thresholds page); `temperatures` (per table, default 1)
    only change the probabilities shown.
    """
    if not tables:
        raise LabError("choose at least one predictions table")
    names = list(tables)
    first = tables[names[0]]
    conds = [c for c in first.columns if c not in SKIP]
    wide = first[conds].copy()
    for name in names[1:]:
        wide = wide.merge(tables[name][["clip_id", "label"]], on=["clip_id", "label"], how="inner")
    if wide.empty:
        raise LabError("the chosen tables share no clip (with the same label): pick tables scored on the same clips")
    right, abs_wrong, cols = [], [], {}
    for name in names:
        t = tables[name].set_index("clip_id").loc[wide["clip_id"]]
        z = t["logit"].to_numpy(float)
        ok = correct(wide["label"], z, threshold, decision_temperature)
        cols[f"logit · {name}"] = z
        cols[f"p · {name}"] = sigmoid(z / (temperatures or {}).get(name, 1.0))
        cols[f"correct · {name}"] = ok
        right.append(ok)
        abs_wrong.append(np.where(ok, np.nan, np.abs(z / decision_temperature - threshold)))
    c = np.stack(right, axis=1)
    w = np.stack(abs_wrong, axis=1)
    n_wrong = (~c).sum(axis=1)
    cols["runs"] = np.full(len(wide), len(names))
    cols["runs_wrong"] = n_wrong
    cols["frac_wrong"] = n_wrong / len(names)
    cols["mean_abs_logit_wrong"] = np.where(n_wrong > 0, np.nansum(w, axis=1) / np.maximum(n_wrong, 1), np.nan)
    wide = pd.concat([wide.reset_index(drop=True), pd.DataFrame(cols)], axis=1)
    return wide


def clean_source(manifest: pd.DataFrame, info: dict, clip_id: str) -> tuple[str | None, str | None]:
    """(dataset, clip id) of the clean clip that `clip_id` was made from; (None, None) if none.

    Why: hearing the clean original beside a noisy or shortened error tells a hard condition
    from a bad clip. A condition set records its source dataset and each clip's
    `source_clip_id`; inside one dataset the source is the longest clean member (no SNR) of
    the clip's base family. The dataset is None when it is the same dataset.
    """
    rows = manifest[manifest["clip_id"] == clip_id]
    if rows.empty:
        raise LabError(f"clip {clip_id!r} is not in this dataset's manifest")
    row = rows.iloc[0]
    source = info.get("source") or {}
    if "source_clip_id" in manifest and isinstance(row.get("source_clip_id"), str) and source.get("dataset"):
        return source["dataset"], row["source_clip_id"]
    family = manifest[(manifest["base_clip_id"] == row["base_clip_id"]) & manifest["snr_db"].isna()]
    family = family.sort_values("duration_ms", ascending=False, kind="stable")
    if family.empty or family.iloc[0]["clip_id"] == clip_id:
        return None, None
    return None, family.iloc[0]["clip_id"]


def consistently_wrong(wide: pd.DataFrame, min_frac: float = 0.5) -> pd.DataFrame:
    """Clips wrong in at least `min_frac` of the runs, most often wrong first, then most confidently wrong."""
    hit = wide[wide["frac_wrong"] >= min_frac]
    return hit.sort_values(["frac_wrong", "mean_abs_logit_wrong", "clip_id"], ascending=[False, False, True])


def confident_errors(
    wide: pd.DataFrame, run: str, min_abs_logit: float = 3.0, threshold: float = 0.0, temperature: float = 1.0
) -> pd.DataFrame:
    """Clips one run got wrong with |logit / T − threshold| ≥ `min_abs_logit`, most confident first.

    The distance is measured where the decision is made (`logit / T > threshold`, the rule
    `per_clip` decided `correct` with), so a temperature that softens every logit also lowers
    how confident an error counts.
    """
    z = wide[f"logit · {run}"]
    wrong = ~wide[f"correct · {run}"]
    conf = (z / temperature - threshold).abs()
    return wide[wrong & (conf >= min_abs_logit)].assign(confidence=conf).sort_values("confidence", ascending=False)


def error_rates(wide: pd.DataFrame, rows: str, cols: str) -> pd.DataFrame:
    """Mean fraction wrong per (rows × cols) cell, e.g. group × duration: systematic errors show as hot cells."""
    t = wide.assign(**{c: wide[c].astype(object).where(wide[c].notna(), "clean") for c in (rows, cols)})
    return t.pivot_table(index=rows, columns=cols, values="frac_wrong", aggfunc="mean")


def filter_clips(
    wide: pd.DataFrame,
    *,
    misclassified_in: str | None = None,
    labels: list[str] | None = None,
    groups: list[str] | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
    confidence: tuple[float, float] | None = None,
    run: str | None = None,
    include_clean: bool = True,
) -> pd.DataFrame:
    """The rows matching every filter.

    misclassified_in: a run name (wrong in that run) or "any" (wrong in at least one run).
    ranges: column → (low, high) inclusive; rows with NaN there (clean clips for snr_db) are kept
    when `include_clean`. confidence: (low, high) on p(speech) of `run`.
    """
    keep = np.ones(len(wide), bool)
    if misclassified_in == "any":
        keep &= wide["runs_wrong"].to_numpy() > 0
    elif misclassified_in:
        keep &= ~wide[f"correct · {misclassified_in}"].to_numpy(bool)
    if labels:
        keep &= wide["label"].isin(labels).to_numpy()
    if groups:
        keep &= wide["group_id"].isin(groups).to_numpy()
    for col, (lo, hi) in (ranges or {}).items():
        v = wide[col].to_numpy(float)
        inside = (v >= lo) & (v <= hi)
        keep &= inside | (np.isnan(v) & include_clean)
    if confidence and run:
        p = wide[f"p · {run}"].to_numpy(float)
        keep &= (p >= confidence[0]) & (p <= confidence[1])
    return wide[keep]
