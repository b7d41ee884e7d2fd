"""The whole lab in a real browser: headless Debian Chromium driven by Playwright against `streamlit run`.

Walks a first study as the README's tour does — data, split and audit, two detectors scored on
dev and test, calibration, the threshold with its flipped clips played, a comparison with its
paired disagreements played, a training run, a condition set made, scored and drawn, an error
tagged in the user's words, the study report, a clip of one's own — and saves a screenshot of
each page under test-artifacts/browser/. No page may show a Python exception. It also times the
threshold slider on a 10^6-row table (printed, and kept in slider-latency.txt).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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


def serve(address: str, env: dict[str, str], log_name: str, drop: tuple[str, ...] = ()):
    """`streamlit run app.py` on a free port at `address` (the browser always talks to 127.0.0.1):
    (process, URL, open log file), once its health check answers."""
    port = _free_port()
    SHOTS.mkdir(parents=True, exist_ok=True)
    log = (SHOTS / log_name).open("w")  # noqa: SIM115 (closed by the caller at teardown)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address", address]
        + ["--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO,
        env={**{k: v for k, v in os.environ.items() if k not in drop}, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return proc, url, log
        except OSError:
            time.sleep(0.5)
    proc.kill()
    pytest.fail("streamlit did not start")


DIRS: dict[str, Path] = {}  # the served lab's data and results folders (empty at the start: a first visit)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app served over empty data and results folders, as a newcomer meets it; one 10^6-row predictions
    table (to time the threshold slider) is its only content, saved through core."""
    from benchmarks.bench_table_storage import table
    from core.scoring import predictions

    root = tmp_path_factory.mktemp("browser-lab")
    DIRS.update(data=root / "data", results=root / "results")
    meta = {"dataset": "synthetic-1m", "split_name": "s", "part": "test", "detector": "sim"}
    predictions.save(table(1_000_000), meta, name="big-1m", folder=DIRS["results"] / "predictions")

    proc, url, log = serve(
        "127.0.0.1", {"LAB_DATA_DIR": str(DIRS["data"]), "LAB_RESULTS_DIR": str(DIRS["results"])}, "server.log"
    )
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


def choose_containing(page, label: str, text: str) -> None:
    """Pick the first option containing `text` in the selectbox labelled `label`."""
    page.get_by_role("combobox", name=label, exact=True).first.click()
    page.get_by_role("option").filter(has_text=text).first.click()
    settle(page)


def nav(page, title: str, wait_for: str) -> None:
    """Go to a page through the sidebar, as a user does (the session, and its remembered choices, stay)."""
    sidebar = page.locator('[data-testid="stSidebarNav"]')
    link = sidebar.get_by_text(title, exact=True)
    if not link.is_visible():  # Streamlit folds a long page list: "View N more"
        sidebar.get_by_text(re.compile(r"^View \d+ more$")).first.click()
    link.click()
    page.get_by_text(wait_for, exact=False).first.wait_for()
    settle(page)


def wait_jobs(page, section: str, n: int, timeout_ms: int = 600_000) -> None:
    """Wait until `section` lists at least `n` finished jobs and none running or queued."""
    page.wait_for_function(
        """([section, n]) => {
            const text = document.body.innerText;
            const at = text.indexOf(section);
            if (at < 0) return false;
            const part = text.slice(at);
            const done = (part.match(/finished · started/g) || []).length;
            return done >= n && !/(running|queued) · started/.test(part) && !/failed · started/.test(part);
        }""",
        arg=[section, n],
        timeout=timeout_ms,
    )
    settle(page)


