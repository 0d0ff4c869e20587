# Ablation (not a published setting): EQL v2 without the positive
# up-weighting (alpha = 0, so w_j = 1 and only the negative weights r_j = q_j
# act), 800 iterations. Tells which of EQL v2's two terms costs frequent AP
# on the synthetic benchmark (configs/eqlv2/README.md).
_base_ = './mask-rcnn_r18_fpn_eqlv2_800it_synthetic-lvis.py'

model = dict(roi_head=dict(bbox_head=dict(loss_cls=dict(alpha=0.0))))
