# The softmax baseline trained for the total budget of the decoupled rows
# (stage 1: 800 iterations + stage 2: 400 iterations = 1200), on the
# dense-head synthetic set: a BAGS stage-2 row must beat this one too, so
# its gain is not just more training. Same data, model and schedule shape as
# the 800-iteration baseline (warm-up 100 iterations, learning rate x0.1 at
# 75 % of the budget).
_base_ = '../baselines/mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-densehead.py'

max_iters = 1200
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
