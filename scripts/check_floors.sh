#!/usr/bin/env bash
# The declared dependency floors, proven: the floors (pyproject.toml) of the libraries whose APIs
# low_metric calls, with the companions they pin (scripts/check_floors.py), go into an overlay
# (.venv-floors: pip --target --no-deps, over .venv: no second torch), are checked to be what Python
# imports and mutually compatible, then run the encoder, publishing, Space-build and metric tests.
# Usage: bash scripts/check_floors.sh (after scripts/setup.sh). A few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OVERLAY="$PWD/.venv-floors"
rm -rf "$OVERLAY"  # pip --target keeps an older copy beside a newer one: start from nothing
# shellcheck disable=SC2046  # one word per pin
"$PY" -m pip install --quiet --target "$OVERLAY" --no-deps $("$PY" scripts/check_floors.py --pins)
export PYTHONPATH="$OVERLAY${PYTHONPATH:+:$PYTHONPATH}" LOW_METRIC_FLOORS="$OVERLAY" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-2}"
"$PY" scripts/check_floors.py
"$PY" -m pytest -q -p no:cacheprovider tests/test_encoders.py tests/test_diffusion.py tests/test_publish.py \
    tests/test_space_builds.py tests/test_metric.py tests/test_metric_space.py
