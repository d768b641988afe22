#!/bin/sh
# Install the wheel from DIR into a fresh venv VENV and check it runs: the Dockerfile's runtime
# stage and .ci/run both run this. PY: the Python to make the venv with (default python3).
set -eu
DIR=${1:?usage: install-wheel.sh DIR VENV}
VENV=${2:?usage: install-wheel.sh DIR VENV}
PY=${PY:-python3}
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --no-cache-dir "$(ls "$DIR"/mmfast-*.whl)"
"$VENV/bin/mmfast" --version
