# The softmax baseline with twice the budget (800 iterations), to test whether
# EQL v2's frequent-class AP gap at 400 iterations is a budget effect
# (configs/eqlv2/README.md). Same data, model and schedule shape: warm-up 100
# iterations, learning rate x0.1 at 75 % of the budget.
_base_ = './mask-rcnn_r18_fpn_softmax_400it_synthetic-lvis.py'

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
