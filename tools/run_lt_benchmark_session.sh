#!/usr/bin/env bash
# The benchmark behind the README tables, in priority order (each call reuses
# the runs already finished in the same --out): headline pairs first.
set -e
cd "$(dirname "$0")/.."
OUT=${OUT:-work_dirs/lt}
B=configs/baselines; E=configs/eqlv2
run() { .venv/bin/python tools/lt_benchmark.py --out "$OUT" --jobs 2 "$@"; }
run --seeds 0 --configs $B/mask-rcnn_r18_fpn_softmax_400it_synthetic-lvis.py $E/mask-rcnn_r18_fpn_eqlv2_400it_synthetic-lvis.py
run --seeds 0 --configs $B/mask-rcnn_r18_fpn_rfs_400it_synthetic-lvis.py $B/mask-rcnn_r18_fpn_seesaw_400it_synthetic-lvis.py
run --seeds 1 --configs $B/mask-rcnn_r18_fpn_softmax_400it_synthetic-lvis.py $E/mask-rcnn_r18_fpn_eqlv2_400it_synthetic-lvis.py
run --seeds 2 --configs $B/mask-rcnn_r18_fpn_softmax_400it_synthetic-lvis.py $E/mask-rcnn_r18_fpn_eqlv2_400it_synthetic-lvis.py
run --seeds 0 --configs $E/mask-rcnn_r18_fpn_sigmoid_400it_synthetic-lvis.py configs/eql/mask-rcnn_r18_fpn_eql_400it_synthetic-lvis.py
run --seeds 0 --configs configs/softmax_eql/mask-rcnn_r18_fpn_softmax-eql_400it_synthetic-lvis.py
