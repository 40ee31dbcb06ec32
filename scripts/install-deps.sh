#!/usr/bin/env bash
# Installs everything imp needs on a fresh Debian 12 machine; safe to run again.
#   - Debian packages: compiler, CMake, Ninja, and the libraries imp links.
#   - .venv: the Python packages the reference tests compare against (pinned).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(build-essential cmake ninja-build clang libclang-rt-14-dev python3-venv
              nlohmann-json3-dev libcli11-dev libfmt-dev googletest libgtest-dev libbenchmark-dev
              pkg-config libpcre2-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
REQS=scripts/requirements-test.txt
STAMP=.venv/.requirements.sha
if [ ! -f "$STAMP" ] || ! sha256sum --status -c "$STAMP" 2>/dev/null; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r "$REQS"
  sha256sum "$REQS" > "$STAMP"
fi