def selected(page, label: str) -> str:
    """The shown value of the selectbox labelled `label` (a searchable input holds it, not text)."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    return box.evaluate("b => [...b.querySelectorAll('input')].map(i => i.value).join(' ') + ' ' + b.innerText")


def number_box(page, label: str):
    return page.locator('[data-testid="stNumberInput"]').filter(has_text=label).locator("input").first


def slider_latency(page, label: str, presses: int = 7) -> list[float]:
    """Seconds from an arrow key on the slider to a changed Accuracy figure, per press (browser clock)."""
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text=label).get_by_role("slider").first
    times = []
    for _ in range(presses):
        before = metric(page, "Accuracy")
        thumb.focus()
        t0 = page.evaluate("performance.now()")
        thumb.press("ArrowRight")
        page.wait_for_function(
            """(before) => {
                const box = [...document.querySelectorAll('[data-testid="stMetric"]')]
                    .find(m => m.innerText.startsWith('Accuracy'));
                const v = box && box.querySelector('[data-testid="stMetricValue"]').innerText;
                if (v && v !== before) { window.__t1 = performance.now(); return true; }
                return false;
            }""",
            arg=before,
            timeout=30_000,
            polling="raf",
        )
        times.append((page.evaluate("window.__t1") - t0) / 1000)
        settle(page, 200)
    return times


def test_a_whole_study_in_chromium(page, server):
    """A first study, as in the README's tour: every step through the pages, screenshots for review."""
    # 1 Data: nothing yet; build the embedded dataset from the page, then play a clip
    open_page(page, server, "", "No dataset yet")
    page.get_by_role("button", name="Build the embedded default dataset").click()
    page.locator("audio").first.wait_for(state="attached", timeout=300_000)
    settle(page)
    play_first_audio(page)
    check(page, "01-data")

    # 2 Split & leakage audit: make a split, audit it
    nav(page, "Split & leakage audit", "Make a split")
    name = page.locator('[data-testid="stTextInput"]').filter(has_text="Split name").locator("input")
    name.fill("browser")
    page.get_by_role("button", name="Make and save split").click()
    page.get_by_text("saved split 'browser'").wait_for()
    settle(page)
    page.get_by_role("button", name="Run audit").click()
    page.get_by_text("clean", exact=True).first.wait_for(timeout=180_000)
    check(page, "02-split-audit")

    # 3 Evaluate: two detectors on dev and test, background jobs with their command lines
    nav(page, "Evaluate", "Start scoring")
    page.get_by_text(re.compile(r"^big-1m — ")).first.wait_for()  # only the latency test's table so far
    choose(page, "Split", "browser")
    for detector in ("lab-base", "silero-vad"):
        choose_containing(page, "Detector", detector)
        for part in ("dev", "test"):
            choose(page, "Part", part)
            page.get_by_role("button", name="Start scoring").click()
            settle(page)
    wait_jobs(page, "Scoring jobs", 4)
    # the new tables appear when the jobs end, without leaving the page (the view once stayed stale):
    # the newest table is described under the listing
    page.get_by_text(re.compile(r"^default-browser-(dev|test)-.* — ")).first.wait_for(timeout=30_000)
    assert "silero-vad on default/browser/test" in page.locator("body").inner_text()
    page.get_by_text("command line").first.click()
    assert "python -m core evaluate" in page.locator("body").inner_text()
    check(page, "03-evaluate")

    # 4 Calibration: the lab base model's test table, its dev table paired automatically
    nav(page, "Calibration", "Judge on")
    choose_containing(page, "Judge on (test table)", "lab-base · default/browser/test")
    assert "✓ paired" in selected(page, "Dev table") and "fitted on" in page.locator("body").inner_text()
    page.locator(".js-plotly-plot").nth(1).wait_for(timeout=60_000)  # drawn after the script run, later under load
    assert page.locator(".js-plotly-plot").count() >= 2
    check(page, "04-calibration")

    # 5 Thresholds (the table chosen on Calibration stays chosen): drag, the clips that flip are listed and play
    nav(page, "Thresholds", "Decision threshold")
    assert "lab-base · default/browser/test" in selected(page, "Test table (judge on)")
    before = metric(page, "Accuracy")
    widget = page.locator('[data-testid="stSlider"]').filter(has_text="Decision threshold")
    thumb = widget.get_by_role("slider").first.bounding_box()
    track = widget.locator('[role="group"] > div').first.bounding_box()
    y = thumb["y"] + thumb["height"] / 2
    page.mouse.move(thumb["x"] + thumb["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * 0.6, y, steps=15)  # towards +4 log-odds
    page.mouse.up()
    settle(page)
    assert metric(page, "Accuracy") != before
    assert float(number_box(page, "type it").input_value()) > 1  # the typed field follows the slider
    page.get_by_text("clips flip:").first.wait_for()
    play_first_audio(page)  # a flipped clip
    page.get_by_role("button", name="Apply dev threshold").first.click()
    settle(page)
    check(page, "05-thresholds")

    # 6 Compare: lab-base vs Silero on the same test clips; verdict; paired disagreements play
    nav(page, "Compare", "Detector A")
    choose_containing(page, "Detector A (predictions table)", "lab-base · default/browser/test")
    choose_containing(page, "Detector B (scored on the same clips)", "silero-vad · default/browser/test")
    body = page.locator("body").inner_text()
    assert "Verdict." in body and "Paired disagreements" in body and "right, B wrong" in body
    play_first_audio(page)
    check(page, "06-compare")

    # 7 Runs: a tiny training run, watched to the end, with its command line
    nav(page, "Runs", "Launch")
    choose(page, "Split", "browser (clean)")  # the audit status beside each split
    for label, value in (("Epochs", "1"), ("Cap train clips", "48")):
        number_box(page, label).fill(value)
        number_box(page, label).press("Enter")  # Enter commits the field; it once launched a run
    settle(page, 2000)
    assert page.get_by_text("No runs yet").count() == 1  # nothing launched by the Enter key
    page.get_by_role("button", name="Launch").click()
    page.get_by_text("finished: test balanced accuracy").first.wait_for(timeout=600_000)
    page.get_by_text("Final metrics").first.wait_for()
    assert page.locator('[data-testid="stAlert"]').filter(has_text="started").count() == 0  # no stale banner
    check(page, "07-runs")

    # 8 Psychometrics: make a condition set, reload (its job is still listed), score it, read the curves
    nav(page, "Psychometrics", "Three steps")
    choose(page, "Split", "browser")
    number_box(page, "Base clips per label").fill("3")
    page.locator('[data-testid="stTextInput"]').filter(has_text="New dataset name").locator("input").fill("browser-psy")
    page.get_by_role("button", name="Generate").click()
    wait_jobs(page, "Condition-set jobs", 1)
    page.reload()
    page.get_by_text("conditions browser-psy").first.wait_for()  # the job's status survived the reload
    settle(page)
    choose(page, "Condition set", "browser-psy")
    page.get_by_role("button", name="Score", exact=True).click()
    wait_jobs(page, "Scoring jobs", 2)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    assert "silero-vad" in page.locator(".js-plotly-plot").first.text_content()  # its curve's legend
    assert page.get_by_text("Thresholds", exact=True).count() >= 1 and page.get_by_text("Scoring jobs").count() == 1
    check(page, "08-psychometrics")

    # 9 Errors: misclassified clips, play one, tag it in our own words
    nav(page, "Errors", "Consistently wrong")
    choose(page, "Show", "misclassified (any run)")
    assert "✗ wrong" in page.locator("body").inner_text()
    play_first_audio(page)
    page.locator('[data-testid="stTextInput"]').filter(has_text="your own tag").locator("input").fill("browser tag")
    page.get_by_role("button", name="Tag clip").click()
    page.get_by_text(": browser tag (saved in").first.wait_for()
    check(page, "09-errors")

    # 9b Decide or abstain: a rule fitted on dev, read off the risk-coverage curves of both detectors
    nav(page, "Decide or abstain", "Abstained clips")
    choose_containing(page, "Test table (judge on)", "lab-base · default/browser/test")
    page.get_by_text("Risk–coverage").first.wait_for()
    curve = page.locator(".js-plotly-plot").first
    curve.wait_for(timeout=60_000)
    legend = curve.text_content()
    assert "lab-base" in legend and "silero-vad" in legend and "fraction decided" in legend
    assert metric(page, "Decided on test").endswith("%")
    check(page, "09b-decide")

    # 9c Label issues: the most likely wrong label of the lab base model's test table, heard, then relabelled
    nav(page, "Label issues", "Most likely wrong first")
    choose_containing(page, "Scores (an out-of-fold table is best)", "lab-base · default/browser/test")
    assert int(metric(page, "Flagged clips")) > 0
    play_first_audio(page)
    page.locator('[data-testid="stTextInput"]').filter(has_text="Why").locator("input").fill("heard it")
    page.get_by_role("button", name="Relabel →").click()
    page.get_by_text("relabelled").first.wait_for()
    relabels_csv = DIRS["data"] / "datasets" / "default" / "relabels.csv"
    assert relabels_csv.exists() and "heard it" in relabels_csv.read_text()
    check(page, "09c-label-issues")

    # 9d Map of clips: compute the map of the lab base model's test table (a job), lasso a region, hear a clip
    nav(page, "Map of clips", "Each point is a clip")
    choose_containing(page, "Table", "lab-base · default/browser/test")
    page.get_by_role("button", name="Compute the map").click()
    page.get_by_text("No region selected yet").first.wait_for(timeout=180_000)  # the page redraws when it ends
    settle(page, 1500)
    plot = page.locator('[data-testid="stPlotlyChart"] .nsewdrag').first
    box = plot.bounding_box()
    cx, cy, rx, ry = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"] * 0.3, box["height"] * 0.3
    page.mouse.move(cx - rx, cy - ry)
    page.mouse.down()
    for x, y in ((cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry), (cx - rx, cy - ry + 2)):
        page.mouse.move(x, y, steps=12)  # a lasso round the middle of the map
    page.mouse.up()
    page.get_by_text("Error inside").first.wait_for(timeout=60_000)
    assert int(metric(page, "Clips selected")) > 0
    play_first_audio(page)  # a clip of the selection, from the grid
    check(page, "09d-map")

    # 10 Study report: written, with its tables
    nav(page, "Study report", "Write the report")
    choose(page, "Split", "browser")
    page.get_by_role("button", name="Write the report").click()
    page.get_by_text("Report:").first.wait_for(timeout=300_000)
    report = DIRS["results"] / "reports" / "default-browser" / "report.html"
    assert report.exists() and "Comparisons" in report.read_text() and "Trust: decide or abstain" in report.read_text()
    assert (report.parent / "tables" / "detectors.tex").exists()
    html_text = report.read_text()
    assert "#ef6c00" in html_text and "#1565c0" in html_text  # reliability: before and after in two colours
    assert "<h2>Recipe" in html_text and (report.parent / "recipe.sh").exists()
    check(page, "10-report")

    # Timeline: build the embedded long-form set, score its test part with Silero (a job), open a
    # recording, move the onset threshold (the error figure follows) and play a miss
    nav(page, "Timeline", "Where is the speech")
    page.get_by_role("button", name="Build the embedded long-form set from 'default'").click()
    page.get_by_text("Score recordings over time").first.wait_for(timeout=120_000)
    settle(page)
    choose(page, "Part", "test")
    page.get_by_role("button", name="Start scoring").click()
    wait_jobs(page, "Scoring jobs", 1)
    nav(page, "Timeline", "Where is the speech")  # the finished table is listed on the next run
    page.get_by_text("Detection error rate").first.wait_for(timeout=60_000)
    box = page.get_by_role("combobox", name="Recording", exact=True).first
    box.click()
    box.fill("test-001")  # a searchable selectbox: type, then take the match
    box.press("Enter")
    settle(page)
    assert "test-001" in selected(page, "Recording")
    before = metric(page, "Detection error rate")
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Onset").get_by_role("slider").first
    thumb.focus()
    for _ in range(35):  # 0.50 → 0.85: fewer frames reach the onset, so speech is missed
        thumb.press("ArrowRight")
    page.wait_for_function(  # the rerun that follows the last key press
        """(before) => {
            const box = [...document.querySelectorAll('[data-testid="stMetric"]')]
                .find(m => m.innerText.startsWith('Detection error rate'));
            const v = box && box.querySelector('[data-testid="stMetricValue"]').innerText;
            return v && v !== before;
        }""",
        arg=before,
        timeout=30_000,
    )
    settle(page)
    assert "0.85" in page.locator('[data-testid="stSlider"]').filter(has_text="Onset").inner_text()
    page.get_by_text("Misses and false alarms, longest first").first.wait_for()
    play_first_audio(page)  # the longest miss or false alarm, with context
    check(page, "10b-timeline")

    # Try a clip: upload a WAV, every offline detector scores it
    wav = next((DIRS["data"] / "datasets" / "default").rglob("*.wav"))  # a clip the page built
    nav(page, "Try a clip", "Upload")
    page.locator('input[type="file"]').first.set_input_files(str(wav))
    page.get_by_text("p(speech)").first.wait_for(timeout=120_000)
    settle(page)
    body = page.locator("body").inner_text()
    assert all(d in body for d in ("lab-base", "silero-vad", "webrtc-vad"))
    assert "run:" in body  # the run fine-tuned above scores the uploaded clip too
    check(page, "11-try-a-clip")

    # The slider at 10^6 rows: time from a key press to a changed figure (printed, kept with the screenshots)
    nav(page, "Thresholds", "Decision threshold")
    choose_containing(page, "Test table (judge on)", "synthetic-1m")
    page.get_by_text("Accuracy").first.wait_for()
    times = sorted(slider_latency(page, "Decision threshold"))
    line = (
        f"threshold slider, 10^6-row table: key press -> new accuracy shown in {1000 * times[len(times) // 2]:.0f} ms "
        f"(median of {len(times)}; min {1000 * times[0]:.0f}, max {1000 * times[-1]:.0f})"
    )
    print(line)
    (SHOTS / "slider-latency.txt").write_text(line + "\n")
    check(page, "12-thresholds-1m")


def test_a_killed_sweep_is_resumed_from_the_runs_page(page, server, monkeypatch):
    """A sweep whose worker was killed reads failed on the Runs page, with the command that resumes
    it; pressing "Resume sweep" there finishes both of its runs (uses the walk's split "browser")."""
    import json
    import signal

    from core.runs import registry, sweeps
    from core.runs.train_config import TrainConfig
    from tests.conftest import wait_for

    monkeypatch.setenv("LAB_DATA_DIR", str(DIRS["data"]))  # the served lab's folders, as the server sees them
    monkeypatch.setenv("LAB_RESULTS_DIR", str(DIRS["results"]))
    cfg = TrainConfig(dataset="default", split="browser", max_train_clips=48, max_dev_clips=48, epochs=1)
    sweep = sweeps.create_sweep(cfg, {"lora_r": [4]}, [0, 1], parallel=1)
    first, second = sweeps.sweep_status(sweep)["runs"]
    wait_for(registry.status, first, ("running", "finished"))
    worker = json.loads((sweeps.sweeps_dir() / sweep / "pid.json").read_text())["pid"]
    os.kill(worker, signal.SIGKILL)  # the worker only: the run it started goes on
    wait_for(registry.status, first)

    nav(page, "Runs", "Launch")
    page.get_by_text("Sweep results").first.wait_for()
    assert sweep in selected(page, "Sweep")  # the only sweep
    caption = page.get_by_text(f"python -m core sweep resume {sweep}").first
    caption.wait_for()
    assert caption.inner_text().startswith("failed") and "1 queued" in caption.inner_text()
    page.get_by_role("button", name="Resume sweep").click()
    page.get_by_text(f"sweep {sweep} resumed").first.wait_for()  # the page's toast
    wait_for(sweeps.sweep_status, sweep, ("queued", "running", "finished"), timeout=60)  # no longer failed
    st = wait_for(sweeps.sweep_status, sweep)
    assert st["state"] == "finished" and st["run_states"] == {"finished": 2}, st
    assert registry.status(second)["state"] == "finished"
    nav(page, "Data", "Data")  # back to Runs: the sweep reads finished, its matrix lists both seeds
    nav(page, "Runs", "Launch")
    page.get_by_text("Sweep results").first.wait_for()
    assert page.get_by_text("Resume sweep").count() == 0
    page.get_by_text("finished: 2/2 runs finished").first.wait_for()
    check(page, "13-sweep-resumed")
