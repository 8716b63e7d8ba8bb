#!/usr/bin/env bash
# Create .venv and install the project with every extra. Idempotent: skips work when
# pyproject.toml and this script are unchanged since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
stamp_value=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
stamp_file=$VENV/.installed

if [ -x "$VENV/bin/python" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_value" ]; then
    exit 0
fi

echo "setup: installing into $VENV (the first run compiles llama-cpp-python: 7-20 minutes)" >&2
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# The CPU build of torch lies on this machine's disk; installing it first, pinned, keeps
# anything that depends on torch from pulling a multi-GB CUDA build.
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
# llama-cpp-python has no wheel for this platform: pip compiles it once and caches the wheel.
CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$VENV/bin/python" -m pip install --quiet -e ".[dev,train,bench]"
echo "$stamp_value" > "$stamp_file"
