#!/usr/bin/env bash
# Prepare pycuda for a GPU machine without network access.
#
#   scripts/prepare_pycuda.sh download   # on a networked machine: sources + build deps -> .carry/pycuda
#   scripts/prepare_pycuda.sh install    # on the GPU machine (CUDA toolkit installed): build once, install
#
# .carry/ is ignored by git; copy (or carry) the repository with it to the GPU machine.
# pycuda is built from source there against that machine's CUDA (nvcc on the PATH or CUDA_ROOT set).
set -euo pipefail
cd "$(dirname "$0")/.."
folder=.carry/pycuda
python=${PYTHON:-python3}

case "${1:-}" in
  download)
    mkdir -p "$folder"
    # the sdist of pycuda and what building and running it needs (numpy is already installed)
    "$python" -m pip download --dest "$folder" --no-binary pycuda pycuda
    "$python" -m pip download --dest "$folder" setuptools wheel pytools platformdirs mako \
        markupsafe typing_extensions siphash24
    ls -l "$folder"
    ;;
  install)
    test -d "$folder" || { echo "no $folder: run '$0 download' on a networked machine first" >&2; exit 1; }
    command -v nvcc >/dev/null || test -n "${CUDA_ROOT:-}" ||
        { echo "nvcc is not on the PATH and CUDA_ROOT is unset: pycuda needs the CUDA toolkit to build" >&2; exit 1; }
    "$python" -m pip install --no-index --find-links "$folder" setuptools wheel
    # build isolation off: the build dependencies come from the folder, not from the network
    "$python" -m pip install --no-index --find-links "$folder" --no-build-isolation pycuda
    "$python" -c "import graphc; print('cuda available:', graphc.cuda_available())"
    ;;
  *)
    echo "usage: $0 download|install" >&2
    exit 2
    ;;
esac
