#!/usr/bin/env bash
# Debian's Chromium for the real-browser test (tests/test_browser.py); nothing is downloaded at test time.
# Playwright (requirements-dev.txt) drives this system browser; it never fetches its own.
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "warning: not root and no sudo: cannot install chromium; the browser test will be skipped" >&2
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing Debian chromium for the browser test..." >&2
$SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
  || { $SUDO apt-get update -qq >/dev/null 2>&1 && $SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; } \
  || echo "warning: could not install chromium; the browser test will be skipped" >&2
exit 0
