"""Shared fixtures: one embedded dataset per test session, built into a temporary data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FSDD = REPO.parent / "shared" / "audio" / "fsdd" / "recordings"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private LAB_DATA_DIR for the whole session, so tests never touch the user's data/."""
    d = tmp_path_factory.mktemp("labdata")
    os.environ["LAB_DATA_DIR"] = str(d)
    return d


@pytest.fixture(scope="session")
def default_ds(data_dir: Path):
    from core.data.datasets import load_dataset
    from core.data.default_dataset import build_default

    build_default()
    return load_dataset("default")


@pytest.fixture(scope="session")
def voices_ds(data_dir: Path):
    """The real-voice set (as "voices-test", with its study split); skipped, naming the Debian
    packages, where they are not installed (./test.sh installs them as root)."""
    from core.data import debian_sounds
    from core.data.datasets import load_dataset
    from core.data.voices_dataset import build_voices

    missing = debian_sounds.missing_packages()
    if missing:
        pytest.skip(debian_sounds.install_hint(missing))
    build_voices("voices-test", force=True)
    return load_dataset("voices-test")


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    if not FSDD.is_dir():
        pytest.skip("../shared/audio/fsdd is not present beside the checkout")
    return FSDD.parent


def wait_for(status, item_id: str, states=("finished", "failed", "cancelled"), timeout: float = 600) -> dict:
    """Poll `status(item_id)` until its state is one of `states`; fail after `timeout` seconds."""
    import time

    t0 = time.time()
    while time.time() - t0 < timeout:
        s = status(item_id)
        if s["state"] in states:
            return s
        time.sleep(0.3)
    raise AssertionError(f"{item_id} stuck in {s}")
