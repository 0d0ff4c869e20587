#!/usr/bin/env bash
# Reproduces the synthetic-benchmark table of the README (2 trainings side by
# side on a 2-core machine, about 13-18 minutes a pair): the headline pairs
# first, then the other rows; every call reuses the runs already finished in
# $OUT, and the last one only tabulates.
set -e
cd "$(dirname "$0")/.."
OUT=${OUT:-work_dirs/lt}
B=configs/baselines; E=configs/eqlv2
SOFTMAX=$B/mask-rcnn_r18_fpn_softmax_400it_synthetic-lvis.py
EQLV2=$E/mask-rcnn_r18_fpn_eqlv2_400it_synthetic-lvis.py
SOFTMAX800=$B/mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis.py
EQLV2_800=$E/mask-rcnn_r18_fpn_eqlv2_800it_synthetic-lvis.py
ALL="$SOFTMAX $B/mask-rcnn_r18_fpn_rfs_400it_synthetic-lvis.py
     $B/mask-rcnn_r18_fpn_seesaw_400it_synthetic-lvis.py
     $E/mask-rcnn_r18_fpn_sigmoid_400it_synthetic-lvis.py $EQLV2
     configs/eql/mask-rcnn_r18_fpn_eql_400it_synthetic-lvis.py
     configs/softmax_eql/mask-rcnn_r18_fpn_softmax-eql_400it_synthetic-lvis.py
     configs/efl/atss_r18_fpn_focal_400it_synthetic-lvis.py
     configs/efl/atss_r18_fpn_efl_400it_synthetic-lvis.py
     configs/refinemask/mask-rcnn_r18_fpn_refinemask_400it_synthetic-lvis.py
     $SOFTMAX800 $E/mask-rcnn_r18_fpn_sigmoid_800it_synthetic-lvis.py $EQLV2_800
     $E/mask-rcnn_r18_fpn_eqlv2-alpha0_800it_synthetic-lvis.py"
run() { .venv/bin/python tools/lt_benchmark.py --out "$OUT" --jobs 2 "$@"; }
for seed in 0 1 2 3 4; do run --seeds $seed --configs $SOFTMAX $EQLV2; done
run --seeds 0 --configs $B/mask-rcnn_r18_fpn_rfs_400it_synthetic-lvis.py $B/mask-rcnn_r18_fpn_seesaw_400it_synthetic-lvis.py
run --seeds 0 --configs $E/mask-rcnn_r18_fpn_sigmoid_400it_synthetic-lvis.py configs/eql/mask-rcnn_r18_fpn_eql_400it_synthetic-lvis.py
run --seeds 1 2 --configs configs/eql/mask-rcnn_r18_fpn_eql_400it_synthetic-lvis.py
run --seeds 0 1 2 --configs configs/softmax_eql/mask-rcnn_r18_fpn_softmax-eql_400it_synthetic-lvis.py
run --seeds 0 1 2 --configs configs/efl/atss_r18_fpn_focal_400it_synthetic-lvis.py configs/efl/atss_r18_fpn_efl_400it_synthetic-lvis.py
run --seeds 0 1 2 --configs configs/refinemask/mask-rcnn_r18_fpn_refinemask_400it_synthetic-lvis.py
# twice the budget: softmax vs EQL v2 (about 25 minutes a pair), then the
# sigmoid baseline alone
for seed in 0 1 2; do run --seeds $seed --configs $SOFTMAX800 $EQLV2_800; done
run --seeds 0 --configs $E/mask-rcnn_r18_fpn_sigmoid_800it_synthetic-lvis.py
run --seeds 0 1 2 --configs $E/mask-rcnn_r18_fpn_eqlv2-alpha0_800it_synthetic-lvis.py  # ablation
run --report-only --seeds 0 1 2 3 4 --configs $ALL
# the dense-head variant of the set (its own data root, generated from the
# configs' `synthetic_lvis` arguments) in its own table: softmax vs EQL v2
SOFTMAX_DH=$B/mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-densehead.py
EQLV2_DH=$E/mask-rcnn_r18_fpn_eqlv2_800it_synthetic-lvis-densehead.py
for seed in 0 1 2 3 4; do
    OUT=${OUT}_densehead run --seeds $seed --configs $SOFTMAX_DH $EQLV2_DH
done
SIGMOID_DH=$E/mask-rcnn_r18_fpn_sigmoid_800it_synthetic-lvis-densehead.py
OUT=${OUT}_densehead run --seeds 0 --configs $SIGMOID_DH
OUT=${OUT}_densehead run --report-only --seeds 0 1 2 3 4 \
    --configs $SOFTMAX_DH $SIGMOID_DH $EQLV2_DH
.venv/bin/python tools/plot_grad_ratio.py \
    --ann-file data/synthetic_lvis/annotations/lvis_v1_train.json \
    --checkpoint "$OUT"/mask-rcnn_r18_fpn_sigmoid_400it_synthetic-lvis/seed0/iter_400.pth \
                 "$OUT"/mask-rcnn_r18_fpn_eqlv2_400it_synthetic-lvis/seed0/iter_400.pth \
    --labels "sigmoid baseline" "EQL v2" --out "$OUT"/grad_ratio.png
