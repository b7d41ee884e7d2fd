"""Nothing lost, nothing mixed: writers killed at every step, and writers that finish together.

A child process (from a forkserver) runs a write and is killed (`os._exit`, as SIGKILL would: no cleanup runs) at its
k-th file-system commit step (fsync, rename, replace, link), for every k until the write gets
through. After each kill the next ordinary command must see the old state or the new one,
never a mix, and leave no debris (temporary files or folders) behind.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from core import atomic
from core.data import importers
from core.data.datasets import list_datasets, load_dataset
from core.data.splits import file_hash, list_splits, load_split, make_split, save_split, split_info
from core.scoring import predictions

STEPS = ("fsync", "replace", "rename", "link")
ENV = ("LAB_DATA_DIR", "LAB_RESULTS_DIR")


def _context():
    """Children come from a forkserver: a clean process with no threads. Forking the test process
    itself (torch, pyarrow and Streamlit threads) can leave a child waiting on a lock forever."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.test_crash_safety"])
    return ctx


def _child(k: int, write, args: tuple, env: dict[str, str]) -> None:
    """In the child: count commit steps and die at the k-th without any cleanup, as kill -9 would."""
    os.environ.update(env)
    count = [0]

    def hooked(orig):
        def step(*a, **kw):
            count[0] += 1
            if count[0] == k:
                os._exit(137)
            return orig(*a, **kw)

        return step

    for name in STEPS:
        setattr(os, name, hooked(getattr(os, name)))
    try:
        write(*args)
    except BaseException:
        os._exit(1)
    os._exit(0)


def killed_at(k: int, write, args: tuple = ()) -> bool:
    """Run `write(*args)` in a child killed at its k-th commit step; True when it got through."""
    env = {v: os.environ[v] for v in ENV if v in os.environ}
    proc = _context().Process(target=_child, args=(k, write, args, env))
    proc.start()
    proc.join(120)
    assert proc.exitcode in (0, 137), f"the write failed on its own (exit {proc.exitcode})"
    return proc.exitcode == 0


