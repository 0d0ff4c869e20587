#!/usr/bin/env bash
# Runs beside the last (single-config) step of run_lt_benchmark_session.sh.
set -e
cd "$(dirname "$0")/.."
OUT=${OUT:-work_dirs/lt}
run() { .venv/bin/python tools/lt_benchmark.py --out "$OUT" --jobs 2 "$@"; }
until grep -q "softmax-eql_400it_synthetic-lvis seed=0: started" work_dirs/lt_session.log; do sleep 20; done
run --seeds 0 --configs configs/eqlv2/mask-rcnn_r18_fpn_eqlv2_400it_synthetic-lvis.py
