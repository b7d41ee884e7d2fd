"""Who may use a lab that listens beyond localhost, and which folders its path fields may name.

On localhost only the person at the machine can reach the dashboard. Served to a network
(`LAB_ADDRESS=0.0.0.0`), anyone who reaches the port could launch training, read folders through
a path field or tag clips, so the lab then requires sign-in:
- Streamlit's own `st.login` with an OpenID Connect provider, when `.streamlit/secrets.toml` has
  an `[auth]` section (see Streamlit's authentication docs); or
- a shared token: `LAB_TOKEN=...` in the server's environment, typed once per browser session;
- or a reverse proxy that authenticates users, declared with `LAB_AUTH=proxy` (the lab then
  trusts the proxy: bind it to 127.0.0.1 behind the proxy).
With none of these it refuses to start (run.sh) and to render (app.py), unless the operator says
`LAB_ALLOW_OPEN=1` explicitly. Path fields (models, adapters, noise folders, import sources)
then accept only folders under the allowed roots: `LAB_ALLOWED_PATHS` (':'-separated), by
default the data and results folders, the lab's models and the Hugging Face cache.

The pure functions here import no Streamlit, so run.sh can call `python -m ui.access` first.
"""

from __future__ import annotations

import hmac
import os
import sys
import threading
import time
from pathlib import Path

LOCAL = {"localhost", "127.0.0.1", "::1", ""}


def exposed(address: str) -> bool:
    """True when the server listens beyond this machine."""
    return address.strip().lower() not in LOCAL


def auth_mode(secrets_has_auth: bool = False) -> str:
    """'oidc', 'token', 'proxy', 'open' (explicitly allowed) or 'none' (refuse to serve)."""
    if secrets_has_auth:
        return "oidc"
    if os.environ.get("LAB_TOKEN"):
        return "token"
    if os.environ.get("LAB_AUTH", "").lower() == "proxy":
        return "proxy"
    if os.environ.get("LAB_ALLOW_OPEN") == "1":
        return "open"
    return "none"


def refusal(address: str, secrets_has_auth: bool = False) -> str:
    """Why the lab must not serve on `address` as configured ("" when it may)."""
    if not exposed(address):
        return ""
    mode = auth_mode(secrets_has_auth)
    if mode == "token" and token_problem():
        return f"refusing to serve on {address!r}: {token_problem()}"
    if mode != "none":
        return ""
    return (
        f"refusing to serve on {address!r} without sign-in: anyone who reaches the port could launch training and "
        "read folders. Set LAB_TOKEN=<a long random string> (users type it once), configure [auth] in "
        ".streamlit/secrets.toml for Streamlit's login, put an authenticating reverse proxy in front "
        "(LAB_AUTH=proxy), or set LAB_ALLOW_OPEN=1 to serve without sign-in on purpose."
    )


def token_ok(typed: str) -> bool:
    """Constant-time comparison with LAB_TOKEN."""
    want = os.environ.get("LAB_TOKEN", "")
    return bool(want) and hmac.compare_digest(typed.encode(), want.encode())


def allowed_roots(address: str) -> list[Path] | None:
    """Folders path fields may name: LAB_ALLOWED_PATHS, or when served beyond localhost the defaults; None = any."""
    from core.paths import data_root, repo_root, results_root

    env = os.environ.get("LAB_ALLOWED_PATHS")
    if env:
        return [Path(p).expanduser().resolve() for p in env.split(":") if p.strip()]
    if not exposed(address):
        return None
    from huggingface_hub.constants import HF_HUB_CACHE

    return [
        data_root().resolve(),
        results_root().resolve(),
        (repo_root() / "models").resolve(),
        Path(HF_HUB_CACHE).resolve(),
    ]


def check_path(path: str, what: str, address: str) -> str:
    """`path` if it may be used; a message (LabError) naming the allowed folders otherwise."""
    from core.errors import LabError

    roots = allowed_roots(address)
    if roots is None or not str(path).strip():
        return path
    raw = Path(path).expanduser()
    if not (str(path).startswith(("/", "~", ".")) or raw.exists()):
        return path  # a hub id ("org/name"): read from the model cache, an allowed root, if at all
    resolved = raw.resolve()
    if any(resolved == r or r in resolved.parents for r in roots):
        return path
    raise LabError(
        f"{what} {path!r} is outside the folders this lab may read ({', '.join(map(str, roots))}); "
        "the operator sets them with LAB_ALLOWED_PATHS"
    )


