"""One split scored by N model replicas at once (one per GPU, or N processes), merged into one table.

Each replica scores every N-th clip of the clips sorted by duration, so all replicas get the
same mix of lengths and finish together; each writes its clips' logits to a file, and the
merge puts them back in the split's clip order. Scoring a clip does not depend on the other
clips of its batch (tested for the audio-LLM paths), so the merged table equals one-process
scoring, within the dtype's tolerance (tested with 2 replicas on CPU).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from core import atomic
from core.data.datasets import Dataset
from core.data.splits import select_clips
from core.errors import LabError
from core.paths import repo_root, results_root
from core.scoring import predictions
from core.scoring.evaluate import Progress, sidecar

# torch is imported inside functions: importing this module stays cheap


def shard_clips(clips: pd.DataFrame, shard: int, of: int) -> pd.DataFrame:
    """Replica `shard`'s clips: every `of`-th clip in order of duration (the same length mix for each)."""
    if not 0 <= shard < of:
        raise LabError(f"shard {shard} of {of} does not exist")
    order = np.argsort(clips["duration_ms"].fillna(0).to_numpy(), kind="stable")
    return clips.iloc[np.sort(order[shard::of])]


def save_shard(path: Path, clip_ids: list[str], logits: np.ndarray, seconds: float, info: dict) -> None:
    """What a replica hands back: its clips' ids and logits, how long it took, what it ran on."""
    atomic.write_with(path, lambda p: np.savez(p, ids=np.asarray(clip_ids, dtype=object), logits=logits), ".npz")
    atomic.write_json(path.with_suffix(".json"), {"seconds": seconds, "clips": len(clip_ids), **info})


def merge(clips: pd.DataFrame, folder: Path, of: int) -> tuple[np.ndarray, list[dict]]:
    """The replicas' logits in `clips`' order, and each replica's facts; every clip must come back once."""
    index = {cid: i for i, cid in enumerate(clips["clip_id"])}
    out = np.full((len(clips), 2), np.nan)
    facts = []
    for shard in range(of):
        path = folder / f"shard-{shard}.npz"
        if not path.exists():
            raise LabError(f"replica {shard} of {of} returned nothing (see {folder / f'shard-{shard}'}/log.txt)")
        with np.load(path, allow_pickle=True) as z:
            for cid, row in zip(z["ids"], z["logits"]):
                out[index[str(cid)]] = row
        facts.append(json.loads(path.with_suffix(".json").read_text()))
    missing = int(np.isnan(out).any(axis=1).sum())
    if missing:
        raise LabError(f"{missing} clip(s) were scored by no replica")
    return out, facts


def run_replicas(argv: list[str], of: int, executor=None, progress=None, should_stop=None) -> Path:
    """Start `of` replicas of `python -m core <argv> --shard i --of N --shard-out F`; wait; return their folder.

    Locally, replica i sees GPU i (CUDA_VISIBLE_DEVICES) when there are GPUs, else a share of the
    cores. With a Ray executor each replica is a task asking for one GPU.
    """
    import torch

    folder = results_root() / "jobs" / f"shards-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    items = []
    for i in range(of):
        sub = folder / f"shard-{i}"
        sub.mkdir()
        items.append(
            (
                sub,
                [
                    *argv,
                    "--shard",
                    str(i),
                    "--of",
                    str(of),
                    "--shard-out",
                    str(folder / f"shard-{i}.npz"),
                    "--job-dir",
                    str(sub),
                ],
            )
        )
    if executor is not None and executor.ray:
        from core.runs import executors

        executors.drive(items, executor, should_stop=should_stop)
        if should_stop and should_stop():
            raise KeyboardInterrupt("cancelled")
        return folder
    gpus = torch.cuda.device_count()
    procs = []
    for i, (sub, args) in enumerate(items):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(i % gpus)
        else:
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // of))
        with open(sub / "log.txt", "ab") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "core", *args], cwd=repo_root(), env=env,
                                          stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))  # fmt: skip
    try:
        while any(p.poll() is None for p in procs):
            if should_stop and should_stop():
                for p in procs:
                    p.terminate()
                raise KeyboardInterrupt("cancelled")
            if progress:
                done = []
                for sub, _ in items:
                    st = sub / "status.json"
                    done.append(json.loads(st.read_text()).get("progress", 0.0) if st.exists() else 0.0)
                progress(float(np.mean(done)), f"{of} replicas scoring")
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    bad = [i for i, p in enumerate(procs) if p.returncode != 0]
    if bad:
        tail = (items[bad[0]][0] / "log.txt").read_text(errors="replace").splitlines()[-3:]
        raise LabError(f"replica(s) {bad} of {of} failed: {' | '.join(tail)}")
    return folder


def evaluate_sharded(
    ds: Dataset,
    split_name: str,
    part: str,
    replica_argv: list[str],
    replicas: int,
    executor=None,
    *,
    seed: int | None = None,
    name: str | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    exclude_tags: list[str] | tuple[str, ...] = (),
    labels: str = "original",
) -> Path:
    """`evaluate`, with the clips shared among `replicas` model replicas.

    `replica_argv` is the `python -m core evaluate ...` command each replica runs with its shard.
    The table is the one a single process would write: the same clips in the same order.
    """
    clips = select_clips(ds, split_name, part, exclude_tags, labels)
    t0 = time.perf_counter()
    folder = run_replicas(replica_argv, replicas, executor, progress, should_stop)
    logits, facts = merge(clips, folder, replicas)
    seconds = time.perf_counter() - t0
    info = {k: v for k, v in facts[0].items() if k not in ("seconds", "clips")}
    info["device"] = f"{replicas}× {facts[0].get('device', '?')}"  # each replica sees its own GPU as cuda:0
    table = predictions.build_table(
        clips, logits, detector=info.get("detector_name", "replicas"), adapter=info.get("adapter", ""), seed=seed,
        prompt=info.get("prompt", ""),
    )  # fmt: skip
    meta = sidecar(ds, split_name, part, table["detector"].iloc[0], info, table, seconds, exclude_tags, clips)
    meta.update(
        replicas=replicas,
        replica_seconds=[f["seconds"] for f in facts],
        replica_devices=[f.get("device") for f in facts],
    )
    return predictions.save(table, meta, name)
