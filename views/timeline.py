"""Timeline: long recordings scored over time; thresholds moved live; misses and false alarms heard."""

from dataclasses import asdict

import numpy as np
import streamlit as st

from core.errors import LabError
from core.longform import curves as curve_tables
from core.longform.dataset import list_longform, load_longform
from core.longform.evaluation import (
    all_events,
    event_line,
    event_summary,
    hypotheses,
    misses_and_false_alarms,
    paired_difference,
    per_recording,
    summarise,
)
from core.longform.postprocess import Binarize
from core.longform.segments import rttm_text, segments_table
from core.longform.tuning import OBJECTIVES, tune
from core.runs import jobs
from ui.job_status import command, jobs_panel
from ui.timeline_plot import envelope, timeline

st.title("Timeline")
st.caption(
    "Where is the speech in a long recording, and how much does a detector miss or invent? Score a part's "
    "recordings over time, **tune the onset/offset rule on dev**, apply it to test unchanged, and listen to "
    "every miss and false alarm. Error rates are pyannote.metrics' detection error: (miss + false alarm) / "
    "reference speech."
)

CONTEXT_S = 0.5  # heard before and after a miss or false alarm
VAD = ("silero-vad", "webrtc-vad")


@st.cache_resource(show_spinner=False, max_entries=4)
def _set(name: str, mtime: float):
    return load_longform(name)


@st.cache_resource(show_spinner=False, max_entries=8)
def _table(path: str, mtime: float):
    table, meta = curve_tables.load_curves(path)
    lf = _set(meta["longform"], _mtime_set(meta["longform"]))
    return curve_tables.curves_of(table, meta, {r: lf.duration(r) for r in lf.ids()}), meta


@st.cache_resource(show_spinner=False, max_entries=4)
def _audio(name: str, mtime: float, rec: str) -> np.ndarray:
    return _set(name, mtime).load(rec)


@st.cache_data(show_spinner=False, max_entries=8)
def _envelope(name: str, mtime: float, rec: str):
    return envelope(_audio(name, mtime, rec), 16000)


def _mtime_set(name: str) -> float:
    from core.longform.dataset import longform_dir

    return (longform_dir() / name / "recordings.csv").stat().st_mtime


def _offer_build() -> None:
    from core.data.datasets import list_datasets, load_dataset
    from core.longform.assemble import build_longform

    st.info(
        "No long-form set yet: build the embedded one first (the button below). It is assembled from the clip dataset's split parts (speech and "
        "non-speech laid end to end with gaps, noise beds at several SNRs, some speech over music), with the "
        "exact reference, in seconds. `python -m core longform import` brings your own (RTTM, CSV or Lhotse)."
    )
    names = list_datasets()
    source = "voices" if "voices" in names else "default"
    if st.button(f"Build the embedded long-form set from '{source}'", type="primary", key="tl_build"):
        bar = st.progress(0.0, text="starting…")
        try:
            if source not in names:
                from core.data.default_dataset import build_default

                build_default(progress=lambda f, m: bar.progress(f * 0.5, text=m))
            ds = load_dataset(source)
            from core.data.splits import list_splits

            split = "default" if "default" in list_splits(ds) else None
            build_longform(ds, split, f"{source}-long", progress=lambda f, m: bar.progress(f, text=m))
        except LabError as exc:
            st.error(str(exc))
            st.stop()
        st.rerun()


sets = list_longform()
if not sets:
    _offer_build()
    st.stop()
set_name = st.selectbox("Long-form set", sets, key="tl_set")
lf = _set(set_name, _mtime_set(set_name))
by = lf.recordings.groupby("part")["duration_s"].agg(["count", "sum"])
st.caption(
    " · ".join(f"{p}: {int(r['count'])} recordings, {r['sum'] / 60:.1f} min" for p, r in by.iterrows())
    + f" · split by {lf.info.get('group_by', 'source group')}"
)

# ---------------------------------------------------------------- scoring over time (a background job)
with st.expander("Score recordings over time", expanded=not curve_tables.list_curves(set_name)):
    from core.detectors import DETECTORS, REGISTRY

    with st.form("tl_score", enter_to_submit=False):
        c = st.columns([2, 1, 1, 1])
        offline = [d for d in sorted(DETECTORS) if REGISTRY[d].offline]
        detector = c[0].selectbox("Detector", offline, index=offline.index("silero-vad"), key="tl_detector")
        part = c[1].selectbox("Part", ["dev", "test", "train", "all"], key="tl_part")
        window = c[2].number_input("Window (s)", 0.1, 30.0, 2.0, 0.5, key="tl_window",
                                   help="clip detectors slide a window; Silero and WebRTC use their own frames")  # fmt: skip
        hop = c[3].number_input("Hop (s)", 0.05, 30.0, 1.0, 0.5, key="tl_hop")
        native = st.checkbox("Silero / WebRTC: native frames (32 / 30 ms)", True, key="tl_native")
        go_score = st.form_submit_button("Start scoring", type="primary")
    args = ["longform", "score", f"--set={set_name}", f"--part={part}", f"--detector={detector}"]
    if not (native and detector in VAD):
        args += [f"--window={window:g}", f"--hop={hop:g}"]
    if go_score:
        if hop > window:
            st.error(f"a hop of {hop:g} s longer than the {window:g} s window would leave audio unscored")
        else:
            jobs.launch("longform", args, label=f"{detector} over {set_name}/{part}")
            st.toast(f"scoring {set_name}/{part} with {detector}")
    command("python -m core " + " ".join(args))