def server_address() -> str:
    """The address this dashboard listens on: LAB_ADDRESS (run.sh passes it), else Streamlit's option."""
    import streamlit as st

    return os.environ.get("LAB_ADDRESS") or str(st.get_option("server.address") or "localhost")


def page_path(path: str, what: str) -> str:
    """For pages: `check_path` against this server's address."""
    return check_path(path, what, server_address())


MIN_TOKEN_LENGTH = 16


def token_problem() -> str:
    """Why LAB_TOKEN cannot protect the lab ("" when it can): a short token is guessed, not typed."""
    token = os.environ.get("LAB_TOKEN", "")
    if token and len(token) < MIN_TOKEN_LENGTH:
        return (
            f"LAB_TOKEN is {len(token)} characters long; use at least {MIN_TOKEN_LENGTH}, for example "
            "python -c 'import secrets; print(secrets.token_urlsafe(24))'"
        )
    return ""


class SignInThrottle:
    """Slows guessing: after each wrong token every session waits longer before the next try is checked.

    Counted per server process, not per browser session, because a new session costs an attacker
    nothing. The wait doubles from 1 s to at most `cap` s and the count forgets after `forget` s
    without a wrong token; a right token resets it.
    """

    def __init__(self, cap: float = 60.0, forget: float = 900.0) -> None:
        self.cap, self.forget = cap, forget
        self.failures = 0
        self.last = -float("inf")
        self._lock = threading.Lock()

    def wait(self, now: float) -> float:
        """Seconds until a try may be checked (0 when it may be now)."""
        with self._lock:
            if now - self.last > self.forget:
                self.failures = 0
            if not self.failures:
                return 0.0
            return max(0.0, self.last + min(self.cap, 2.0 ** (self.failures - 1)) - now)

    def failed(self, now: float) -> None:
        with self._lock:
            self.failures = 0 if now - self.last > self.forget else self.failures
            self.failures += 1
            self.last = now

    def succeeded(self) -> None:
        with self._lock:
            self.failures = 0


THROTTLE = SignInThrottle()


def _has_auth_secrets() -> bool:
    import streamlit as st

    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def gate() -> bool:
    """True when this browser session may use the lab; app.py otherwise navigates to `sign_in` alone.

    app.py always calls `st.navigation`, with the views or with this sign-in page only, so every URL
    (`/evaluate`, `/runs`, an unknown one) resolves to the sign-in page until the session has signed
    in. The views live in `views/`, not `pages/`: with a `pages/` folder beside app.py Streamlit
    would run those files by their URL, without app.py, whenever a run stopped before navigation.
    """
    import streamlit as st

    address = server_address()
    if not exposed(address):
        return True
    mode = auth_mode(_has_auth_secrets())
    if mode == "none" or (mode == "token" and token_problem()):
        return False
    if mode == "oidc":
        return bool(st.user.is_logged_in)
    if mode == "token":
        return bool(st.session_state.get("lab_signed_in"))
    if mode == "open":
        st.sidebar.warning("Served without sign-in (LAB_ALLOW_OPEN=1).")
    return True


def sign_in() -> None:
    """The only page a session sees before it may use the lab: a sign-in form, or why none can work."""
    import streamlit as st

    address = server_address()
    mode = auth_mode(_has_auth_secrets())
    st.title("Speech Detection Lab")
    if mode == "none":
        st.error(refusal(address))
        return
    if mode == "token" and token_problem():
        st.error(f"Sign-in is off until the operator fixes it: {token_problem()}.")
        return
    if mode == "oidc":
        st.button("Log in", on_click=st.login, type="primary")
        return
    with st.form("sign_in"):
        typed = st.text_input("Access token", type="password", help="Ask whoever runs this lab (LAB_TOKEN)")
        go = st.form_submit_button("Sign in", type="primary")
    if not go:
        return
    wait = THROTTLE.wait(time.monotonic())
    if wait > 0:
        st.error(f"Too many wrong tokens: try again in {wait:.0f} s.")
        return
    if token_ok(typed):
        THROTTLE.succeeded()
        st.session_state["lab_signed_in"] = True
        st.rerun()
    THROTTLE.failed(time.monotonic())
    st.error("That token is not right.")


def main(argv: list[str]) -> int:
    """`python -m ui.access ADDRESS`: exit 2 with the reason when serving there would be open."""
    address = argv[0] if argv else "localhost"
    secrets = Path(".streamlit/secrets.toml")
    has_auth = secrets.is_file() and "[auth" in secrets.read_text(errors="replace")
    why = refusal(address, has_auth)
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
