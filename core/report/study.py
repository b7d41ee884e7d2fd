"""The study report: one dataset and split, everything the lab knows about it, in one HTML file.

Why one file: it is what goes to a supervisor or into a supplement, and it must open anywhere
offline (Plotly's script is inlined once). Every table is also written as CSV and LaTeX beside it.
The report reads saved results only; it scores nothing and fits only what is cheap (temperature,
psychometric functions with a small bootstrap).
"""

from __future__ import annotations

import base64
import html
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from core import atomic
from core.errors import LabError
from core.report.listing import MAX_TABLES, scored_tables
from core.report.section import Section
from core.report.tables import to_latex, write_table

# plotly is imported inside functions: importing this module stays cheap


def dataset_section(ds, split: str) -> Section:
    """Clips, groups and labels per part of the split, and what the leakage audit found."""
    from core.data.audit import load_audit
    from core.data.splits import load_split

    s = Section("Dataset and split")
    m = ds.manifest.assign(part=load_split(ds, split).to_numpy())
    parts = (
        m.groupby("part")
        .agg(
            clips=("clip_id", "size"),
            groups=("group_id", "nunique"),
            speech=("label", lambda v: int((v == "speech").sum())),
            nonspeech=("label", lambda v: int((v == "nonspeech").sum())),
        )  # fmt: skip
        .reset_index()
    )
    s.text.append(
        f"Dataset <b>{html.escape(ds.name)}</b>: {len(m)} clips in {m['group_id'].nunique()} groups "
        f"(speaker or source). Split <b>{html.escape(split)}</b> keeps every group in one part."
    )
    s.tables.append(("split_parts", f"Clips and groups per part of split {split}", parts))
    saved = load_audit(ds, split)
    if saved is None:
        s.text.append("<b>Leakage audit: not run</b> on this split; nothing here is known to be speaker-safe.")
        return s
    verdict = "LEAKY" if saved["leaky"] else "clean"
    counts = ", ".join(f"{k}: {v}" for k, v in saved.get("counts", {}).items()) or "no finding across parts"
    s.text.append(f"Leakage audit: <b>{verdict}</b> ({saved.get('n_clips', len(m))} clips; {counts}).")
    for limit in saved.get("settings", {}).get("limits", []):
        s.text.append(f"Limit: {html.escape(str(limit))}")
    findings = pd.DataFrame(saved.get("findings", []))
    if len(findings):
        s.tables.append(("audit_findings", "Leakage audit findings (first 50)", findings.head(50)))
    return s


def runs_section(dataset: str, split: str) -> Section:
    """Fine-tuning runs on this split: settings and final test metrics."""
    from core.runs import registry

    s = Section("Fine-tuning runs")
    runs = registry.list_runs()
    runs = runs[(runs["dataset"] == dataset) & (runs["split"] == split)] if len(runs) else runs
    if runs.empty:
        s.text.append("No fine-tuning runs on this split.")
        return s
    cols = ["run", "sweep", "state", "targets", "r", "alpha", "lr", "seed", "leaky_override"]
    cols += [c for c in runs.columns if c.startswith("test_")]
    s.tables.append(("runs", "Fine-tuning runs: settings and test metrics", runs[cols].reset_index(drop=True)))
    if runs["leaky_override"].any():
        s.text.append("<b>Warning:</b> some runs trained on a split the audit marked leaky (explicit override).")
    return s


