# CLIS hyper-parameter probe (one seed; configs/clis/README.md, "Defaults
# and the probes behind them"): contrastive weight 0.5 instead of 0.1.
_base_ = './mask-rcnn_r18_fpn_clis_800it_synthetic-lvis-densehead.py'

model = dict(roi_head=dict(contrastive_weight=0.5))