def debris(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock"))


def every_kill(write, args: tuple, check, folder: Path, limit: int = 60) -> int:
    """Kill `write(*args)` at step 1, 2, … until it gets through; `check()` after each; return the steps seen."""
    for k in range(1, limit):
        done = killed_at(k, write, args)
        check()
        assert debris(folder) == [], f"killed at step {k}: left {debris(folder)}"
        if done:
            return k
    raise AssertionError("the write never got through")


def _write_split(dataset: str, name: str, seed: int) -> None:
    ds = load_dataset(dataset)
    save_split(ds, name, make_split(ds.manifest, seed=seed), {"seed": seed})


def _write_table(n: int, tag: str, name: str | None) -> None:
    predictions.save(_table(n, tag), {"detector": tag}, name=name)


def _write_import(corpus: Path, name: str) -> None:
    importers.import_dataset("folder", corpus, name, force=True)


def test_a_split_killed_at_any_step_is_the_old_split_or_the_new_one(default_ds):
    old, new = make_split(default_ds.manifest, seed=0), make_split(default_ds.manifest, seed=5)
    assert not old.equals(new)
    save_split(default_ds, "crash", old, {"seed": 0})
    folder = default_ds.root / "splits"

    def check():
        assert "crash" in list_splits(default_ds)  # the next command (listing) cleans and recovers
        now, info = load_split(default_ds, "crash"), split_info(default_ds, "crash")
        assert now.equals(old) or now.equals(new)
        assert info["seed"] == (0 if now.equals(old) else 5)  # the metadata describes this split
        assert info["split_hash"] == file_hash(folder / "crash.csv")

    steps = every_kill(_write_split, (default_ds.name, "crash", 5), check, folder)
    assert steps >= 4 and load_split(default_ds, "crash").equals(new)


def _table(n: int, tag: str) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    logits = rng.normal(size=(n, 2))
    clips = pd.DataFrame(
        {
            "clip_id": [f"{tag}{i}" for i in range(n)],
            "label": ["speech", "nonspeech"] * (n // 2),
            "group_id": [f"g{i % 3}" for i in range(n)],
            "base_clip_id": [f"{tag}{i}" for i in range(n)],
            "split": "test",
            "duration_ms": 1000,
            "snr_db": np.nan,
        }
    )
    return predictions.build_table(clips, logits, detector=tag)


def test_a_table_killed_at_any_step_is_the_old_table_or_the_new_one(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_RESULTS_DIR", str(tmp_path))
    folder = tmp_path / "predictions"
    predictions.save(_table(10, "old"), {"detector": "old"}, name="crashy")

    def check():
        predictions.list_tables()  # the next command cleans
        table, meta = predictions.load(predictions.resolve("crashy"))
        assert meta["detector"] == table["detector"].iloc[0] and meta["n_clips"] == len(table)
        assert len(table) in (10, 20)

    every_kill(_write_table, (20, "new", "crashy"), check, folder)
    fresh = []  # a table without a name: after a kill it is there whole, or not at all

    def check_new():
        tables = [p for p in predictions.list_tables() if p.stem != "crashy"]
        for p in tables:
            table, meta = predictions.load(p)
            assert len(table) == 20 and meta["n_clips"] == 20
        fresh.append(len(tables))

    every_kill(_write_table, (20, "auto", None), check_new, folder)
    # each killed attempt left no table or one whole table (once linked, it is published)
    assert fresh[-1] >= 1 and all(b - a in (0, 1) for a, b in zip([0, *fresh], fresh))


def _save_one(results: str, k: int, barrier) -> str:
    os.environ["LAB_RESULTS_DIR"] = results
    barrier.wait()
    return str(predictions.save(_table(10 + 2 * k, f"job{k}"), {"dataset": "d", "detector": "same", "job": k}))


def test_scoring_jobs_that_finish_together_all_keep_their_tables(tmp_path):
    n = 8
    ctx = _context()
    with ctx.Manager() as manager:
        barrier = manager.Barrier(n)
        with ctx.Pool(n) as pool:
            paths = pool.starmap(_save_one, [(str(tmp_path), k, barrier) for k in range(n)])
    assert len(set(paths)) == n
    for path in paths:
        table, meta = predictions.load(path)
        assert len(table) == 10 + 2 * meta["job"] and table["detector"].iloc[0] == f"job{meta['job']}"
    assert len(predictions.list_tables()) == n or len(list((tmp_path / "predictions").glob("*.parquet"))) == n


def _flip_writer(results: str, stop) -> None:
    os.environ["LAB_RESULTS_DIR"] = results
    k = 0
    while not stop.is_set():
        tag, n = ("a", 10) if k % 2 else ("b", 20)
        predictions.save(_table(n, tag), {"detector": tag}, name="flip")
        k += 1


def test_a_reader_never_sees_a_table_with_another_writes_sidecar(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RESULTS_DIR", str(tmp_path))
    predictions.save(_table(10, "a"), {"detector": "a"}, name="flip")
    ctx = _context()
    stop = ctx.Event()
    proc = ctx.Process(target=_flip_writer, args=(str(tmp_path), stop))
    proc.start()
    try:
        seen = set()
        for _ in range(300):
            table, meta = predictions.load(tmp_path / "predictions" / "flip.parquet")
            assert meta["detector"] == table["detector"].iloc[0] and meta["n_clips"] == len(table)
            seen.add(meta["detector"])
    finally:
        stop.set()
        proc.join(30)
    assert seen == {"a", "b"}  # the writer really did change it under the reader


@pytest.fixture
def little_corpus(tmp_path):
    root = tmp_path / "corpus"
    rng = np.random.default_rng(0)
    for label in ("speech", "nonspeech"):
        for g in range(2):
            d = root / label / f"{label}{g}"
            d.mkdir(parents=True)
            for i in range(2):
                sf.write(d / f"c{i}.wav", (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
    return root


def test_an_import_killed_at_any_step_leaves_the_old_dataset_or_the_new_one(data_dir, little_corpus):
    importers.import_dataset("folder", little_corpus, "crashimport")
    old_ids = set(load_dataset("crashimport").manifest["clip_id"])
    extra = little_corpus / "speech" / "speech9"
    extra.mkdir()
    sf.write(extra / "c0.wav", np.zeros(8000, dtype=np.float32) + 0.01, 16000)
    new_ids = old_ids | {"speech-speech9-c0"}

    def check():
        assert "crashimport" in list_datasets()  # the listing cleans and puts a swapped-out dataset back
        assert set(load_dataset("crashimport").manifest["clip_id"]) in (old_ids, new_ids)

    folder = data_dir / "datasets"
    every_kill(_write_import, (little_corpus, "crashimport"), check, folder)
    assert set(load_dataset("crashimport").manifest["clip_id"]) == new_ids
    assert not any(p.name.startswith(".crashimport.") and not p.name.endswith(".lock") for p in folder.iterdir())


def test_debris_of_live_writers_is_left_alone(tmp_path):
    (tmp_path / f".x.csv.{os.getpid()}.abcdefgh.csv").write_text("mine")
    (tmp_path / ".x.csv.999999999.abcdefgh.csv").write_text("dead writer's")
    assert atomic.clean_debris(tmp_path) == [".x.csv.999999999.abcdefgh.csv"]
    assert debris(tmp_path) == [f".x.csv.{os.getpid()}.abcdefgh.csv"]
