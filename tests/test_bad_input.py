"""A permanent corpus of bad input and faults: each case gets a clear message and changes nothing on disk.

Cases cover audio files, manifests, predictions tables, annotations, splits, names, paths typed
into pages and flags, and runs started, resumed or cancelled from two places at once. A case
passes only when the lab raises its own error (a LabError, shown as-is in the CLI and the UI)
whose message matches, and the data and results folders are exactly as they were before.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from core.errors import LabError

SR = 16000


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under `roots` with its size and modification time (what 'unchanged' means here)."""
    out = {}
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for f in files:
                p = Path(dirpath) / f
                if f.endswith(".lock"):
                    continue  # a lock file taken and released is not a change
                st = p.stat()
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def unchanged(data_dir, default_ds):
    """Asserts, after the case, that nothing under the data folder (results included) changed."""
    before = snapshot(data_dir)
    yield
    after = snapshot(data_dir)
    changed = sorted(set(before.items()) ^ set(after.items()))
    assert not changed, f"files changed on disk: {changed[:5]}"


def refused(action, match: str) -> LabError:
    with pytest.raises(LabError, match=match) as err:
        action()
    return err.value


def wav(path: Path, x, sr: int = SR, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(x, dtype=np.float32), sr, subtype=subtype)
    return path


def put(path: Path, data: bytes | str) -> Path:
    """Write `data` to `path` and return the path."""
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def tone(ms: float = 300, sr: int = SR) -> np.ndarray:
    t = np.arange(int(sr * ms / 1000)) / sr
    return 0.3 * np.sin(2 * np.pi * 440 * t)


# ---------------------------------------------------------------- audio files


def _truncated(tmp: Path) -> Path:
    p = wav(tmp / "t.wav", tone(500))
    p.write_bytes(p.read_bytes()[:3000])
    return p


def _nan(tmp: Path) -> Path:
    x = tone(300)
    x[100] = np.nan
    return wav(tmp / "nan.wav", x, subtype="FLOAT")


def _zero_samples(tmp: Path) -> Path:
    p = tmp / "zero.wav"
    sf.write(str(p), np.zeros(0, np.float32), SR)
    return p


AUDIO_CASES = {
    "corrupt bytes": (lambda tmp: put(tmp / "c.wav", os.urandom(2000)), "cannot decode"),
    "truncated wav": (_truncated, "truncated file"),
    "empty file": (lambda tmp: put(tmp / "e.wav", b""), "cannot decode"),
    "zero samples": (_zero_samples, "empty clip"),
    "all zeros": (lambda tmp: wav(tmp / "s.wav", np.zeros(8000)), "silent clip"),
    "NaN samples": (_nan, "NaN or infinite"),
    "one sample": (lambda tmp: wav(tmp / "one.wav", [0.5]), r"0\.1 ms of audio; the lab needs at least 10 ms"),
    "5 ms": (lambda tmp: wav(tmp / "short.wav", tone(5)), "needs at least 10 ms"),
    "text named .wav": (lambda tmp: put(tmp / "x.wav", "hello"), "cannot decode"),
    "folder named .wav": (lambda tmp: (tmp / "d.wav").mkdir() or tmp / "d.wav", "not an audio file"),
    "missing": (lambda tmp: tmp / "nowhere.wav", "file not found"),
}


@pytest.mark.parametrize("case", list(AUDIO_CASES))
def test_bad_audio_is_refused_naming_the_file(tmp_path, case):
    from core.data.audio import load_audio

    make, match = AUDIO_CASES[case]
    path = make(tmp_path)
    err = refused(lambda: load_audio(path), match)
    assert str(path) in str(err)


@pytest.mark.parametrize(
    ("start", "end", "match"),
    [
        (-1.0, None, "start_s = -1.0"),
        (float("nan"), None, "must be a number"),
        (0.2, 0.1, "not after its start"),
        (0.0, float("inf"), "must be a number"),
    ],  # fmt: skip
)
def test_bad_segment_bounds_are_refused(tmp_path, start, end, match):
    from core.data.audio import load_audio

    p = wav(tmp_path / "a.wav", tone(500))
    refused(lambda: load_audio(p, start_s=start, end_s=end), match)


def test_stereo_and_other_rates_are_converted_and_said(tmp_path):
    from core.data.audio import load_audio

    x = tone(300, 8000)
    p = tmp_path / "st.wav"
    sf.write(str(p), np.stack([x, x], 1).astype(np.float32), 8000)
    clip = load_audio(p)
    assert clip.sr == SR and any("downmixed" in n for n in clip.notes) and any("8000 Hz" in n for n in clip.notes)


# ---------------------------------------------------------------- manifests

HEADER = "clip_id,path,label,group_id,base_clip_id"
GOOD = "a,a.wav,speech,g1,a"

