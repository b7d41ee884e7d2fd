"""The Ray executor on a local 2-CPU Ray cluster: the same results as the local executor, cancel,
a killed worker then resume, sharded scoring, the folder probe, the Runs page.

The cluster is a real one (`ray start --head --block`, stopped at the end); its nodes do not set
LAB_DATA_DIR, so tasks use the driver's folders, as nodes of a real cluster with shared storage do.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.data.audit import audit_split
from core.data.splits import make_split, save_split
from core.errors import LabError
from core.runs import executors, registry, sweeps
from core.runs.executors import Executor
from core.runs.training import TrainConfig, train_run
from core.scoring import predictions
from tests.conftest import REPO, wait_for

RAY = str(Path(sys.executable).parent / "ray")
TINY = {"epochs": 1, "max_train_clips": 32, "max_dev_clips": 24, "batch_size": 16}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_node(args: list[str], env: dict[str, str], ready) -> subprocess.Popen:
    proc = subprocess.Popen(
        [RAY, "start", "--block", "--disable-usage-stats", "--object-store-memory=80000000", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    t0 = time.time()
    while not ready():
        if proc.poll() is not None or time.time() - t0 > 120:
            raise AssertionError(f"ray start {args} did not come up")
        time.sleep(1)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)  # `ray start --block` stops its node's processes when terminated
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _node_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in executors.SHARED_ENV and k != "LAB_RAY_ADDRESS"}
    return {**env, **extra}


@pytest.fixture(scope="module")
def ray_address(default_ds):
    port = _free_port()
    address = f"127.0.0.1:{port}"

    def up() -> bool:
        try:
            return executors.check(address, "status", timeout=60)["cpus"] == 2
        except LabError:
            return False

    head = _start_node(
        ["--head", f"--port={port}", "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false"], _node_env(), up
    )
    yield address
    _stop(head)


@pytest.fixture(scope="module")
def clean_split(default_ds):
    save_split(default_ds, "ray-clean", make_split(default_ds.manifest, seed=0), {"seed": 0})
    audit_split(default_ds, "ray-clean", content=False)
    return "ray-clean"


def test_the_cluster_is_seen_and_probed(ray_address):
    c = executors.check(ray_address, "status")
    assert len(c["nodes"]) == 1 and c["cpus"] == 2 and c["gpus"] == 0
    probed = executors.check(ray_address, "probe")
    assert (
        probed["LAB_DATA_DIR"] == str(Path(os.environ["LAB_DATA_DIR"]).resolve()) and not probed["nodes"][0]["problems"]
    )
    with pytest.raises(LabError, match="no Ray cluster answers"):
        executors.check(f"127.0.0.1:{_free_port()}", "status")
    with pytest.raises(LabError, match="needs a cluster address"):
        Executor.choose("ray", "")


def _metrics(run_ids: list[str]) -> dict[tuple, dict]:
    out = {}
    for run_id in run_ids:
        cfg = registry.config(run_id)
        out[(cfg["lora_r"], cfg["seed"])] = registry.result(run_id)["test"]
    return out


def test_a_sweep_through_ray_ends_with_the_local_sweeps_metrics(ray_address, clean_split):
    base = TrainConfig(split=clean_split, **TINY)
    local = sweeps.create_sweep(base, {"lora_r": [4, 8]}, [0, 1], parallel=2)
    on_ray = sweeps.create_sweep(base, {"lora_r": [4, 8]}, [0, 1], executor=Executor("ray", ray_address))
    for sweep_id in (local, on_ray):
        s = wait_for(sweeps.sweep_status, sweep_id, timeout=900)
        assert s["state"] == "finished", s
    ray_runs = sweeps.sweep_status(on_ray)["runs"]
    a, b = _metrics(sweeps.sweep_status(local)["runs"]), _metrics(ray_runs)
    assert a.keys() == b.keys() and len(a) == 4
    for key in a:
        assert b[key] == pytest.approx(a[key], abs=1e-6), key
    for run_id in ray_runs:  # each ran as a Ray task: where is recorded and shown
        where = executors.placement(registry.runs_dir() / run_id)
        assert where["node"] and where["gpus"] == [] and where["worker_pid"] != os.getpid()
    shown = registry.list_runs().set_index("run").loc[ray_runs, "ran_on"]
    assert shown.str.contains(socket.gethostname()).all() and shown.str.endswith("CPU").all()


def _trainers_of(folder: Path) -> list[int]:
    """Processes still training `folder` (none may outlive their Ray worker)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"train" in cmd and str(folder).encode() in cmd:
                pids.append(int(proc.name))
    return pids


