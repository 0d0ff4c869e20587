# EQL v2's sigmoid baseline (plain sigmoid cross-entropy over C + 1 outputs)
# with the 800-iteration schedule: separates what the sigmoid formulation
# costs in frequent AP from what EQL v2's re-weighting costs.
_base_ = './mask-rcnn_r18_fpn_eqlv2_800it_synthetic-lvis.py'

model = dict(roi_head=dict(bbox_head=dict(loss_cls=dict(reweight=False))))
