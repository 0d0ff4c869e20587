#!/usr/bin/env bash
# After the EQL-family rows: the focal-loss ATSS baseline beside EFL (one seed).
set -e
cd "$(dirname "$0")/.."
OUT=${OUT:-work_dirs/lt}
while pgrep -f "run_lt_benchmark_(session|extra)\.sh" >/dev/null; do sleep 20; done
.venv/bin/python tools/lt_benchmark.py --out "$OUT" --jobs 2 --seeds 0 \
    --configs configs/efl/atss_r18_fpn_focal_400it_synthetic-lvis.py configs/efl/atss_r18_fpn_efl_400it_synthetic-lvis.py
