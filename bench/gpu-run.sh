#!/usr/bin/env bash
# One prepared run of bench/gpu.py on a GPU machine with no network (decision 0009).
#
#   bench/gpu-wheels.sh                 # first, on a machine that reaches PyPI
#   bench/gpu-run.sh [OUTDIR]           # then, on the GPU machine, from the repository root
#
# Installs the wheels in wheels/ (if any) with no index, then writes one JSON
# file per variant to OUTDIR (default: $OUT, else bench-gpu-out). A variant
# that fails leaves its error in NAME.err and the others still run.
# EXTRA="--tiny --device cpu --steps 1 --styles 2" smoke-tests it on a CPU.
set -uo pipefail
out=${1:-${OUT:-bench-gpu-out}}
py=${PYTHON:-python3}
extra=${EXTRA:-}
mkdir -p "$out"
if compgen -G "wheels/*.whl" > /dev/null; then
    "$py" -m pip install -q --no-deps --no-index wheels/*.whl || exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.csv" 2>&1 || true
"$py" -c 'import torch, diffusers, transformers; print(torch.__version__, diffusers.__version__, transformers.__version__)' > "$out/versions.txt"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

run() {
    local name=$1
    shift
    # shellcheck disable=SC2086
    if ! "$py" -m bench.gpu "$@" $extra > "$out/$name.json" 2> "$out/$name.err"; then
        echo "$name failed: see $out/$name.err"
    fi
}

# FLUX.2 [klein] 4B first: the target (executive order <= 30 s, MFU >= 40%).
run klein --family klein-4b --runs 3
run klein-compile --family klein-4b --runs 3 --compile
run klein-fp8 --family klein-4b --runs 3 --fp8
run klein-fp8-compile --family klein-4b --runs 3 --fp8 --compile
# Kontext [dev] at 28 steps: several minutes for one executive order.
run kontext --family kontext-dev --runs 1
ls -l "$out"
