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
# llama-cpp-python has no wheel for this platform: it is compiled once (for this CPU, as
# llama.cpp does by default) into a folder named by its version and build flags, and
# installed from there. Intel AMX is left out of the build: llama.cpp's AMX kernels
# segfault on the first prompt on some Xeons (Sapphire Rapids under a VM, seen here;
# ggml-org/llama.cpp#20824); without them it runs on the AVX-512 kernels.
llama_version=$(grep -o 'llama-cpp-python\[server\]==[0-9.]*' pyproject.toml | cut -d= -f3)
arch=$(uname -m)
llama_flags=""
[ "$arch" = x86_64 ] && llama_flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
llama_key=$(echo "$llama_version $llama_flags $arch $("$VENV/bin/python" -V)" | sha256sum | cut -c1-12)
wheels=${XDG_CACHE_HOME:-$HOME/.cache}/assistant/llama-cpp-python/$llama_key
if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "setup: compiling llama-cpp-python $llama_version into $wheels" >&2
    rm -rf "$wheels.tmp"
    CFLAGS="$llama_flags" CXXFLAGS="$llama_flags" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
        "$VENV/bin/python" -m pip wheel --quiet --no-cache-dir --no-deps \
        "llama-cpp-python==$llama_version" -w "$wheels.tmp"
    mv "$wheels.tmp" "$wheels"  # complete or absent: a killed build is redone
fi
"$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "$wheels"/llama_cpp_python-*.whl
"$VENV/bin/python" -m pip install --quiet -e ".[dev,train,bench]"
# The compiled library must run the bundled model: a build that crashes here would crash
# the app on its first answer (and every test of the model), so say so now instead.
if ! "$VENV/bin/python" -c '
import llama_cpp
from assistant.bundled import bundled_model_path
llm = llama_cpp.Llama(str(bundled_model_path()), n_ctx=256, verbose=False)
llm("The quick brown fox jumps over the lazy dog and", max_tokens=4)
'; then
    echo "setup: llama-cpp-python $llama_version (built in $wheels) cannot run the bundled model on this CPU; delete that folder and run setup again, or set other build flags in scripts/setup.sh (llama_flags)" >&2
    exit 1
fi
echo "$stamp_value" > "$stamp_file"
