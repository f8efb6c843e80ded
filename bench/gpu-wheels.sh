#!/usr/bin/env bash
# The wheels bench/gpu-run.sh installs on a GPU machine that reaches nothing:
# what bench.gpu imports beyond torch, transformers, numpy, Pillow and
# opencv (which the lent H200 machines have), for CPython 3.12 on x86-64
# Linux. Pins from requirements.lock and requirements-local.lock. About 15 MB.
set -euo pipefail
python=${PYTHON_VERSION:-3.12}
pip download --no-deps --only-binary=:all: --python-version "$python" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d wheels \
    diffusers==0.42.1 pydantic==2.14.3 pydantic-core==2.50.4 pydantic-settings==2.16.3 \
    python-dotenv==1.2.4 annotated-types==0.8.0 typing-inspection==0.4.5 pillow-heif==1.8.1