def test_cancel_and_a_killed_ray_worker_then_resume_to_the_uninterrupted_result(ray_address, clean_split):
    cfg = TrainConfig(
        split=clean_split, max_train_clips=160, max_dev_clips=24, epochs=2, batch_size=8, checkpoint_every=5, seed=3
    )
    reference = train_run(registry.runs_dir() / registry.create_run(cfg))
    run_id = registry.create_run(cfg, executor=Executor("ray", ray_address))
    folder = registry.runs_dir() / run_id
    registry.launch(run_id)
    while len(registry.metrics_log(run_id)) < 3:
        time.sleep(0.2)
    registry.cancel(run_id)  # through Ray: the task's run records itself cancelled
    s = wait_for(registry.status, run_id)
    assert s["state"] == "cancelled", s

    registry.launch(run_id, resume=True)
    while len(registry.metrics_log(run_id)) < 14 or not (folder / "checkpoint.pt").exists():
        time.sleep(0.1)
    worker = executors.placement(folder)["worker_pid"]
    os.kill(worker, signal.SIGKILL)  # the Ray worker process running the task dies
    s = wait_for(registry.status, run_id)
    assert s["state"] == "failed" and "lost on the Ray cluster" in s["message"], s
    t0 = time.time()
    while _trainers_of(folder) and time.time() - t0 < 10:
        time.sleep(0.2)
    assert not _trainers_of(folder)  # the trainer died with its worker: no orphan writes on

    registry.launch(run_id, resume=True)
    s = wait_for(registry.status, run_id)
    assert s["state"] == "finished", s
    log = registry.metrics_log(run_id)
    assert (log["type"] == "resume").sum() == 2
    assert registry.result(run_id)["test"] == pytest.approx(reference["test"], abs=1e-9)


def test_two_replicas_score_the_same_table_as_one_process(ray_address, clean_split):
    def score(*extra: str) -> tuple[pd.DataFrame, dict]:
        before = set(predictions.describe_tables().get("table", []))
        argv = [sys.executable, "-m", "core", "evaluate", f"--split={clean_split}", "--part=dev", "--detector=lab-base"]
        proc = subprocess.run([*argv, *extra], cwd=REPO, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        tables = predictions.describe_tables()
        (path,) = tables.loc[~tables["table"].isin(before), "path"]
        return predictions.load(path)

    one, _ = score()
    for extra in (["--gpus", "2"], ["--gpus", "2", "--executor", "ray", f"--address={ray_address}"]):
        two, meta = score(*extra)
        assert list(two.columns) == list(one.columns) and two["clip_id"].tolist() == one["clip_id"].tolist()
        np.testing.assert_allclose(two["logit"], one["logit"], atol=1e-4)
        pd.testing.assert_frame_equal(two.drop(columns=["logit", "p_speech"], errors="ignore"),
                                      one.drop(columns=["logit", "p_speech"], errors="ignore"))  # fmt: skip
        assert meta["replicas"] == 2 and len(meta["replica_seconds"]) == 2


def test_the_runs_page_shows_the_cluster_and_launches_a_run_on_it(ray_address, clean_split):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("views/runs.py").run()
    at.text_input(key="runs_ray").input(ray_address).run()
    assert not at.exception
    assert any("1 node(s)" in c.value and "CPUs 2/2" in c.value for c in at.caption), [c.value for c in at.caption]
    at.selectbox(key="run_split").set_value(clean_split)
    at.number_input(key="run_epochs").set_value(1)
    at.number_input(key="run_max_train").set_value(32)
    before = set(registry.list_runs().get("run", []))
    next(b for b in at.button if b.label == "Launch").click().run()
    assert not at.exception
    assert any("started" in t.value for t in at.toast), [e.value for e in at.error]
    (new,) = [r for r in registry.list_runs()["run"] if r not in before]
    assert executors.of(registry.runs_dir() / new) == Executor("ray", ray_address)
    assert wait_for(registry.status, new, timeout=600)["state"] == "finished"
    at.run()
    assert any("Ran on:" in c.value and socket.gethostname() in c.value for c in at.caption)


def test_the_probe_names_a_node_that_cannot_see_the_data_folder(ray_address, clean_split, tmp_path):
    """Runs last: it adds a node whose LAB_DATA_DIR is another folder, as a node with another mount."""
    other = tmp_path / "elsewhere"
    other.mkdir()

    def two_nodes() -> bool:
        try:
            return len(executors.check(ray_address, "status", timeout=60)["nodes"]) == 2
        except LabError:
            return False

    node = _start_node(
        [f"--address={ray_address}", "--num-cpus=0", "--num-gpus=0"], _node_env(LAB_DATA_DIR=str(other)), two_nodes
    )
    try:
        before = len(registry.list_runs())
        with pytest.raises(LabError, match=r"1 of 2 Ray node\(s\) cannot see.*LAB_DATA_DIR is .*elsewhere"):
            registry.create_run(TrainConfig(split=clean_split, **TINY), executor=Executor("ray", ray_address))
        assert len(registry.list_runs()) == before  # refused before anything was queued
    finally:
        _stop(node)
