#!/usr/bin/env bash
# Creates .venv with uv inside it, on a fresh Debian/Ubuntu too (where `python3 -m venv` needs python3-venv).
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
UV_VERSION=${UV_VERSION:-0.13.8}

if ! command -v "$PYTHON" >/dev/null; then
  echo "error: $PYTHON not found; install Python >= 3.11 (Debian/Ubuntu: apt-get install python3)" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: Python >= 3.11 is needed, $PYTHON is $("$PYTHON" --version 2>&1)" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  echo "python venv support is missing; installing python3-venv with apt-get" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  ver=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  $SUDO apt-get install -y -qq "python${ver}-venv" || $SUDO apt-get install -y -qq python3-venv
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "uv==${UV_VERSION}"
