"""Fit a calibrator on dev, judge it on test: the numbers the Calibration page and CLI show.

Why a module of its own: the rule "fit on dev, apply to test" is easy to break by hand (the
seed picked its temperature and threshold on test). Here the fit only ever sees `dev`, and a
warning is raised whenever dev and test are the same clips.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.analysis import calibration, metrics
from core.decision import sigmoid

MIN_BIN_CLIPS = 20


@dataclass
class CalibrationReport:
    method: str
    params: dict[str, Any]
    table: pd.DataFrame  # one row per (split, stage) with every metric
    warnings: list[str] = field(default_factory=list)


def same_clips(dev: pd.DataFrame, test: pd.DataFrame) -> bool:
    """True when the two tables share clips: a calibrator fitted on one flatters the other."""
    return bool(set(dev["clip_id"]) & set(test["clip_id"]))


def fit(dev: pd.DataFrame, method: str = "temperature"):
    """A calibrator of `method` fitted on the dev table's log-odds and labels."""
    return calibration.make_calibrator(method).fit(dev["logit"].to_numpy(float), (dev["label"] == "speech").to_numpy())


def apply(table: pd.DataFrame, calibrator) -> pd.DataFrame:
    """The table with `logit_calibrated` and `p_calibrated` columns added (nothing else changes)."""
    z = calibrator.transform(table["logit"].to_numpy(float))
    return table.assign(logit_calibrated=z, p_calibrated=sigmoid(z))


def report(
    dev: pd.DataFrame,
    test: pd.DataFrame,
    method: str = "temperature",
    n_bins: int = 10,
    strategy: str = "uniform",
    min_bin_clips: int = MIN_BIN_CLIPS,
) -> tuple[CalibrationReport, pd.DataFrame, pd.DataFrame]:
    """Fit on dev, metrics before/after on dev and test; returns (report, dev, test) calibrated.

    `ece` uses equal-width bins and `ece_quantile` equal-mass bins, both with `n_bins`;
    `strategy` picks the binning the too-few-clips warning looks at (the diagram's).
    """
    cal = fit(dev, method)
    dev_c, test_c = apply(dev, cal), apply(test, cal)
    rows, warnings = [], []
    if getattr(cal, "bound_note", ""):
        warnings.append(cal.bound_note)
    warnings += [w for w in (metrics.one_class_note(t["label"].to_numpy(), f"the {n} table") for n, t in
                             (("dev", dev), ("test", test))) if w]  # fmt: skip
    if same_clips(dev, test):
        warnings.append(
            f"the calibrator was fitted on clips it is judged on ({len(set(dev['clip_id']) & set(test['clip_id']))} "
            "shared): the 'after' figures on test are optimistic. Fit on a dev split."
        )
    for name, t in (("dev", dev_c), ("test", test_c)):
        labels = t["label"].to_numpy()
        for stage, col in (("before", "logit"), ("after", "logit_calibrated")):
            m = metrics.summary(labels, t[col].to_numpy(float), n_bins=n_bins)
            rows.append({"split": name, "stage": stage, **m})
        rel = calibration.reliability(labels == "speech", t["p_calibrated"].to_numpy(), n_bins, strategy)
        few = rel[rel["count"] < min_bin_clips]
        if len(few):
            warnings.append(
                f"{name}: {len(few)} of {len(rel)} bins hold fewer than {min_bin_clips} clips; "
                "their distance from the diagonal is mostly noise"
            )
    table = pd.DataFrame(rows)
    return CalibrationReport(method, calibration.describe(cal), table, warnings), dev_c, test_c


def reliability_frame(table: pd.DataFrame, column: str, n_bins: int, strategy: str, **kw) -> pd.DataFrame:
    """Reliability bins with Wilson bands for one probability column of a predictions table."""
    return calibration.reliability_bands(
        (table["label"] == "speech").to_numpy(), table[column].to_numpy(float), n_bins, strategy, **kw
    )


def as_json(rep: CalibrationReport) -> dict[str, Any]:
    return {
        "method": rep.method,
        "params": rep.params,
        "warnings": rep.warnings,
        "metrics": rep.table.replace({np.nan: None}).to_dict(orient="records"),
    }
