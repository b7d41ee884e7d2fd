"""Sign-in in a real browser: a fresh server listening beyond localhost shows nothing but the sign-in form.

Streamlit is started with `--server.address 0.0.0.0` and a token (the browser talks to it over
127.0.0.1 only). First thing on the fresh server, and again after a wrong token, every view's URL,
an unknown URL and the old `pages/`-style URLs must show the sign-in form alone: no navigation, no
other widget, no view title. Then the right token opens the lab, which proves the check can fail.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.conftest import REPO
from tests.test_browser import ARGS, CHROMIUM, SHOTS, serve

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (./test.sh installs it)"),
]
TOKEN = "browser-test-token-0123456789"
VIEWS = sorted(p.stem for p in (REPO / "views").glob("*.py"))
TITLES = re.findall(r'\("[a-z_]+", "([^"]+)", "[a-z_]+"\)', (REPO / "app.py").read_text())


@pytest.fixture(scope="module")
def exposed_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("access-lab")
    env = {"LAB_TOKEN": TOKEN, "LAB_DATA_DIR": str(root / "data"), "LAB_RESULTS_DIR": str(root / "results")}
    proc, url, log = serve("0.0.0.0", env, "access-server.log", drop=("LAB_ADDRESS", "LAB_ALLOW_OPEN", "LAB_AUTH"))
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def only_sign_in(page, url: str, shot: str, form: bool = True) -> None:
    """Open `url` in a new browser session and assert that the sign-in form is all it shows.

    With `form=False` (a nested path such as /pages/evaluate, where Streamlit's front end cannot load
    at all and the page stays blank) it asserts only that nothing of the lab shows.
    """
    page.goto(url)
    if form:
        page.get_by_label("Access token", exact=True).wait_for(timeout=60_000)
    page.wait_for_timeout(1500 if form else 5000)  # let any late script run or navigation land
    page.screenshot(path=str(SHOTS / f"access-{shot}.png"), full_page=True)
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0, f"{url}: navigation shown"
    widgets = page.locator('[data-testid="stTextInput"], [data-testid="stButton"], [data-testid="stSelectbox"]')
    assert widgets.count() == int(form), f"{url}: {widgets.count()} widgets besides the form's button"
    assert page.locator('[data-testid="stFormSubmitButton"]').count() == int(form)
    heading = page.locator("h1").all_inner_texts()
    assert heading == (["Speech Detection Lab"] if form else []), f"{url}: headings {heading}"
    for title in TITLES:
        assert page.get_by_role("heading", name=title, exact=True).count() == 0, f"{url}: view {title!r} shown"


def test_every_url_shows_only_the_sign_in_form_until_signed_in(exposed_server):
    from playwright.sync_api import sync_playwright

    urls = [""] + VIEWS + [f"pages/{v}" for v in VIEWS[:3]] + ["no_such_page", "data?x=1", "app"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for path in urls:  # first thing on the fresh server: each URL in a session of its own
            context = browser.new_context()
            shot = f"fresh-{path.replace('/', '-').replace('?', '-') or 'root'}"
            only_sign_in(context.new_page(), f"{exposed_server}/{path}", shot, form="/" not in path)
            context.close()

        context = browser.new_context()
        page = context.new_page()
        only_sign_in(page, f"{exposed_server}/evaluate", "before-wrong")
        page.get_by_label("Access token", exact=True).fill("not-the-token-at-all")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("That token is not right").wait_for()
        for path in VIEWS:  # after a wrong token, in the same browser session
            only_sign_in(page, f"{exposed_server}/{path}", f"after-wrong-{path}")

        time.sleep(1.2)  # the throttle's first wait
        page.get_by_label("Access token", exact=True).fill(TOKEN)
        page.get_by_role("button", name="Sign in").click()
        page.locator('[data-testid="stSidebarNav"]').wait_for(timeout=60_000)
        # signed in on /try_clip (the last URL tried), the lab opens on that view
        page.get_by_role("heading", name="Try a clip", exact=True).first.wait_for(timeout=60_000)
        assert page.url.endswith("/try_clip")
        page.screenshot(path=str(SHOTS / "access-signed-in.png"), full_page=True)
        browser.close()
