#!/usr/bin/env bash
# Create (or update) ./.venv with interplab installed, offline-friendly and CPU-only.
#   bash scripts/install.sh          runtime + report extras (enough for `interplab bench`)
#   bash scripts/install.sh --dev    + test and optional-model extras (what the tests need)
# PyTorch goes in first as the CPU build 2.13.0, so nothing pulls a multi-GB CUDA wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="report"
if [[ "${1:-}" == "--dev" ]]; then extras="dev"; fi
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null \
  || .venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
.venv/bin/python -c "import torch, interplab; print(f'interplab {interplab.__version__} with torch {torch.__version__} in .venv')"