MANIFEST_CASES = {
    "empty file": (b"", "empty manifest"),
    "header only": (f"{HEADER}\n".encode(), "header but no rows"),
    "unterminated quote": (
        f'{HEADER}\na,"a.wav,speech,g1,a\nb,b.wav,speech,g1,b\n'.encode(),
        "unterminated quote|malformed",
    ),
    "utf-16": (f"{HEADER}\n{GOOD}\n".encode("utf-16"), "not UTF-8"),
    "latin-1": (f"{HEADER}\n{GOOD}\nb,caf\xe9.wav,speech,g1,b\n".encode("latin-1"), "not UTF-8"),
    "binary": (b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4, "not UTF-8|malformed|field"),
    "missing column": (b"clip_id,path,group_id,base_clip_id\na,a.wav,g1,a\n", "missing required column 'label'"),
    "misspelt column": (b"clip_id,path,lable,group_id,base_clip_id\na,a.wav,speech,g1,a\n", "misspelt"),
    "truncated row": (f"{HEADER}\n{GOOD}\nb,b.wav,speech\n".encode(), r"line 3 has 3 field\(s\), the header has 5"),
    "extra fields": (f"{HEADER}\n{GOOD}\nb,b.wav,speech,g1,b,oops\n".encode(), "line 3 has 6 field"),
    "duplicate ids": (f"{HEADER}\n{GOOD}\n{GOOD}\n".encode(), "duplicate clip_id 'a'"),
    "bad label": (f"{HEADER}\na,a.wav,music,g1,a\n".encode(), "label 'music' is not one of"),
    "a misspelt label on many rows": (
        (f"{HEADER}\n{GOOD}\n" + "".join(f"n{i},n{i}.wav,non-speech,g2,n{i}\n" for i in range(12))).encode(),
        r"lines 3, 4, .*, 12, … \(12 lines\): label 'non-speech' is not one of .* \(did you mean 'nonspeech'\?\)",
    ),
    "empty group": (f"{HEADER}\na,a.wav,speech,,a\n".encode(), "line 2: empty 'group_id'"),
    "snr not a number": (f"{HEADER},snr_db\n{GOOD},ten\n".encode(), "snr_db 'ten' is not a number"),
    "negative start": (f"{HEADER},start_s,end_s\n{GOOD},-1,2\n".encode(), "start_s -1 is negative"),
    "end before start": (f"{HEADER},start_s,end_s\n{GOOD},2,1\n".encode(), "end_s 1 is not after start_s"),
    "zero duration": (f"{HEADER},duration_ms\n{GOOD},0\n".encode(), "duration_ms 0 is not positive"),
    "infinite duration": (f"{HEADER},duration_ms\n{GOOD},inf\n".encode(), "not a finite number"),
}


@pytest.mark.parametrize("case", list(MANIFEST_CASES))
def test_malformed_manifests_are_refused_with_file_and_line(tmp_path, case):
    from core.data.datasets import read_manifest

    content, match = MANIFEST_CASES[case]
    p = tmp_path / "manifest.csv"
    p.write_bytes(content)
    err = refused(lambda: read_manifest(p), match)
    assert str(p) in str(err)


def test_a_manifest_that_is_a_folder_is_refused(tmp_path):
    from core.data.datasets import read_manifest

    (tmp_path / "m.csv").mkdir()
    refused(lambda: read_manifest(tmp_path / "m.csv"), "should be a file")


def test_a_bom_is_accepted(tmp_path):
    from core.data.datasets import read_manifest

    p = tmp_path / "bom.csv"
    p.write_bytes(f"{HEADER}\n{GOOD}\n".encode("utf-8-sig"))
    assert read_manifest(p)["clip_id"].tolist() == ["a"]


def test_a_bad_csv_import_creates_no_dataset(tmp_path, unchanged):
    from core.data.importers import import_dataset

    p = tmp_path / "m.csv"
    p.write_bytes(f"{HEADER}\n{GOOD}\nb,b.wav,speech\n".encode())
    refused(lambda: import_dataset("csv", p, "never-made"), "field")


# ---------------------------------------------------------------- predictions tables


@pytest.fixture
def table_path(tmp_path):
    from core.scoring import predictions

    clips = pd.DataFrame(
        {
            "clip_id": ["a", "b", "c"],
            "label": ["speech", "nonspeech", "speech"],
            "group_id": ["g", "h", "g"],
            "base_clip_id": ["a", "b", "c"],
            "split": "test",
            "duration_ms": 500.0,
            "snr_db": np.nan,
        }
    )
    table = predictions.build_table(clips, np.array([[1.0, 0.0], [0.0, 2.0], [0.5, 0.1]]), detector="x")
    saved = predictions.save(table, {"dataset": "d"}, "badtable", folder=tmp_path)
    # the CSV form (tables written before Parquet, still read) gets the text edits below
    csv = predictions.write_table(saved.with_suffix(".csv"), table)
    saved.unlink()
    return csv


def _edit(path: Path, fn) -> Path:
    path.write_text(fn(path.read_text()))
    return path


PREDICTION_CASES = {
    "missing column": (
        lambda p: _edit(p, lambda t: t.replace("logit_A", "logitA", 1)),
        r"missing column\(s\) \['logit_A'\]",
    ),
    "NaN logit": (
        lambda p: _edit(p, lambda t: t.replace(",1.0,0.0,1.0,", ",nan,0.0,1.0,", 1)),
        "NaN or infinite logits",
    ),
    "text logit": (
        lambda p: _edit(p, lambda t: t.replace(",1.0,0.0,1.0,", ",abc,0.0,1.0,", 1)),
        "logit_A 'abc' is not a number",
    ),
    "interrupted write": (lambda p: _edit(p, lambda t: t[: len(t) - 30]), "field"),
    "rows vs sidecar": (lambda p: _edit(p, lambda t: "\n".join(t.splitlines()[:-1]) + "\n"), "sidecar says 3 clips"),
    "sidecar not JSON": (lambda p: put(p.with_suffix(".json"), "{oops") and p, "sidecar is not readable JSON"),
    "empty file": (lambda p: put(p, ""), "empty predictions table"),
    "duplicate clip": (
        lambda p: _edit(p, lambda t: t.replace("\nb,", "\na,", 1)),
        "clip_id 'a' appears more than once",
    ),
    "unterminated quote": (lambda p: _edit(p, lambda t: t.replace("\nb,", '\n"b,', 1)), "malformed|field"),
    "bad label": (
        lambda p: _edit(p, lambda t: t.replace("nonspeech", "music", 1)),
        "labels must be speech or nonspeech",
    ),
}


