#!/usr/bin/env bash
# Creates .venv (once) and installs vaekit into it. Safe to re-run: a second run is a no-op check.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
# A bare "torch" requirement pulls a multi-GB CUDA build; pin the CPU build first where none is present.
if ! "$VPY" -c "import torch" 2>/dev/null; then
  "$VPY" -m pip install -q --disable-pip-version-check "torch==2.13.0"
fi
extras=${VAEKIT_EXTRAS:-}
# one marker per set of extras, so that asking for another extra (bench after test) installs it
marker=.venv/.vaekit-installed${extras:+-${extras//,/-}}
if ! "$VPY" -c "import vaekit, safetensors, sklearn, PIL, matplotlib, tqdm, pandas, sdmetrics, tokenizers, sacrebleu, constriction, starlette, uvicorn" 2>/dev/null \
   || [ ! -e "$marker" ] || [ pyproject.toml -nt "$marker" ]; then
  "$VPY" -m pip install -q --disable-pip-version-check -e ".${extras:+[$extras]}"
  touch "$marker"
fi
# The explorer's browser tests drive Debian's Chromium (Playwright is pointed at it; it downloads no browser).
if [[ ",$extras," == *",test,"* ]] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    SUDO=""
  elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
  else
    echo "setup: the browser tests need Chromium: install Debian's package 'chromium' (apt-get install chromium)" >&2
    exit 1
  fi
  echo "setup: installing Chromium for the explorer's browser tests (apt-get install chromium)"
  $SUDO apt-get update -qq || true  # stale lists only make the install below fail more clearly
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
