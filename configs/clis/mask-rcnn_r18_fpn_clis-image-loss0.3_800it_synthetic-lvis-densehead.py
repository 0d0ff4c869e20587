# CLIS hyper-parameter probe (one seed; configs/clis/README.md, "Defaults
# and the probes behind them"): image-level loss weight 0.3 instead of 0.1
# (1.0 collapsed the RoI head).
_base_ = './mask-rcnn_r18_fpn_clis_800it_synthetic-lvis-densehead.py'

model = dict(roi_head=dict(image_loss_weight=0.3))
