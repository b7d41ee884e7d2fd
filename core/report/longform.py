"""The study report's long-form section: each detector's error over time on test, under the rule
tuned on dev, with clustered intervals and paired differences (present when curve tables exist)."""

from __future__ import annotations

import html
import itertools

import pandas as pd

from core.errors import LabError
from core.report.section import Section


def longform_results(collar: float = 0.25) -> list[dict]:
    """Per long-form set and detector with dev and test curve tables (same window and hop): the rule
    tuned on dev (detection error rate, `collar`), applied to test unchanged, with its figures."""
    from dataclasses import asdict

    from core.longform import curves as C
    from core.longform.dataset import list_longform, load_longform
    from core.longform.evaluation import hypotheses, per_recording, summarise
    from core.longform.tuning import tune

    out = []
    for name in list_longform():
        paths = C.list_curves(name)
        if not paths:
            continue
        lf = load_longform(name)
        durations = {r: lf.duration(r) for r in lf.ids()}
        metas = [(p, C.read_meta(p)) for p in paths]
        for p_test, m in metas:
            if m.get("part") != "test":
                continue
            key = (m.get("detector"), m.get("window"), m.get("hop"))
            dev = next((p for p, d in metas if d.get("part") == "dev"
                        and (d.get("detector"), d.get("window"), d.get("hop")) == key), None)  # fmt: skip
            if dev is None:
                continue
            dev_curves = C.curves_of(*C.load_curves(dev), durations)
            rule, _ = tune(dev_curves, {r: lf.reference(r) for r in dev_curves}, collar=collar)
            test_curves = C.curves_of(*C.load_curves(p_test), durations)
            per = per_recording(lf, hypotheses(test_curves, rule), collar=collar)
            out.append({"set": name, "detector": m.get("detector"), "table": p_test.stem, "dev_table": dev.stem,
                        "rule": asdict(rule), "per": per, "summary": summarise(per), "lf": lf})  # fmt: skip
    return out


def longform_section(collar: float = 0.25) -> Section | None:
    """Speech over time: each detector's test error under the rule tuned on dev, and paired differences."""
    from core.longform.evaluation import paired_difference

    results = longform_results(collar)
    if not results:
        return None
    s = Section("Long recordings: speech over time")
    s.text.append(
        f"Each detector's post-processing (onset/offset, minimum speech and silence) was tuned on the dev "
        f"recordings for the detection error rate and applied to test unchanged; collar {collar:g} s; 95% "
        "intervals clustered by recording."
    )
    rows = []
    for r in results:
        sm = r["summary"]
        rows.append({"set": r["set"], "detector": r["detector"], "recordings": sm.n_recordings,
                     "error_rate": sm.error_rate[0], "ci_lower": sm.error_rate[1], "ci_upper": sm.error_rate[2],
                     "miss": sm.miss_rate, "false_alarm": sm.false_alarm_rate, "precision": sm.precision[0],
                     "recall": sm.recall[0], "f1": sm.f1, "onset": r["rule"]["onset"], "offset": r["rule"]["offset"],
                     "min_speech": r["rule"]["min_speech"], "min_silence": r["rule"]["min_silence"],
                     "tuned_on": r["dev_table"]})  # fmt: skip
    s.tables.append(("longform", "Detection error on test recordings (rule tuned on dev)", pd.DataFrame(rows)))
    for a, b in itertools.combinations(results, 2):
        if a["set"] != b["set"]:
            continue
        try:
            d = paired_difference(a["per"], b["per"])
        except LabError as exc:
            s.text.append(html.escape(f"{a['detector']} vs {b['detector']}: {exc}"))
            continue
        s.text.append(html.escape(f"{a['set']}: {a['detector']} − {b['detector']} error rate {d.diff:+.3f} "
                                  f"[{d.lo:+.3f}, {d.hi:+.3f}]; {d.verdict(a['detector'], b['detector'])}"))  # fmt: skip
    return s