@st.fragment(run_every=1.0)
def _jobs() -> None:
    jobs_panel("longform", "tl", title="Scoring jobs")


_jobs()

tables = curve_tables.list_curves(set_name)
if not tables:
    st.info("No curve table for this set yet: score its dev and test parts above.")
    st.stop()
metas = {p.stem: curve_tables.read_meta(p) for p in tables}


def _label(stem: str) -> str:
    m = metas[stem]
    how = "frames" if m.get("native") else f"{m.get('window')} s / {m.get('hop')} s"
    return f"{m.get('detector')} · {m.get('part')} · {how} · {stem}"


chosen = st.multiselect("Curve tables (the same part; up to 3)", list(metas), default=list(metas)[:1],
                        format_func=_label, max_selections=3, key="tl_tables")  # fmt: skip
if not chosen:
    st.stop()
loaded = {s: _table(str(curve_tables.resolve(s)), curve_tables.resolve(s).stat().st_mtime) for s in chosen}
first_meta = loaded[chosen[0]][1]

# ---------------------------------------------------------------- the rule: tuned on dev, or moved by hand
st.subheader("Post-processing")
dev_of = next((s for s, m in metas.items() if m.get("part") == "dev" and m.get("detector") == first_meta["detector"]
               and m.get("window") == first_meta.get("window") and m.get("hop") == first_meta.get("hop")), None)  # fmt: skip
c = st.columns([2, 1, 1, 1])
objective = c[0].selectbox("Objective for tuning", OBJECTIVES, key="tl_objective",
                           format_func={"error_rate": "detection error rate", "f1": "F1 of speech time",
                                        "miss_at_fa": "miss at a false-alarm budget"}.get)  # fmt: skip
collar = c[1].number_input("Collar (s)", 0.0, 2.0, 0.25, 0.05, key="tl_collar", help="total width, half each side")
skip_overlap = c[2].checkbox("Skip overlap", False, key="tl_skip_overlap")
cluster = c[3].selectbox("Intervals clustered by", ["recording", "group"], key="tl_cluster")
fa_budget = 0.05
if objective == "miss_at_fa":
    fa_budget = c[0].number_input("False-alarm budget (false alarm / reference speech)", 0.0, 1.0, 0.05, 0.01,
                                  key="tl_fa_budget")  # fmt: skip
if dev_of and c[0].button(f"Tune on dev ({dev_of})", key="tl_tune"):
    dev_curves, _ = _table(str(curve_tables.resolve(dev_of)), curve_tables.resolve(dev_of).stat().st_mtime)
    with st.spinner("searching the rule grid on dev…"):
        rule, _ = tune(dev_curves, {r: lf.reference(r) for r in dev_curves}, objective=objective, collar=collar,
                       skip_overlap=skip_overlap, fa_budget=fa_budget)  # fmt: skip
    for k, v in asdict(rule).items():
        st.session_state[f"tl_{k}"] = float(v)
    st.session_state["tl_tuned_on"] = dev_of
elif not dev_of:
    c[0].caption("No dev curve table of this detector and window: score the dev part to tune on it.")
if st.session_state.get("tl_tuned_on"):
    st.caption(f"Rule tuned on {st.session_state['tl_tuned_on']} for {objective}; applied here unchanged.")

for k, v in asdict(Binarize()).items():  # defaults once; the tuner and the sliders then share the values
    st.session_state.setdefault(f"tl_{k}", float(v))
s = st.columns(6)
onset = s[0].slider("Onset", 0.0, 1.0, step=0.01, key="tl_onset")
offset = s[1].slider("Offset", 0.0, 1.0, step=0.01, key="tl_offset", help="≤ onset (hysteresis)")
min_speech = s[2].slider("Min speech (s)", 0.0, 2.0, step=0.05, key="tl_min_speech")
min_silence = s[3].slider("Min silence (s)", 0.0, 2.0, step=0.05, key="tl_min_silence")
pad_onset = s[4].slider("Pad before (s)", 0.0, 1.0, step=0.05, key="tl_pad_onset")
pad_offset = s[5].slider("Pad after (s)", 0.0, 1.0, step=0.05, key="tl_pad_offset")
try:
    rule = Binarize(onset, min(offset, onset), min_speech, min_silence, pad_onset, pad_offset)
except LabError as exc:
    st.error(str(exc))
    st.stop()
if offset > onset:
    st.caption(f"Offset {offset:.2f} is above the onset: used as {onset:.2f}.")