@pytest.mark.parametrize("case", list(PREDICTION_CASES))
def test_malformed_predictions_tables_are_refused(table_path, case):
    from core.scoring import predictions

    make, match = PREDICTION_CASES[case]
    make(table_path)
    refused(lambda: predictions.load(table_path), match)


def _parquet_table(tmp_path, edit):
    from core.scoring import predictions

    clips = pd.DataFrame({"clip_id": ["a", "b"], "label": ["speech", "nonspeech"], "group_id": ["g", "h"],
                          "base_clip_id": ["a", "b"], "split": "test", "duration_ms": 500.0, "snr_db": np.nan})  # fmt: skip
    table = predictions.build_table(clips, np.array([[1.0, 0.0], [0.0, 2.0]]), detector="x")
    path = predictions.save(table, {"dataset": "d"}, "pq", folder=tmp_path)
    edit(path, table)
    return path


PARQUET_CASES = {
    "truncated file": (lambda p, t: p.write_bytes(p.read_bytes()[:-40]), "not a readable Parquet table"),
    "not parquet at all": (lambda p, t: p.write_text("clip_id,label\n"), "not a readable Parquet table"),
    "missing column": (lambda p, t: t.drop(columns=["logit_B"]).to_parquet(p), r"missing column\(s\) \['logit_B'\]"),
    "NaN logit": (lambda p, t: t.assign(logit_A=[np.nan, 0.0]).to_parquet(p), "NaN or infinite logits"),
    "rows vs sidecar": (lambda p, t: t.head(1).to_parquet(p), "sidecar says 2 clips"),
    "duplicate clip": (lambda p, t: t.assign(clip_id=["a", "a"]).to_parquet(p), "appears more than once"),
}


@pytest.mark.parametrize("case", list(PARQUET_CASES))
def test_malformed_parquet_tables_are_refused(tmp_path, case):
    from core.scoring import predictions

    edit, match = PARQUET_CASES[case]
    path = _parquet_table(tmp_path, edit)
    refused(lambda: predictions.load(path), match)


# ---------------------------------------------------------------- annotations and splits


def test_a_malformed_annotations_file_is_a_message(default_ds, tmp_path):
    from core.data import annotations

    ds = type(default_ds)(default_ds.name, tmp_path, default_ds.manifest, default_ds.info)
    (tmp_path / "annotations.csv").write_text("clip_id,tag\nx,label wrong\n")
    refused(lambda: annotations.load(ds), r"missing column\(s\) \['note', 'created'\]")
    (tmp_path / "annotations.csv").write_text("clip_id,tag,note,created\nx,label wrong\n")
    refused(lambda: annotations.load(ds), "line 2 has 2 field")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("clip_id,split\nnot-a-clip,test\n", "not in the dataset"),
        ("clip,part\na,test\n", r"missing column"),
        ("", "empty split"),
        ("clip_id,split\n", "header but no rows"),
    ],  # fmt: skip
)
def test_malformed_split_files_are_refused(default_ds, content, match):
    from core.data.splits import load_split, splits_dir

    path = splits_dir(default_ds) / "broken-case.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_text(content)
    try:
        refused(lambda: load_split(default_ds, "broken-case"), match)
    finally:
        path.unlink()


# ---------------------------------------------------------------- names

BAD_NAMES = {
    "slash": "a/b",
    "dot first": ".hidden",
    "dots": "a..b",
    "space": "my data",
    "too long": "x" * 200,
    "empty": "",
    "unicode": "daten-ü",
}


@pytest.mark.parametrize("case", list(BAD_NAMES))
def test_one_naming_rule_for_datasets_splits_and_runs(case, unchanged, default_ds):
    from core.data.datasets import dataset_root
    from core.data.splits import save_split
    from core.names import MAX_LENGTH
    from core.runs import registry
    from core.runs.train_config import TrainConfig

    name = BAD_NAMES[case]
    rule = "at most 64|letters, digits"
    refused(lambda: dataset_root(name), rule)
    refused(lambda: save_split(default_ds, name, default_ds.manifest["label"], {}), rule)
    if name:  # a run without a name gets its id as name
        refused(lambda: registry.create_run(TrainConfig(), name=name), rule)
    assert MAX_LENGTH == 64


@pytest.mark.parametrize(
    ("tag", "match"),
    [("a,b", "cannot contain ','"), ("x" * 100, "at most 64"), ("line\nbreak", "one line"), ("  ", "needs some text")],
)
def test_bad_tags_are_refused(default_ds, unchanged, tag, match):
    from core.data import annotations

    clip = default_ds.manifest["clip_id"].iloc[0]
    refused(lambda: annotations.set_tag(default_ds, clip, tag), match)


def test_cli_refuses_a_bad_table_name_and_a_bad_condition_set_name(default_ds, capsys, unchanged):
    from core.cli import main

    assert main(["conditions", "--split", "x", "--name", "bad name"]) == 2
    assert "invalid dataset name 'bad name'" in capsys.readouterr().err


