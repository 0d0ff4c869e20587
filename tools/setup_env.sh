#!/usr/bin/env bash
# Create .venv (if missing) and install what is missing into it, idempotently.
#
#   torch : an importable torch is kept (e.g. a user's CUDA build, visible through
#           --system-site-packages); otherwise torch==2.13.0 is installed.
#   mmcv  : 2.1.0 built from source with its ops (CPU ops always, CUDA ops when
#           torch has CUDA and nvcc is found). Skipped when mmcv 2.1.0 with ops
#           already imports, so a second run never rebuilds it.
#   rest  : pinned in requirements/*.txt, plus this package in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY_HOST=${PYTHON:-python3}
EXTRA=${1:-}   # "tests" to add the test requirements

if [ ! -x "$VENV/bin/python" ]; then
  if "$PY_HOST" -c 'import torch' >/dev/null 2>&1; then
    echo "[setup] host python has torch: creating $VENV with --system-site-packages to keep it"
    "$PY_HOST" -m venv --system-site-packages "$VENV"
  else
    "$PY_HOST" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
PIP="$PY -m pip --disable-pip-version-check"

if ! $PY -c 'import torch' >/dev/null 2>&1; then
  echo "[setup] installing torch==2.13.0"
  $PIP install -q torch==2.13.0
fi

stamp="$VENV/.lt_runtime_$(cat requirements/runtime.txt setup.py 2>/dev/null | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "[setup] installing pinned runtime requirements"
  $PIP install -q -r requirements/runtime.txt
fi

if ! $PY -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' >/dev/null 2>&1; then
  echo "[setup] building mmcv 2.1.0 with ops from source (about 12 minutes on 2 cores; cached by pip afterwards)"
  # mmcv's setup.py imports pkg_resources: setuptools < 70, pinned *after* torch
  # (torch's own setuptools requirement would otherwise pull a newer one back in).
  $PIP install -q "setuptools<70" wheel ninja
  if $PY -c 'import sys, torch; sys.exit(0 if torch.version.cuda else 1)' && command -v nvcc >/dev/null 2>&1; then
    export FORCE_CUDA=1
  else
    export FORCE_CUDA=0
  fi
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} $PIP install --no-build-isolation --no-deps mmcv==2.1.0
fi

if [ ! -f "$stamp" ]; then
  $PIP install -q --no-build-isolation --no-deps -e .
  touch "$stamp"
fi

# the test requirements are stamped by their content, so that a new pin
# (e.g. triton for the EFL kernel's interpreter tests) reaches an existing .venv
tests_stamp="$VENV/.lt_tests_$(cat requirements/tests.txt | sha1sum | cut -c1-12)"
if [ "$EXTRA" = "tests" ] && [ ! -f "$tests_stamp" ]; then
  $PIP install -q -r requirements/tests.txt
  touch "$tests_stamp"
fi
