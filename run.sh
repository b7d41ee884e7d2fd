#!/usr/bin/env bash
# Install everything, build the embedded datasets (synthetic default; real voices where the Debian
# sound packages are installed; long recordings assembled from them) if missing, open the dashboard.
# Listens on localhost:8501 unless LAB_ADDRESS / LAB_PORT say otherwise.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh requirements.txt
.venv/bin/python -m ui.access "${LAB_ADDRESS:-localhost}"   # no open server beyond localhost without sign-in
.venv/bin/python -m core data build-default
scripts/install_sounds.sh   # Debian sound packages for the real-voice set (as root; else a message naming them)
if .venv/bin/python -c 'import sys; from core.data.debian_sounds import missing_packages; sys.exit(bool(missing_packages()))'; then
  .venv/bin/python -m core data build-voices
fi
.venv/bin/python -m core model build-base
.venv/bin/python -m core longform build   # the embedded long-form set (from voices if built, else default), if missing
export LAB_ADDRESS="${LAB_ADDRESS:-localhost}"
exec .venv/bin/streamlit run app.py \
  --server.address "${LAB_ADDRESS:-localhost}" --server.port "${LAB_PORT:-8501}" \
  --browser.gatherUsageStats false "$@"