# ---------------------------------------------------------------- paths


def _not_model(tmp: Path) -> str:
    (tmp / "m").mkdir()
    (tmp / "m" / "weights.bin").write_bytes(b"x")
    return str(tmp / "m")


def _bert(tmp: Path) -> str:
    (tmp / "b").mkdir()
    (tmp / "b" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return str(tmp / "b")


def _bad_json(tmp: Path) -> str:
    (tmp / "j").mkdir()
    (tmp / "j" / "config.json").write_text("{not json")
    return str(tmp / "j")


MODEL_CASES = {
    "folder without config": (_not_model, "not a model folder"),
    "another family": (_bert, "a 'bert' model, not 'qwen2_audio'"),
    "config not JSON": (_bad_json, "not readable JSON"),
    "a file": (lambda tmp: str(put(tmp / "f.bin", b"x")), "a file; a model is a folder"),
    "nowhere": (lambda tmp: str(tmp / "nothing-here"), "neither a local directory nor in the local Hugging Face cache"),
    "blank": (lambda tmp: " ", "give the model"),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_model_paths_are_checked_before_any_job(tmp_path, case, capsys, unchanged):
    from core.cli import main

    make, match = MODEL_CASES[case]
    model = make(tmp_path)
    before = set((Path(os.environ["LAB_DATA_DIR"]) / "results" / "jobs").glob("*"))
    assert main(["evaluate", "--split", "default", "--detector", "audio-llm", f"--model={model}"]) == 2
    assert match in capsys.readouterr().err.replace("\n", " ") or pytest.fail(match)
    assert set((Path(os.environ["LAB_DATA_DIR"]) / "results" / "jobs").glob("*")) == before


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda t: str(t / "none"), "folder not found"),
        (lambda t: (t / "a").mkdir() or str(t / "a"), "no adapter_config.json"),
    ],
)
def test_adapter_paths_are_checked(tmp_path, make, match):
    from core.detectors.checkpoints import require_adapter

    refused(lambda: require_adapter(make(tmp_path)), match)


def test_imports_refuse_system_trees_missing_folders_and_files(tmp_path, unchanged):
    from core.data.importers import import_dataset

    refused(lambda: import_dataset("folder", "/proc", "procdata"), "a system tree")
    refused(lambda: import_dataset("folder", "/sys/class", "sysdata"), "a system tree")
    refused(lambda: import_dataset("folder", tmp_path / "none", "nodata"), "not found")
    (tmp_path / "f.txt").write_text("x")
    refused(lambda: import_dataset("folder", tmp_path / "f.txt", "filedata"), "is a file")
    refused(lambda: import_dataset("csv", tmp_path, "csvdata"), "takes a manifest file, not a folder")


def test_imports_report_what_they_pass_over(tmp_path, data_dir):
    """A symlink loop, a folder named like audio and a stray file are reported, never followed or dropped silently."""
    from core.data.datasets import load_dataset
    from core.data.importers import import_dataset

    root = tmp_path / "corpus"
    wav(root / "speech" / "alice" / "a1.wav", tone(300))
    wav(root / "nonspeech" / "hum" / "h1.wav", tone(300))
    (root / "speech" / "alice" / "loop").symlink_to(root)  # a loop: never followed
    (root / "speech" / "alice" / "folder.wav").mkdir()
    wav(root / "speech" / "stray.wav", tone(300))
    import_dataset("folder", root, "reported")
    skipped = load_dataset("reported").info["skipped"]
    text = "\n".join(skipped)
    assert "folder.wav: a folder named like an audio file" in text
    assert "stray.wav: not in a group folder" in text
    assert len(load_dataset("reported").manifest) == 2


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda t: str(t / "none"), "noise folder .* not found"),
        (lambda t: (t / "e").mkdir() or str(t / "e"), "holds no .wav"),
        (lambda t: "/sys", "a system tree"),
    ],  # fmt: skip
)
def test_noise_folders_are_checked_when_a_run_is_created(tmp_path, make, match, unchanged):
    from core.runs import registry
    from core.runs.train_config import TrainConfig

    refused(lambda: registry.create_run(TrainConfig(noise_dir=make(tmp_path))), match)


# ---------------------------------------------------------------- runs under races


@pytest.fixture(scope="module")
def audited(default_ds):
    from core.data.audit import audit_split
    from core.data.splits import make_split, save_split

    save_split(default_ds, "races", make_split(default_ds.manifest, seed=0), {"seed": 0})
    audit_split(default_ds, "races", content=False)
    return "races"


TINY = {"epochs": 1, "max_train_clips": 16, "max_dev_clips": 16, "batch_size": 8}


def _pids_training(run_id: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"train" in cmd and any(run_id.encode() in c for c in cmd):
                out.append(int(p.name))
    return out


def test_two_launches_at_once_leave_exactly_one_trainer(audited):
    from core.runs import registry
    from core.runs.train_config import TrainConfig
    from tests.conftest import wait_for

    run_id = registry.create_run(TrainConfig(split=audited, **TINY))
    errors, barrier = [], threading.Barrier(2)

    def go():
        barrier.wait()
        try:
            registry.launch(run_id)
        except LabError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=go) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(errors) == 1 and "already running" in errors[0], errors
    assert len(_pids_training(run_id)) == 1
    refused(lambda: registry.launch(run_id, resume=True), "already running")
    assert wait_for(registry.status, run_id)["state"] == "finished"
    refused(lambda: registry.launch(run_id, resume=True), "has finished; nothing to resume")
    refused(lambda: registry.cancel(run_id), "not running: nothing to cancel")


