import os
import subprocess
import sys

from tests.conftest import REPO


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=REPO, capture_output=True, text=True, env={**os.environ}, timeout=300
    )


def test_split_audit_list_round_trip(default_ds):
    r = run("data", "split", "--name", "cli", "--seed", "5")
    assert r.returncode == 0, r.stderr
    assert "train" in r.stdout and (default_ds.root / "splits" / "cli.csv").exists()
    r = run("data", "audit", "--split", "cli", "--structural-only", "--fail-on-leak")
    assert r.returncode == 0, r.stderr
    assert "clean" in r.stdout
    r = run("data", "list")
    assert "cli [clean]" in r.stdout


def test_errors_are_clear_and_exit_2(default_ds):
    r = run("data", "audit", "--split", "nope")
    assert r.returncode == 2 and "has no split 'nope'" in r.stderr
    r = run("data", "import", "folder", "/nonexistent", "--name", "zz")
    assert r.returncode == 2 and "not found" in r.stderr
