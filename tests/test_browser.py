"""The whole lab in a real browser: headless Debian Chromium driven by Playwright against `streamlit run`.

Walks every page as a user would — play a clip, make and audit a split, train a tiny run and
watch it finish, calibrate, drag the threshold slider, read psychometric curves, play a
misclassified clip — and saves a screenshot of each page under test-artifacts/browser/.
No page may show a Python exception.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = REPO / "test-artifacts" / "browser"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (./test.sh installs it)"),
]
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(default_ds):
    """Psychometric predictions prepared through core, then the app served on a free localhost port."""
    from core.data import conditions as cond
    from core.data.datasets import load_dataset
    from core.data.splits import make_split, save_split
    from core.detectors import make_detector
    from core.scoring.evaluate import evaluate

    save_split(default_ds, "browser-psy-src", make_split(default_ds.manifest, seed=31), {"seed": 31})
    spec = cond.ConditionSpec(durations_ms=(20, 80, 200, 1000), snrs_db=(-10.0, 0.0, 20.0), bases_per_label=3)
    cond.generate(default_ds, "browser-psy-src", "test", "browser-psy", spec, force=True)
    evaluate(load_dataset("browser-psy"), "conditions", "test", make_detector("silero-vad"), batch_size=64)

    port = _free_port()
    SHOTS.mkdir(parents=True, exist_ok=True)
    log = (SHOTS / "server.log").open("w")  # noqa: SIM115 (closed at teardown)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1500, "height": 1000})
        pg.set_default_timeout(60_000)
        yield pg
        pg.screenshot(path=str(SHOTS / "last.png"), full_page=True)  # where the walk ended (or failed)
        browser.close()


def settle(page, extra_ms: int = 400) -> None:
    """Wait until Streamlit has finished running the script (its status widget is gone)."""
    page.wait_for_timeout(extra_ms)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000)
    page.wait_for_timeout(extra_ms)


def check(page, name: str) -> None:
    settle(page)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, f"{name}: {errors.first.inner_text()[:2000]}"


def open_page(page, server: str, path: str, wait_for: str) -> None:
    page.goto(f"{server}/{path}")
    page.get_by_text(wait_for, exact=False).first.wait_for()
    settle(page)


def choose(page, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label`."""
    page.get_by_role("combobox", name=label, exact=True).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def play_first_audio(page) -> None:
    audio = page.locator("audio").first
    audio.wait_for(state="attached")
    audio.evaluate("a => a.play()")
    page.wait_for_function(
        "() => { const a = document.querySelector('audio'); return a && !a.paused && "
        "a.readyState >= 2 && a.currentTime > 0; }",
        timeout=20_000,
    )


def metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text()


def test_the_whole_lab_in_chromium(page, server):
    # Data: browse and press play on a clip
    open_page(page, server, "", "Data")
    play_first_audio(page)
    check(page, "01-data")

    # Split & leakage audit: make a split, audit it
    open_page(page, server, "split_audit", "Make a split")
    name = page.locator('[data-testid="stTextInput"]').filter(has_text="Split name").locator("input")
    name.fill("browser")
    page.get_by_role("button", name="Make and save split").click()
    page.get_by_text("saved split 'browser'").wait_for()
    settle(page)
    page.get_by_role("button", name="Run audit").click()
    page.get_by_text("clean", exact=True).first.wait_for(timeout=180_000)
    check(page, "02-split-audit")

    # Runs: launch a tiny training run and see it finish
    open_page(page, server, "runs", "Launch")
    choose(page, "Split", "browser (clean)")  # the audit status beside each split
    for label, value in (("Epochs", "1"), ("Cap train clips", "48")):
        box = page.locator('[data-testid="stNumberInput"]').filter(has_text=label).locator("input").first
        box.fill(value)
    page.get_by_role("button", name="Launch").click()
    page.get_by_text("started").first.wait_for()
    page.get_by_text("finished: test balanced accuracy").first.wait_for(timeout=600_000)
    page.get_by_text("Final metrics").first.wait_for()
    check(page, "03-runs")

    # Calibration of that run: dev-fitted temperature, reliability diagrams
    open_page(page, server, "calibration", "Fit on")
    assert "fitted on" in page.locator("body").inner_text()
    assert page.locator(".js-plotly-plot").count() >= 2
    check(page, "04-calibration")

    # Thresholds: drag the threshold slider, accuracy changes
    open_page(page, server, "thresholds", "Decision threshold")
    before = metric(page, "Accuracy")
    widget = page.locator('[data-testid="stSlider"]').filter(has_text="Decision threshold")
    thumb = widget.locator('input[type="range"]').locator("xpath=../..").bounding_box()
    track = widget.locator('[role="group"] > div').first.bounding_box()
    y = thumb["y"] + thumb["height"] / 2
    page.mouse.move(thumb["x"] + thumb["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * 0.9, y, steps=15)  # drag towards +8 log-odds
    page.mouse.up()
    settle(page)
    after = metric(page, "Accuracy")
    assert after != before, (before, after)
    assert float(widget.locator('input[type="range"]').get_attribute("value")) > 5
    check(page, "05-thresholds")

    # Compare
    open_page(page, server, "compare", "Model A")
    check(page, "06-compare")

    # Psychometrics: curves of the condition set
    open_page(page, server, "psychometrics", "Predictions tables")
    page.locator(".js-plotly-plot").first.wait_for()
    assert "silero-vad" in page.locator(".js-plotly-plot").first.text_content()  # its curve's legend
    assert "Thresholds" in page.locator("body").inner_text()
    check(page, "07-psychometrics")

    # Errors: misclassified clips, play one
    open_page(page, server, "errors", "Consistently wrong")
    choose(page, "Show", "misclassified (any run)")
    assert "❌" in page.locator("body").inner_text()  # the selected clip is wrong in some run
    play_first_audio(page)
    check(page, "08-errors")

    # Evaluate page renders its tables
    open_page(page, server, "evaluate", "Predictions tables")
    check(page, "09-evaluate")
