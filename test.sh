#!/usr/bin/env bash
# Install what the tests need, lint, then run the whole test suite (extra args go to pytest).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh requirements-dev.txt
scripts/install_browser.sh
scripts/install_sounds.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