# ---------------------------------------------------------------- figures over every recording of the tables
results = {}
for stem in chosen:
    curves, meta = loaded[stem]
    hyp = hypotheses(curves, rule)
    per = per_recording(lf, hyp, collar=collar, skip_overlap=skip_overlap)
    results[stem] = (curves, meta, hyp, per, summarise(per, cluster))
cols = st.columns(len(chosen))
for col, stem in zip(cols, chosen):
    *_, summ = results[stem]
    e, p, r = summ.error_rate, summ.precision, summ.recall
    col.markdown(f"**{metas[stem].get('detector')}** · {metas[stem].get('part')} · {summ.n_recordings} recordings")
    col.metric("Detection error rate", f"{e[0]:.3f}", help=f"95% interval [{e[1]:.3f}, {e[2]:.3f}], "
               f"{summ.n_clusters} clusters by {cluster}")  # fmt: skip
    col.caption(f"95% interval [{e[1]:.3f}, {e[2]:.3f}] · miss {summ.miss_rate:.3f} · false alarm "
                f"{summ.false_alarm_rate:.3f} · precision {p[0]:.3f} · recall {r[0]:.3f} · F1 {summ.f1:.3f}")  # fmt: skip
    col.caption(event_line(event_summary(all_events(lf, results[stem][2]))))
if len(chosen) >= 2:
    a, b = chosen[:2]
    try:
        d = paired_difference(results[a][3], results[b][3], cluster)
        na, nb = metas[a].get("detector"), metas[b].get("detector")
        st.info(f"{na} − {nb}: error rate {d.diff:+.3f} [{d.lo:+.3f}, {d.hi:+.3f}] over {d.n_recordings} "
                f"recordings ({d.n_clusters} clusters). {d.verdict(na, nb)}")  # fmt: skip
    except LabError as exc:
        st.warning(str(exc))

# ---------------------------------------------------------------- one recording
recs = list(results[chosen[0]][0])
rec = st.selectbox("Recording", recs, key="tl_recording",
                   format_func=lambda r: f"{r} ({lf.duration(r) / 60:.1f} min)")  # fmt: skip
x = _audio(set_name, _mtime_set(set_name), rec)
ref = lf.speech(rec)
errs = misses_and_false_alarms(ref, results[chosen[0]][2].get(rec, np.zeros((0, 2))), lf.duration(rec))
row = results[chosen[0]][3].set_index("recording_id").loc[rec]
st.caption(f"This recording ({metas[chosen[0]].get('detector')}): error rate {row['error_rate']:.3f}, "
           f"miss {row['miss']:.1f} s, false alarm {row['false_alarm']:.1f} s of {row['total']:.1f} s speech")  # fmt: skip
traces = [(metas[s].get("detector"), results[s][0][rec].values, results[s][0][rec].step, results[s][2][rec])
          for s in chosen if rec in results[s][0]]  # fmt: skip
env = _envelope(set_name, _mtime_set(set_name), rec)
st.plotly_chart(timeline(env, ref, traces, onset, rule.offset, errs), key="tl_figure")
if st.checkbox("Spectrogram", False, key="tl_spec"):
    from ui.plots import spectrogram

    st.plotly_chart(spectrogram(x[: 16000 * 600], 16000, "first 10 minutes" if len(x) > 16000 * 600 else ""))

st.subheader("Misses and false alarms, longest first")
if errs.empty:
    st.success("No miss and no false alarm in this recording under this rule.")
else:
    shown = errs.head(200).assign(start=lambda d: d["start"].round(2), end=lambda d: d["end"].round(2),
                                  seconds=lambda d: d["seconds"].round(2))  # fmt: skip
    st.dataframe(shown, hide_index=True, key="tl_errors")
    pick = st.selectbox("Play", range(len(shown)), key="tl_play",
                        format_func=lambda i: f"{shown['kind'][i]} {shown['start'][i]:.2f}–{shown['end'][i]:.2f} s "
                        f"({shown['seconds'][i]:.2f} s)")  # fmt: skip
    a = max(0.0, float(errs["start"][pick]) - CONTEXT_S)
    b = min(lf.duration(rec), float(errs["end"][pick]) + CONTEXT_S)
    st.audio(x[int(a * 16000) : int(b * 16000)], sample_rate=16000)
    st.caption(f"{a:.2f}–{b:.2f} s: the {errs['kind'][pick]} with {CONTEXT_S:g} s of context on each side.")

st.subheader("Export")
hyp_all = results[chosen[0]][2]
e = st.columns(3)
e[0].download_button("Hypothesis segments (RTTM)", rttm_text(hyp_all), file_name=f"{chosen[0]}.rttm", key="tl_rttm")
e[1].download_button("Hypothesis segments (CSV)",
                     segments_table(hyp_all).to_csv(index=False),
                     file_name=f"{chosen[0]}.csv", key="tl_csv")  # fmt: skip
e[2].download_button("Per-recording figures (CSV)", results[chosen[0]][3].to_csv(index=False),
                     file_name=f"{chosen[0]}-per-recording.csv", key="tl_per")  # fmt: skip
