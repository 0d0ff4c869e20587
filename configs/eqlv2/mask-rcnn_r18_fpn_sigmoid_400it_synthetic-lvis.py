# The EQL v2 paper's sigmoid baseline on the synthetic benchmark: plain
# sigmoid cross-entropy over C + 1 outputs (EqualizationLossV2 with
# reweight=False), gradient statistics recorded for the ratio plot.
_base_ = './mask-rcnn_r18_fpn_eqlv2_400it_synthetic-lvis.py'

model = dict(roi_head=dict(bbox_head=dict(loss_cls=dict(reweight=False))))
