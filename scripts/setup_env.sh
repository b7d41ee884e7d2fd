#!/usr/bin/env bash
# Create .venv (Python 3.11, for the local torch 2.13.0 CPU wheel) and install a requirements
# file into it. Skips pip when the file has not changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
req="${1:-requirements.txt}"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=".venv/.installed-$(basename "$req")"
want="$(cat requirements*.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing $req into .venv (first time: a few minutes)…" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  echo "$want" > "$stamp"
fi
