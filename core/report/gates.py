"""Study gates: exit criteria written before scaling up ("speech recall ≥ 50 %, ECE < 0.2, zero
leakage, seed spread under 3 points"), saved with the study (dataset + split) and judged on its
test tables with their uncertainty.

Why three verdicts: a figure is not a fact. A gate passes only when its whole 95% interval lies on
the right side of the bound, fails when the whole interval lies on the wrong side, and is
*undecided* when the interval straddles the bound: more groups (or seeds) are needed to know.
Intervals are clustered by group (speaker/source) as everywhere in the lab; ECE's is a cluster
bootstrap; the seed spread and the leakage count are exact.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core import atomic
from core.errors import LabError

METRICS = {
    "balanced_accuracy": "balanced accuracy on test",
    "recall_speech": "speech recall on test",
    "recall_nonspeech": "non-speech recall on test",
    "ece": "ECE on test (10 bins)",
    "seed_spread": "spread of test balanced accuracy over seeds (max − min)",
    "leakage": "leakage findings in the split's audit",
}
OPS = (">=", "<=")


@dataclass(frozen=True)
class Gate:
    """One exit criterion: `metric` `op` `bound`, for one detector (by its name in the tables) or all."""

    metric: str
    op: str
    bound: float
    detector: str = ""  # "" = every detector with a test table (seed_spread: every run setting)

    def check(self) -> Gate:
        if self.metric not in METRICS:
            raise LabError(f"a gate's metric is one of {', '.join(METRICS)}, not {self.metric!r}")
        if self.op not in OPS:
            raise LabError(f"a gate's comparison is >= or <=, not {self.op!r}")
        if not np.isfinite(self.bound):
            raise LabError(f"a gate's bound must be a number, got {self.bound}")
        return self

    def text(self) -> str:
        who = f" ({self.detector})" if self.detector else ""
        return f"{METRICS[self.metric]}{who} {'≥' if self.op == '>=' else '≤'} {self.bound:g}"


def gates_path(dataset: str, split: str) -> Path:
    from core.names import check_name
    from core.paths import results_root

    return results_root() / "studies" / f"{check_name(dataset, 'dataset')}-{check_name(split, 'split')}" / "gates.json"


def load_gates(dataset: str, split: str) -> list[Gate]:
    p = gates_path(dataset, split)
    if not p.exists():
        return []
    rows = atomic.read_json_object(p, "gates file", LabError).get("gates", [])
    try:
        return [Gate(**g).check() for g in rows]
    except TypeError as exc:
        raise LabError(f"{p}: a gate has unknown or missing fields ({exc})") from exc


def save_gates(dataset: str, split: str, gates: list[Gate]) -> Path:
    """Replace the study's gates (the file is written whole, then renamed)."""
    return atomic.write_json(gates_path(dataset, split), {"gates": [asdict(g.check()) for g in gates]})


