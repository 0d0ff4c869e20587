# EQL v2's sigmoid baseline (plain sigmoid cross-entropy over C + 1 outputs,
# statistics recorded) on the dense-head variant of the synthetic set, 800
# iterations: what the sigmoid formulation alone gives on that data.
_base_ = './mask-rcnn_r18_fpn_eqlv2_800it_synthetic-lvis-densehead.py'

model = dict(roi_head=dict(bbox_head=dict(loss_cls=dict(reweight=False))))