def test_a_run_cancelled_right_after_its_start_reads_cancelled(audited):
    from core.runs import registry
    from core.runs.train_config import TrainConfig
    from tests.conftest import wait_for

    run_id = registry.create_run(TrainConfig(split=audited, **TINY))
    registry.launch(run_id)
    registry.cancel(run_id)  # at once: before the trainer can even install its handler
    s = wait_for(registry.status, run_id)
    assert s["state"] == "cancelled", s
    registry.launch(run_id, resume=True)  # and it can still be resumed to the end
    assert wait_for(registry.status, run_id)["state"] == "finished"


def test_a_checkpoint_holding_code_is_refused(audited, tmp_path):
    import pickle

    from core.runs import registry
    from core.runs.training import TrainConfig, train_run
    from tests.conftest import wait_for

    run_id = registry.create_run(TrainConfig(split=audited, **TINY))
    registry.launch(run_id)
    wait_for(registry.status, run_id)
    folder = registry.runs_dir() / run_id
    from core.runs import jobs

    wait_for(lambda _: {"state": "idle" if not jobs.busy(folder) else "busy"}, run_id, ("idle",))  # process gone

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    (folder / "checkpoint.pt").write_bytes(pickle.dumps({"adapter": Evil()}))
    refused(lambda: train_run(folder, resume=True), "not a plain checkpoint, refused")
    assert not (tmp_path / "pwned").exists()


