# Baseline: softmax cross-entropy, uniform image sampling.
_base_ = '../_base_/mask-rcnn_r18_fpn_synthetic-lvis.py'
