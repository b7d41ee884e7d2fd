#!/usr/bin/env bash
# Debian's sound packages for the real-voice dataset (core/data/debian_sounds.py); nothing is
# downloaded at run or test time. As root (or with sudo) they are installed; otherwise this says
# which packages to install and the real-voice set is left out.
set -uo pipefail
PACKAGES="$(cd "$(dirname "$0")/.." && .venv/bin/python -c 'from core.data.debian_sounds import PACKAGES; print(" ".join(PACKAGES))' 2>/dev/null)"
[ -n "$PACKAGES" ] || PACKAGES="asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav klettres-data codec2-examples sound-theme-freedesktop fillets-ng-data colobot-common-sounds heroes-sound-effects frozen-bubble-data lbreakout2-data tuxpaint-data sound-icons lmms-common oxygen-sounds yaru-theme-sound chromium-bsu-data pinball-data funnyboat"
MISSING=""
for p in $PACKAGES; do [ -f "/usr/share/doc/$p/copyright" ] || MISSING="$MISSING $p"; done
[ -z "$MISSING" ] && exit 0
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "warning: not root: install the real-voice set's packages with: sudo apt-get install$MISSING" >&2
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing Debian sound packages for the real-voice dataset:$MISSING" >&2
$SUDO apt-get install -y --no-install-recommends $MISSING >/dev/null 2>&1 \
  || { $SUDO apt-get update -qq >/dev/null 2>&1 && $SUDO apt-get install -y --no-install-recommends $MISSING >/dev/null 2>&1; } \
  || echo "warning: could not install$MISSING; the real-voice dataset is left out" >&2
exit 0