def test_concurrent_forced_imports_of_one_name_never_crash(tmp_path):
    from core.data.datasets import load_dataset
    from core.data.importers import import_dataset

    root = tmp_path / "c"
    for i in range(6):
        wav(root / "speech" / f"g{i}" / "a.wav", tone(300 + 10 * i))
    failures = []

    def go():
        try:
            import_dataset("folder", root, "racing", force=True)
        except Exception as exc:  # any crash at all fails the test
            failures.append(repr(exc))

    threads = [threading.Thread(target=go) for _ in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not failures, failures
    assert len(load_dataset("racing").manifest) == 6


def test_train_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    from core.cli import main

    assert main(["train", "--run-dir", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


# ---------------------------------------------------------------- a lab served beyond localhost


def test_serving_beyond_localhost_needs_sign_in(monkeypatch):
    from ui import access

    for var in ("LAB_TOKEN", "LAB_AUTH", "LAB_ALLOW_OPEN"):
        monkeypatch.delenv(var, raising=False)
    assert access.refusal("localhost") == ""
    assert "refusing to serve" in access.refusal("0.0.0.0")
    assert access.main(["0.0.0.0"]) == 2 and access.main(["127.0.0.1"]) == 0
    monkeypatch.setenv("LAB_TOKEN", "s3cret")  # guessable: refused by name, at start and in the page
    assert "LAB_TOKEN is 6 characters long; use at least 16" in access.refusal("0.0.0.0")
    assert access.main(["0.0.0.0"]) == 2
    monkeypatch.setenv("LAB_TOKEN", "s3cret-token-long-enough")
    assert access.refusal("0.0.0.0") == "" and access.token_ok("s3cret-token-long-enough")
    assert not access.token_ok("guess") and not access.token_ok("s3cret-token-long-enoug")
    monkeypatch.delenv("LAB_TOKEN")
    monkeypatch.setenv("LAB_ALLOW_OPEN", "1")
    assert access.refusal("0.0.0.0") == ""


def test_path_fields_stay_inside_the_allowed_folders(monkeypatch, tmp_path, data_dir):
    from ui import access

    monkeypatch.delenv("LAB_ALLOWED_PATHS", raising=False)
    assert access.check_path("/etc", "noise folder", "localhost") == "/etc"  # on localhost: any folder
    refused(lambda: access.check_path("/etc", "noise folder", "0.0.0.0"), "outside the folders this lab may read")
    inside = data_dir / "noise"
    assert access.check_path(str(inside), "noise folder", "0.0.0.0") == str(inside)
    assert access.check_path("Qwen/Qwen2-Audio-7B-Instruct", "model", "0.0.0.0")  # a hub id, not a path
    monkeypatch.setenv("LAB_ALLOWED_PATHS", str(tmp_path))
    refused(lambda: access.check_path(str(inside), "noise folder", "localhost"), "LAB_ALLOWED_PATHS")
    refused(lambda: access.check_path(str(tmp_path / ".." / ".." / "etc"), "folder", "localhost"), "outside")


def test_wrong_tokens_are_slowed_down_for_every_session():
    from ui.access import SignInThrottle

    th = SignInThrottle(cap=8, forget=100)
    assert th.wait(0) == 0
    waits = []
    for t in range(5):  # five wrong tokens in a row, each as soon as it may be tried
        now = 1000 + 20 * t
        th.failed(now)
        waits.append(th.wait(now))
    assert waits == [1, 2, 4, 8, 8]  # doubling, capped
    assert th.wait(1080 + 7.5) == 0.5  # counted down
    assert th.wait(1080 + 101) == 0  # forgotten after a quiet spell
    th.failed(2000)
    th.succeeded()
    assert th.wait(2000) == 0


def test_the_dashboard_asks_for_the_token_when_served_to_a_network(monkeypatch, default_ds):
    import time

    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO
    from ui import access

    monkeypatch.setattr(access, "THROTTLE", access.SignInThrottle())
    monkeypatch.setenv("LAB_ADDRESS", "0.0.0.0")
    monkeypatch.delenv("LAB_TOKEN", raising=False)
    monkeypatch.delenv("LAB_ALLOW_OPEN", raising=False)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    assert any("refusing to serve" in e.value for e in at.error) and not at.text_input
    monkeypatch.setenv("LAB_TOKEN", "short")
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    assert any("use at least 16" in e.value for e in at.error) and not at.text_input  # no form to guess at
    token = "open-sesame-123-456-789"
    monkeypatch.setenv("LAB_TOKEN", token)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    assert [t.value for t in at.title] == ["Speech Detection Lab"] and not at.dataframe  # nothing of the lab shown
    at.text_input[0].input("wrong")
    at.button[0].click().run()  # a form's fields and its submit go together
    assert any("not right" in e.value for e in at.error)
    at.text_input[0].input(token)
    at.button[0].click().run()  # straight after a wrong one: not even checked
    assert any("Too many wrong tokens" in e.value for e in at.error) and not at.dataframe
    time.sleep(1.1)
    at.text_input[0].input(token)
    at.button[0].click().run()
    assert not at.exception and at.title[0].value == "Data"


CLI_CASES = {
    "batch size 0": (
        ["evaluate", "--split", "default", "--detector", "silero-vad", "--batch-size", "0"],
        "must be at least 1",
    ),
    "negative batch": (["evaluate", "--split", "default", "--batch-size", "-5"], "must be at least 1"),
    "NaN audit threshold": (["data", "audit", "--threshold", "nan", "--structural-only"], "finite number"),
    "threshold above 1": (["data", "audit", "--threshold", "1.5"], r"must lie in \(0, 1\]"),
    "NaN fraction": (["data", "split", "--fractions", "nan", "1", "1", "--name", "x"], "finite number"),
    "NaN SNR": (["conditions", "--split", "default", "--name", "c2", "--snrs", "nan"], "finite number"),
    "no bases": (["conditions", "--split", "default", "--name", "c3", "--bases-per-label", "0"], "at least 1"),
    "unknown sweep": (["sweep", "matrix", "nosuch"], "no sweep 'nosuch'"),
    "sweep without id": (["sweep", "matrix"], "give the sweep"),
    "aggregate unknown sweep": (["aggregate", "--sweep", "nosuch"], "no sweep 'nosuch'"),
    "cancel without id": (["runs", "cancel"], "give the run"),
    "cancel unknown run": (["runs", "cancel", "nosuch"], "no run 'nosuch'"),
    "target above 1": (["psychometric", "x", "--target", "1.5"], r"must lie in \(0, 1\]"),
    "zero epochs": (["runs", "new", "--epochs", "0"], "epochs must be at least 1"),
    "dataset outside the data folder": (["runs", "new", "--dataset", "../etc"], "invalid dataset name '../etc'"),
    "candidates file not JSON": (["prompts", "try", "--candidates-file", "/etc/hostname"], "not a JSON list"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_refuses_bad_arguments_with_a_message(case, capsys, unchanged):
    from core.cli import main

    args, match = CLI_CASES[case]
    try:
        rc = main(args)
    except SystemExit as exit_:  # argparse's own refusal: usage and the reason, exit 2
        rc = exit_.code
    assert rc == 2
    import re

    assert re.search(match, capsys.readouterr().err), match


def test_clips_too_short_to_give_the_audio_llm_a_token_are_refused_by_name(tmp_path, data_dir, default_ds):
    """20 ms is two mel frames and no audio token in Qwen2-Audio: scored, it would not depend on the audio."""
    from core.detectors import lab_base
    from core.detectors.llm import AudioLLMDetector, AudioLLMSpec
    from core.detectors.llm.prompt import Prompt

    det = AudioLLMDetector(AudioLLMSpec(model=str(lab_base.ensure_base_model())))
    assert det.min_seconds == pytest.approx(321 / 16000)  # the first length with one audio token
    rng = np.random.default_rng(0)
    silence, noise = np.zeros(320, np.float32), (0.3 * rng.standard_normal(320)).astype(np.float32)
    refused(lambda: det.score([tone(300), silence], SR), r"1 clip\(s\) too short .*no audio token.*clip 2 \(20 ms\)")
    refused(lambda: det.score_prompts([noise], SR, [Prompt("Speech?")]), r"too short .*clip 1 \(20 ms\)")
    z = det.score([np.zeros(321, np.float32), (0.3 * rng.standard_normal(321)).astype(np.float32)], SR)
    assert np.isfinite(z).all() and not np.allclose(z[0], z[1])  # one token: the audio now matters


def test_clips_longer_than_the_audio_window_are_refused_by_name(tmp_path, data_dir, default_ds):
    """Qwen2-Audio's encoder takes 30 s: a longer clip is named before any work, never cut or crashed on."""
    from core.data.datasets import load_dataset
    from core.data.importers import import_dataset
    from core.data.splits import save_split
    from core.detectors import lab_base
    from core.detectors.llm import AudioLLMDetector, AudioLLMSpec
    from core.detectors.llm.prompt import Prompt
    from core.scoring.evaluate import evaluate

    det = AudioLLMDetector(AudioLLMSpec(model=str(lab_base.ensure_base_model())))
    assert det.max_seconds == 30
    assert np.isfinite(det.score([tone(300), tone(30000)], SR)).all()  # exactly 30 s fits the window
    refused(lambda: det.score([tone(300), tone(40000)], SR), r"1 clip\(s\) longer than the 30 s .*: clip 2 \(40\.0 s\)")
    refused(lambda: det.score_prompts([tone(40000)], SR, [Prompt("Speech?")]), r"clip 1 \(40\.0 s\)")
    src = tmp_path / "long"
    rows = [(f"short-{i}", tone(500)) for i in range(3)] + [("long-one", tone(31000))]
    for cid, x in rows:
        wav(src / f"{cid}.wav", x)
    manifest = pd.DataFrame(
        {"clip_id": [r[0] for r in rows], "path": [f"{r[0]}.wav" for r in rows], "label": "speech",
         "group_id": [f"g{i}" for i in range(len(rows))], "base_clip_id": [r[0] for r in rows]}
    )  # fmt: skip
    manifest.to_csv(src / "manifest.csv", index=False)
    import_dataset("csv", src / "manifest.csv", "long-clips")
    ds = load_dataset("long-clips")
    save_split(ds, "all-test", pd.Series("test", index=ds.manifest.index), {})
    before = snapshot(data_dir / "results")
    refused(lambda: evaluate(ds, "all-test", "test", det), r"1 clip\(s\) longer than the 30 s .*: long-one \(31\.0 s\)")
    assert snapshot(data_dir / "results") == before  # no table, not half of one


# ---------------------------------------------------------------- training settings, one check for every entry


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"lora_alpha": 0}, "lora_alpha must be at least 1"),
        ({"lora_alpha": -4}, "lora_alpha must be at least 1"),
        ({"warmup_ratio": 1.5}, r"warmup_ratio must lie within \[0, 1\]"),
        ({"warmup_ratio": -0.1}, "warmup_ratio must lie"),
        ({"noise_prob": 2.0}, "noise_prob must lie"),
        ({"max_train_clips": -5}, r"max_train_clips must be at least 0 \(0 = all clips\)"),
        ({"max_dev_clips": -1}, "max_dev_clips must be at least 0"),
        ({"schedule": "cosin"}, "schedule must be one of cosine, linear, constant"),
        ({"lora_r": "abc"}, "lora_r must be a whole number, got 'abc'"),
        ({"lr": float("nan")}, "lr must be a number"),
        ({"epochs": 2.5}, "epochs must be a whole number"),
        ({"noise_snr": (20.0, 0.0)}, "noise_snr must be two finite numbers, low before high"),
    ],
)
def test_training_settings_that_cannot_mean_what_they_say_register_nothing(setting, match, default_ds, data_dir):
    from core.runs import registry, sweeps
    from core.runs.train_config import TrainConfig

    before = snapshot(data_dir / "results")
    refused(lambda: registry.create_run(TrainConfig(**setting)), match)
    key, value = next(iter(setting.items()))
    if key in sweeps.GRID_KEYS:  # the same check for a sweep over that setting
        refused(lambda: sweeps.create_sweep(TrainConfig(), {key: [value]}, [0], launch_worker=False), match)
    assert snapshot(data_dir / "results") == before


def test_duplicate_seeds_and_text_grid_values_are_refused_everywhere(default_ds, data_dir, capsys):
    from core.cli import main
    from core.runs import cv, sweeps
    from core.runs.train_config import TrainConfig

    before = snapshot(data_dir / "results")
    refused(
        lambda: sweeps.create_sweep(TrainConfig(), {"lora_r": [4]}, [1, 1], launch_worker=False),
        "seed 1 is given twice",
    )
    refused(
        lambda: cv.create(TrainConfig(), cv.CVConfig(folds="4", seeds=[0, 2, 0]), launch_worker=False),
        "seed 0 is given twice",
    )
    assert main(["sweep", "new", "--grid", "lora_r=8,x16", "--seeds", "0"]) == 2
    assert "lora_r must be a whole number, got 'x16'" in capsys.readouterr().err
    assert main(["sweep", "new", "--grid", "lora_r=8", "--seeds", "3", "3"]) == 2
    assert "seed 3 is given twice" in capsys.readouterr().err
    assert snapshot(data_dir / "results") == before


def test_a_truncated_model_or_adapter_is_named_before_anything_is_registered(tmp_path, default_ds, data_dir):
    import shutil

    from core.detectors import lab_base
    from core.detectors.checkpoints import require_adapter
    from core.runs import registry
    from core.runs.train_config import TrainConfig

    base = lab_base.ensure_base_model()
    broken = tmp_path / "broken-model"
    shutil.copytree(base, broken)
    weights = next(broken.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    before = snapshot(data_dir / "results")
    refused(
        lambda: registry.create_run(TrainConfig(base_model=str(broken))),
        rf"{weights.name}: not a readable safetensors file .*truncated",
    )
    assert snapshot(data_dir / "results") == before
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{")
    refused(lambda: require_adapter(str(adapter)), "adapter_config.json: the configuration is not readable JSON")
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"\x05\x00")
    refused(lambda: require_adapter(str(adapter)), "adapter_model.safetensors: not a readable safetensors file")


# ---------------------------------------------------------------- segments and paths in manifests


def _manifest(folder: Path, rows: list[dict]) -> Path:
    frame = pd.DataFrame(rows)
    frame.to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


def test_a_segment_past_its_files_end_is_cut_there_and_the_manifest_says_so(tmp_path, data_dir):
    from core.data.datasets import load_dataset
    from core.data.importers import import_dataset

    src = tmp_path / "seg"
    wav(src / "a.wav", tone(1000))  # 1.000 s
    wav(src / "b.wav", tone(1000))
    base = {"label": "speech", "group_id": "g", "path": "a.wav"}
    rows = [{**base, "clip_id": "inside", "start_s": 0.1, "end_s": 0.5, "base_clip_id": "inside"},
            {**base, "clip_id": "past", "start_s": 0.5, "end_s": 3.0, "base_clip_id": "past", "path": "b.wav"}]  # fmt: skip
    import_dataset("csv", _manifest(src, rows), "seg-cut")
    ds = load_dataset("seg-cut")
    m = ds.manifest.set_index("clip_id")
    assert m.loc["past", "end_s"] == pytest.approx(1.0) and m.loc["inside", "end_s"] == pytest.approx(0.5)
    assert m.loc["past", "duration_ms"] == pytest.approx(500, abs=1)
    assert ds.info["load_notes"]["segment ends past its file's end: cut there"] == 1
    rows.append({**base, "clip_id": "after", "start_s": 2.0, "end_s": 2.5, "base_clip_id": "after"})
    before = snapshot(data_dir / "datasets")
    refused(
        lambda: import_dataset("csv", _manifest(src, rows), "seg-after"),
        r"segment starts at 2\.0 s, at or past the file's end",
    )
    assert snapshot(data_dir / "datasets") == before


def test_manifest_paths_that_leave_the_manifests_folder_are_refused(tmp_path, data_dir):
    from core.data.datasets import load_dataset
    from core.data.importers import import_dataset

    outside = wav(tmp_path / "secret.wav", tone(500))
    src = tmp_path / "corpus"
    wav(src / "ok.wav", tone(500))
    base = {"label": "speech", "group_id": "g"}
    for i, bad in enumerate(["../secret.wav", str(outside)]):
        rows = [{**base, "clip_id": "ok", "path": "ok.wav", "base_clip_id": "ok"},
                {**base, "clip_id": "out", "path": bad, "base_clip_id": "out"}]  # fmt: skip
        before = snapshot(data_dir / "datasets")
        refused(
            lambda rows=rows, i=i: import_dataset("csv", _manifest(src, rows), f"leave{i}"),
            r"1 audio path\(s\) lie outside .*line 3: .*secret\.wav",
        )
        assert snapshot(data_dir / "datasets") == before
    link = src / "link.wav"
    link.symlink_to(outside)  # a link inside that points out counts as outside
    rows = [{**base, "clip_id": "ok", "path": "link.wav", "base_clip_id": "ok"}]
    refused(lambda: import_dataset("csv", _manifest(src, rows), "leave-link"), "lie outside")
    import_dataset("csv", _manifest(src, rows), "leave-ok", paths_outside_ok=True)  # the CLI's explicit opt-in
    assert len(load_dataset("leave-ok").manifest) == 1


def test_a_split_with_a_one_class_part_is_flagged_when_made(default_ds, capsys):
    from core.cli import main
    from core.data.splits import one_class_parts, split_info

    m = default_ds.manifest
    split = pd.Series(np.where(m["label"] == "speech", "test", "train"), index=m.index)
    assert one_class_parts(m, split) == {"test": "speech", "train": "nonspeech"}
    assert one_class_parts(m, pd.Series("test", index=m.index)) == {}
    assert main(["data", "split", "--name", "ok-split", "--seed", "3"]) == 0
    assert "holds" not in capsys.readouterr().err and split_info(default_ds, "ok-split")["one_class_parts"] == {}


def test_one_class_tables_are_said_to_be_one_class_not_scored_perfect():
    from core.analysis.calibration_report import report
    from core.analysis.compare import compare
    from core.scoring.predictions import build_table

    rng = np.random.default_rng(0)
    clips = pd.DataFrame({"clip_id": [f"c{i}" for i in range(30)], "label": "speech",
                          "group_id": [f"g{i % 5}" for i in range(30)], "base_clip_id": [f"c{i}" for i in range(30)],
                          "split": "test", "duration_ms": 1000, "snr_db": np.nan})  # fmt: skip
    a = build_table(clips, rng.normal(2, 1, (30, 2)) + [[2, 0]], detector="a")
    b = build_table(clips, rng.normal(0, 1, (30, 2)), detector="b")
    res = compare(a, b, n_boot=200)
    assert res.warnings and "holds speech clips only" in res.warnings[0] and "recall of speech" in res.warnings[0]
    rep, _, _ = report(a, b, "temperature")
    assert sum("holds speech clips only" in w for w in rep.warnings) == 2  # dev and test both said


def test_the_study_report_says_a_test_table_is_one_class(tmp_path, monkeypatch):
    from core.report.study import detectors_section
    from core.scoring.predictions import build_table, save

    monkeypatch.setenv("LAB_RESULTS_DIR", str(tmp_path))
    clips = pd.DataFrame({"clip_id": [f"c{i}" for i in range(12)], "label": "nonspeech",
                          "group_id": [f"g{i % 4}" for i in range(12)], "base_clip_id": [f"c{i}" for i in range(12)],
                          "split": "test", "duration_ms": 1000, "snr_db": np.nan})  # fmt: skip
    table = build_table(clips, np.random.default_rng(0).normal(size=(12, 2)), detector="d")
    save(table, {"dataset": "ds", "split_name": "one", "part": "test", "detector": "d"})
    section, _ = detectors_section("ds", "one")
    assert any("holds nonspeech clips only" in t for t in section.text), section.text
