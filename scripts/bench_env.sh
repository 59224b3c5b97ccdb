#!/usr/bin/env bash
# Creates the benchmark environment: graphc plus its peers (PyTensor, JAX), kept out of the
# test extras. Usage: bash scripts/bench_env.sh [DIR]  (default: .bench-venv in the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-.bench-venv}"
python3 -m venv "$dir"
"$dir/bin/pip" install -q --upgrade pip
"$dir/bin/pip" install -q -e . "jax[cpu]" pytensor
echo "benchmark environment ready: $dir/bin/python benchmarks/run.py"
