#!/usr/bin/env bash
# Install everything vdbbench needs on a fresh Debian/Ubuntu machine: Debian packages,
# a virtual environment in .venv with vdbbench and every store client, and the engines
# that run without Docker. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# -- Debian packages -------------------------------------------------------------------
# python3-venv: the venv; dataset-fashion-mnist: the default sweep's data;
# chromium: the report's rendering test; wordnet-base, manpages-ja: offline text corpora.
DEB_PACKAGES="python3-venv dataset-fashion-mnist chromium wordnet-base manpages-ja"
missing=""
for p in $DEB_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

# -- Python environment ----------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.vdbbench-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/setup.sh -nt "$stamp" ]; then
  echo "setup: installing vdbbench and store clients into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[all,test]"
  touch "$stamp"
fi
echo "setup: ready (.venv)"
