"""The honest end of a prompt search: the start and the chosen prompt scored once on dev and on test."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core import atomic
from core.prompts import report
from core.prompts.study_record import StudyConfig, folder, history, prompt_of, result, table_path


def finish(study_id: str, cfg: StudyConfig, ds, detector, should_stop=None) -> dict[str, Any]:
    """The honest end: the start and the best dev prompt, each scored once on the whole dev part and on test.

    The best is chosen on the dev subset before test is read. Judged by the metric the search
    optimised (balanced accuracy): on test, best − start on the same clips with a clustered
    interval; on dev, the clips the search never saw (dev minus its subset). Optimism = the gain
    over the start claimed on the subset minus the gain on test, each paired on its own clips,
    with an interval from the two (independent: dev and test share no group) variances.
    """
    from core.analysis.compare import compare
    from core.analysis.stats import paired_balanced_accuracy_diff
    from core.decision import correct
    from core.scoring import predictions
    from core.scoring.evaluate import evaluate_prompts

    h = history(study_id)
    start = h.iloc[0]
    best = h.sort_values(["score", "id"], ascending=[False, True]).iloc[0]
    prompts = [prompt_of(start), prompt_of(best)]
    tables: dict[str, dict[str, pd.DataFrame]] = {}
    names: dict[str, list[str]] = {}
    for part in ("dev", "test"):
        names[part] = [f"{study_id}-start-{part}", f"{study_id}-best-{part}"]
        paths = evaluate_prompts(
            ds, cfg.split, part, detector, prompts, names=names[part], should_stop=should_stop,
            extra={"prompt_study": study_id},
        )  # fmt: skip
        tables[part] = {role: predictions.load(p)[0] for role, p in zip(("start", "best"), paths)}
    tables["subset"] = {
        role: predictions.load(table_path(study_id, row["table"]))[0]
        for role, row in (("start", start), ("best", best))
    }
    subset = set(tables["subset"]["start"]["clip_id"])

    def gain(part: str) -> tuple[float, float, float]:
        """Balanced accuracy of best − start on the same clips of `part`, with its clustered interval."""
        a, b = tables[part]["best"], tables[part]["start"].set_index("clip_id").loc[tables[part]["best"]["clip_id"]]
        labels = a["label"].to_numpy()
        return paired_balanced_accuracy_diff(
            labels, correct(labels, a["logit"].to_numpy(float)), correct(labels, b["logit"].to_numpy(float)),
            a["group_id"].to_numpy(),
        )  # fmt: skip

    c = compare(tables["test"]["best"], tables["test"]["start"], n_boot=2000, seed=cfg.seed)
    (g_sub, sub_lo, sub_hi), (g_test, test_lo, test_hi) = gain("subset"), gain("test")
    half = float(np.hypot((sub_hi - sub_lo) / 2, (test_hi - test_lo) / 2))  # independent halves, in quadrature
    out: dict[str, Any] = {
        "compare_best_vs_start_on_test": c.as_json(),
        "balanced_accuracy_gain_on_test": {"diff": g_test, "ci": [test_lo, test_hi]},
        "balanced_accuracy_gain_on_subset": {"diff": g_sub, "ci": [sub_lo, sub_hi]},
        "optimism": {"diff": g_sub - g_test, "ci": [g_sub - g_test - half, g_sub - g_test + half]},
        "tables": names,
    }
    for role, row in (("start", start), ("best", best)):
        test_score = report.score(tables["test"][role])
        rest = tables["dev"][role][~tables["dev"][role]["clip_id"].isin(subset)]
        out[role] = {
            "id": int(row["id"]),
            "prompt": row["text"],
            "answers": [row["speech"], row["nonspeech"]],
            "dev_subset": float(row["score"]),
            "dev": report.score(rest) if len(rest) and rest["label"].nunique() == 2 else None,
            "dev_clips_unseen": int(len(rest)),
            "test": test_score,
        }
    out["same_prompt"] = bool(int(start["id"]) == int(best["id"]))
    atomic.write_json(folder(study_id) / "result.json", out)
    return result(study_id)  # as saved (JSON types), so callers and the page read the same thing
