# CLIS hyper-parameter probe (one seed; configs/clis/README.md, "Defaults
# and the probes behind them"): InfoNCE temperature 0.5 instead of 0.1
# (softer: the negatives of the batch weigh more evenly).
_base_ = './mask-rcnn_r18_fpn_clis_800it_synthetic-lvis-densehead.py'

model = dict(
    roi_head=dict(
        contrastive_loss=dict(type='InfoNCELoss', temperature=0.5)))
