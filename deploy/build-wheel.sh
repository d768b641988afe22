#!/bin/sh
# Build mmfast's wheel (the compiled extensions inside) into DIR: the Dockerfile's build stage
# and .ci/run both run this. PY: the Python to build with (default python3).
set -eu
DIR=${1:?usage: build-wheel.sh DIR}
PY=${PY:-python3}
"$PY" -m pip wheel -q --no-deps . -w "$DIR"
ls "$DIR"/mmfast-*.whl