def detectors_section(dataset: str, split: str) -> tuple[Section, dict[str, pd.DataFrame]]:
    """Accuracy with intervals clustered by group, and calibration fitted on dev, judged on test."""
    from core.analysis.calibration_report import reliability_frame, report
    from core.analysis.metrics import one_class_note
    from core.analysis.stats import balanced_accuracy_ci
    from core.decision import correct
    from core.report.figures import reliability_diagram
    from core.scoring import predictions

    s = Section("Detectors on test: accuracy and calibration")
    every = predictions.describe_tables()  # read once: the test tables and their dev counterparts come from it
    listing = scored_tables(every, dataset, split)
    loaded: dict[str, pd.DataFrame] = {}
    rows = []
    for r in listing.itertuples():
        table, _ = predictions.load(r.path)
        name = predictions.display_name(r._asdict())
        loaded[name] = table
        if note := one_class_note(table["label"].to_numpy(), f"the test table of {name}"):
            s.text.append(f"<b>Warning:</b> {html.escape(note)}.")
        ok = correct(table["label"], table["logit"])
        est, lo, hi = balanced_accuracy_ci(table["label"].to_numpy(), ok, table["group_id"].to_numpy())
        row = {"detector": name, "clips": len(table), "groups": table["group_id"].nunique(),
               "accuracy": float(ok.mean()), "balanced_accuracy": est, "bacc_ci_lower": lo, "bacc_ci_upper": hi}  # fmt: skip
        dev_name = predictions.counterpart(r.table, "dev", every)
        if dev_name:
            dev, _ = predictions.load(every.set_index("table").at[dev_name, "path"])
            rep, _, test_c = report(dev, table, "temperature")
            before = rep.table[(rep.table["split"] == "test") & (rep.table["stage"] == "before")].iloc[0]
            after = rep.table[(rep.table["split"] == "test") & (rep.table["stage"] == "after")].iloc[0]
            row.update({"T (fitted on dev)": rep.params.get("temperature"), "ece_before": before["ece"],
                        "ece_after": after["ece"], "nll_before": before["nll"], "nll_after": after["nll"]})  # fmt: skip
            if len(s.figures) < 4:
                bins = {
                    stage: reliability_frame(test_c, col, 10, "uniform")
                    for stage, col in (("before", "p_speech"), ("after", "p_calibrated"))
                }
                s.figures.append(reliability_diagram(bins, f"{name}: test, temperature fitted on dev"))
        rows.append(row)
    if not rows:
        s.text.append("No predictions tables on this split's test part: score detectors on the Evaluate page.")
        return s, loaded
    s.text.append(
        "Balanced accuracy with a 95% interval clustered by group (clips of one speaker or source are not "
        "independent). Temperature is fitted on the dev table of the same detector and judged on test; "
        "ECE uses 10 equal-width bins."
    )
    s.tables.append(("detectors", "Detectors on the test part", pd.DataFrame(rows)))
    return s, loaded


def comparisons_section(loaded: dict[str, pd.DataFrame]) -> Section:
    """Every pair of detectors on the clips both scored: difference with clustered CI, McNemar, verdict."""
    from core.analysis.compare import compare, verdict

    s = Section("Comparisons")
    rows, lines = [], []
    for a, b in itertools.combinations(loaded, 2):
        try:
            res = compare(loaded[a], loaded[b], n_boot=500)
        except LabError as exc:
            lines.append(f"{html.escape(a)} vs {html.escape(b)}: {html.escape(str(exc))}")
            continue
        rows.append({"A": a, "B": b, "clips": res.n_clips, "groups": res.n_groups,
                     "accuracy_A": res.accuracy["a"], "accuracy_B": res.accuracy["b"], "A_minus_B": res.diff,
                     "ci_lower (by group)": res.ci_clustered[0], "ci_upper (by group)": res.ci_clustered[1],
                     "mcnemar_exact_p": res.mcnemar["exact"]})  # fmt: skip
        lines.append(html.escape(verdict(res, a, b)))
    if not rows and not lines:
        s.text.append("Fewer than two detectors scored on this split's test part: nothing to compare.")
        return s
    s.text += lines
    if rows:
        s.tables.append(("comparisons", "Paired comparisons on shared clips", pd.DataFrame(rows)))
    return s


