#!/usr/bin/env bash
# The bench on a CUDA machine: llama-cpp-python and llama-server built with
# -DGGML_CUDA=on in a scratch venv, then the same comparison as `make bench`.
# Usage: benchmarks/gpu.sh [scratch dir]   (default ~/.cache/llamaport-bench-gpu)
# Paste what it prints into benchmarks/RESULTS.md's GPU section.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
scratch="${1:-$HOME/.cache/llamaport-bench-gpu}"
python="${PYTHON:-python3}"
version="$(sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' "$repo/pyproject.toml")"
mkdir -p "$scratch"
if [ ! -x "$scratch/venv/bin/python" ]; then
    "$python" -m venv "$scratch/venv"
    "$scratch/venv/bin/pip" install --quiet --upgrade pip
fi
# pip's wheel cache ignores CMAKE_ARGS, so a CPU wheel would satisfy this: no cache.
CMAKE_ARGS="-DGGML_CUDA=on" "$scratch/venv/bin/pip" install --no-cache-dir \
    --force-reinstall --no-deps "llama-cpp-python==$version"
"$scratch/venv/bin/pip" install --quiet -e "$repo[bench]"
cd "$repo"
"$scratch/venv/bin/python" benchmarks/bench.py --cuda --cache "$scratch" --out "$scratch"
cat "$scratch/RESULTS.md"
