# EQL v2 with twice the budget (800 iterations), beside
# configs/baselines/mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis.py (same
# schedule): does the frequent-class AP gap of 400 iterations close with a
# longer budget? See configs/eqlv2/README.md.
_base_ = './mask-rcnn_r18_fpn_eqlv2_400it_synthetic-lvis.py'

max_iters = 800
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=100),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[int(max_iters * 0.75)],
        gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