def psychometrics_section(dataset: str, n_boot: int = 200) -> Section:
    """Thresholds on condition sets built from this dataset: duration and SNR for 75% correct."""
    from core.analysis import psychometrics as pm
    from core.data.datasets import dataset_info
    from core.report.figures import psychometric_panels
    from core.scoring import predictions

    s = Section("Psychometric thresholds")
    t = predictions.describe_tables()
    derived = {
        name for name in (t["dataset"].unique() if len(t) else [])
        if name and dataset_info(name).get("kind") == "conditions"
        and dataset_info(name).get("source", {}).get("dataset") == dataset
    }  # fmt: skip
    if not derived:
        s.text.append("No scored condition set made from this dataset (Psychometrics page, 'Make a condition set').")
        return s
    chosen = t[t["dataset"].isin(derived)].drop_duplicates(["dataset", "detector", "adapter"]).head(MAX_TABLES)
    summaries = []
    for r in chosen.itertuples():
        table, _ = predictions.load(r.path)
        name = predictions.display_name(r._asdict())
        for axis, by in (("duration_ms", "snr_db"), ("snr_db", "duration_ms")):
            if axis not in table or table[axis].nunique() < 3:
                continue
            strata = (
                table.assign(**{by: table[by].astype(object).where(table[by].notna(), "clean")})
                if by in table
                else table
            )
            fits = pm.fit_table(strata, axis, [by] if by in table else [], n_boot=n_boot)
            summaries.append(pm.summary_rows(fits, name).assign(axis=axis))
            if axis == "snr_db" and len(s.figures) < 3:
                curves, observed = {}, {}
                obs = pm.observed(strata, axis, [by] if by in table else [])
                for stratum, fit, _ in fits:
                    key = str(stratum.get(by, "all"))
                    if fit is not None:
                        x, y = fit.curve()
                        curves[(name, key)] = (x, y, fit.threshold, fit.ci, fit.bound)
                for val, sub in obs.groupby(by) if by in table else [("all", obs)]:
                    observed[(name, str(val))] = sub
                s.figures.append(psychometric_panels(curves, observed, axis, pm.AXES[axis], 0.75))
    if summaries:
        out = pd.concat(summaries, ignore_index=True)
        keep = [c for c in ("detector", "axis", "snr_db", "duration_ms", "result", "threshold", "bound",
                            "ci_lower", "ci_upper", "lapse", "slope_beta", "p_deviance", "clips") if c in out]  # fmt: skip
        s.tables.append(("psychometric_thresholds", "75%-correct thresholds with bootstrap CIs", out[keep]))
        s.text.append(
            f"Thresholds for 75% correct with {n_boot} bootstrap resamples of base clips; each 95% interval reaches "
            "as far as either the expanded percentile or the BCa interval at expanded levels (docs/methods.md gives "
            "their simulated coverage); outside the tested range a threshold is reported as a bound, not extrapolated."
        )
    return s


def worst_clips_section(loaded: dict[str, pd.DataFrame], ds) -> Section:
    """Clips most detectors get wrong, most confidently, with any tags the user gave them."""
    from core.analysis.error_analysis import per_clip
    from core.data import annotations

    s = Section("Worst clips")
    if not loaded:
        s.text.append("No scored tables.")
        return s
    try:
        wide = per_clip(loaded)
    except LabError as exc:
        s.text.append(html.escape(str(exc)))
        return s
    tags = annotations.load(ds).groupby("clip_id")["tag"].agg(", ".join)
    wide = wide.assign(tags=wide["clip_id"].map(tags).astype(object).fillna(""))
    worst = wide[wide["runs_wrong"] > 0].sort_values(["frac_wrong", "mean_abs_logit_wrong"], ascending=False)
    cols = [c for c in ("clip_id", "label", "group_id", "duration_ms", "snr_db", "runs_wrong", "runs",
                        "mean_abs_logit_wrong", "tags") if c in worst]  # fmt: skip
    s.text.append(f"{len(worst)} of {len(wide)} clips are wrong for at least one detector; the 25 worst:")
    s.tables.append(("worst_clips", "Clips wrong for most detectors, most confidently", worst[cols].head(25)))
    return s