def verdict(op: str, bound: float, lo: float, hi: float) -> str:
    """pass / fail / undecided for an interval [lo, hi] against `op bound`."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "undecided"
    good_lo, good_hi = (lo >= bound, hi >= bound) if op == ">=" else (hi <= bound, lo <= bound)
    return "pass" if good_lo else ("fail" if not good_hi else "undecided")


def _ece_ci(y: np.ndarray, p: np.ndarray, groups: np.ndarray, reps: int = 300, seed: int = 0):
    """ECE with a 95% cluster-bootstrap percentile interval (groups resampled with replacement). ECE
    is biased upwards in small samples, and so are its resamples: the interval errs towards failing
    an "ECE ≤ bound" gate, never towards passing it."""
    from core.analysis.calibration import ece

    est = ece(y, p)
    codes = np.unique(groups, return_inverse=True)[1]
    members = [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(reps):
        idx = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        boots.append(ece(y[idx], p[idx]))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return est, float(lo), float(hi)


def measure(metric: str, table: pd.DataFrame) -> tuple[float, float, float]:
    """(estimate, lower, upper) of a per-table metric on a test table."""
    from core.analysis.stats import balanced_accuracy_ci, clustered_accuracy_ci
    from core.decision import correct

    y = table["label"].to_numpy()
    ok = np.asarray(correct(y, table["logit"]), bool)
    g = table["group_id"].to_numpy()
    if metric == "balanced_accuracy":
        return balanced_accuracy_ci(y, ok, g)
    if metric in ("recall_speech", "recall_nonspeech"):
        m = y == metric.removeprefix("recall_")
        if not m.any():
            return float("nan"), float("nan"), float("nan")
        return clustered_accuracy_ci(ok[m], g[m])
    if metric == "ece":
        return _ece_ci((y == "speech").astype(float), table["p_speech"].to_numpy(float), g)
    raise LabError(f"{metric} is not measured on one table")


def seed_spreads(dataset: str, split: str) -> list[tuple[str, float, int]]:
    """(setting label, max − min test balanced accuracy, seeds) per run setting with finished runs."""
    from core.runs import registry

    runs = registry.list_runs()
    if runs.empty:
        return []
    groups: dict[str, list[float]] = {}
    for run_id in runs.loc[runs["state"] == "finished", "run"]:
        cfg = registry.config(run_id)
        if cfg.get("dataset") != dataset or cfg.get("split") != split:
            continue
        res = registry.result(run_id) or {}
        bacc = (res.get("test") or {}).get("balanced_accuracy")
        if bacc is None:
            continue
        key = json.dumps({k: v for k, v in cfg.items() if k not in ("seed", "provenance")}, sort_keys=True, default=str)
        groups.setdefault(key, []).append(float(bacc))
    out = []
    for key, vals in groups.items():
        c = json.loads(key)
        label = f"{c.get('base_model') or 'lab base'} r={c.get('lora_r')} {c.get('targets')} lr={c.get('lr')}"
        out.append((label, float(max(vals) - min(vals)), len(vals)))
    return out


def judge(dataset: str, split: str, gates: list[Gate] | None = None) -> pd.DataFrame:
    """One row per gate and detector (or setting): estimate, interval, verdict and why."""
    from core.data.audit import load_audit, split_status
    from core.data.datasets import load_dataset
    from core.report.listing import scored_tables
    from core.scoring import predictions

    gates = load_gates(dataset, split) if gates is None else gates
    rows = []
    listing = scored_tables(predictions.describe_tables(), dataset, split)
    loaded: dict[str, pd.DataFrame] = {}  # each table read once, however many gates judge it
    for gate in gates:
        base = {"gate": gate.text()}
        if gate.metric == "leakage":
            ds = load_dataset(dataset)
            audit = load_audit(ds, split)
            n = float(sum((audit or {}).get("counts", {}).values())) if audit else float("nan")
            why = "the split has not been audited" if audit is None else f"audit: {split_status(ds, split)}"
            rows.append({**base, "detector": "split", "estimate": n, "lower": n, "upper": n,
                         "verdict": verdict(gate.op, gate.bound, n, n), "note": why})  # fmt: skip
            continue
        if gate.metric == "seed_spread":
            spreads = [s for s in seed_spreads(dataset, split) if gate.detector in ("", s[0])]
            for label, spread, n in spreads:
                v = verdict(gate.op, gate.bound, spread, spread) if n >= 2 else "undecided"
                rows.append({**base, "detector": label, "estimate": spread, "lower": spread, "upper": spread,
                             "verdict": v, "note": f"{n} seed(s)" + ("" if n >= 2 else ": needs at least 2")})  # fmt: skip
            if not spreads:
                rows.append({**base, "detector": "(no finished runs)", "estimate": np.nan, "lower": np.nan,
                             "upper": np.nan, "verdict": "undecided", "note": "train runs with 2+ seeds"})  # fmt: skip
            continue
        matched = 0
        for r in listing.itertuples():
            name = predictions.display_name(r._asdict())
            if gate.detector and gate.detector not in (r.detector, name):
                continue
            if r.path not in loaded:
                loaded[r.path] = predictions.load(r.path)[0]
            table = loaded[r.path]
            est, lo, hi = measure(gate.metric, table)
            matched += 1
            rows.append({**base, "detector": name, "estimate": est, "lower": lo, "upper": hi,
                         "verdict": verdict(gate.op, gate.bound, lo, hi),
                         "note": f"{len(table)} clips, {table['group_id'].nunique()} groups"})  # fmt: skip
        if not matched:
            rows.append({**base, "detector": gate.detector or "(no test table)", "estimate": np.nan, "lower": np.nan,
                         "upper": np.nan, "verdict": "undecided", "note": "no test table to judge"})  # fmt: skip
    return pd.DataFrame(rows, columns=["gate", "detector", "estimate", "lower", "upper", "verdict", "note"])


def gates_section(dataset: str, split: str):
    """The report's first section when the study has gates: each with its interval and verdict."""
    import html

    from core.report.section import Section

    gates = load_gates(dataset, split)
    if not gates:
        return None
    t = judge(dataset, split, gates)
    counts = t["verdict"].value_counts()
    s = Section("Study gates")
    s.text.append(
        f"{counts.get('pass', 0)} pass, {counts.get('fail', 0)} fail, {counts.get('undecided', 0)} undecided. A gate "
        "passes when its whole 95% interval (clustered by group; ECE by cluster bootstrap) lies on the right side of "
        "its bound, fails when the whole interval lies on the wrong side, and is undecided when the interval "
        f"straddles the bound. Written with the study ({html.escape(str(gates_path(dataset, split).name))})."
    )
    s.tables.append(("gates", "Study gates, judged on test", t))
    return s