def _table_html(name: str, caption: str, df: pd.DataFrame) -> str:
    links = []
    for ext, text, mime in (("csv", df.to_csv(index=False), "text/csv"), ("tex", to_latex(df, caption, f"tab:{name}"),
                                                                          "application/x-tex")):  # fmt: skip
        data = base64.b64encode(text.encode()).decode()
        links.append(f'<a download="{name}.{ext}" href="data:{mime};base64,{data}">{ext.upper()}</a>')
    body = df.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0, classes="t")
    return (f"<figure><figcaption>{html.escape(caption)} · {' · '.join(links)}</figcaption>"
            f"<div class='tw'>{body}</div></figure>")  # fmt: skip


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:0}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table.t{border-collapse:collapse;font-size:.85em;margin:.5em 0}table.t td,table.t th{padding:.2em .6em;
border-bottom:1px solid #eee;text-align:right}table.t th{border-bottom:2px solid #999}
figcaption{font-size:.9em;color:#555}.meta{color:#666}pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em}.tw{overflow-x:auto;max-width:100%}figure{margin:1em 0}"""


def render(title: str, sections: list[Section]) -> str:
    """The HTML document: sections in order, Plotly's script inlined once so it opens offline."""
    import plotly.io as pio

    parts, first = [], True
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        parts += [f"<p>{t}</p>" for t in s.text]
        parts += [_table_html(*t) for t in s.tables]
        for fig in s.figures:
            parts.append(pio.to_html(fig, full_html=False, include_plotlyjs="inline" if first else False))
            first = False
    stamp = time.strftime("%Y-%m-%d %H:%M")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p class='meta'>Speech Detection Lab study report, written {stamp}.</p>{''.join(parts)}</body></html>"
    )


def write_report(
    dataset: str, split: str, out: str | Path | None = None, progress: Callable[[float, str], None] | None = None
) -> Path:
    """Write results/reports/<dataset>-<split>/report.html and its tables (CSV + LaTeX); return the HTML path."""
    from core.data.datasets import load_dataset
    from core.data.splits import list_splits
    from core.paths import results_root

    ds = load_dataset(dataset)
    if split not in list_splits(ds):
        raise LabError(f"dataset {dataset!r} has no split {split!r} (splits: {', '.join(list_splits(ds)) or 'none'})")
    folder = Path(out) if out else results_root() / "reports" / f"{dataset}-{split}"
    say = progress or (lambda f, m: None)
    say(0.0, "gates, dataset and audit")
    from core.report.gates import gates_section
    from core.report.recipe import recipe, recipe_section, script

    sections = [g] if (g := gates_section(dataset, split)) is not None else []
    sections.append(dataset_section(ds, split))
    say(0.15, "runs")
    sections.append(runs_section(dataset, split))
    say(0.25, "detectors and calibration")
    det, loaded = detectors_section(dataset, split)
    sections.append(det)
    say(0.45, "comparisons")
    sections.append(comparisons_section(loaded))
    say(0.6, "psychometric fits")
    sections.append(psychometrics_section(dataset))
    say(0.85, "worst clips")
    sections.append(worst_clips_section(loaded, ds))
    say(0.87, "decide or abstain, label issues")
    from core.report.trust import trust_section

    if (tr := trust_section(dataset, split)) is not None:
        sections.append(tr)
    say(0.9, "long recordings")
    from core.report.longform import longform_section

    if (lf := longform_section()) is not None:
        sections.append(lf)
    sections.append(recipe_section(dataset, split))
    atomic.write_text(folder / "recipe.sh", script(recipe(dataset, split)))
    for s in sections:
        for name, caption, df in s.tables:
            write_table(df, folder / "tables", name, caption)
    path = atomic.write_text(folder / "report.html", render(f"Study: {dataset} / {split}", sections))
    say(1.0, f"wrote {path}")
    return path
