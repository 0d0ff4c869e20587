# Balanced Group Softmax (Li et al., CVPR 2020) in its own decoupled protocol,
# stage 2, on the dense-head synthetic set: start from the stage-1 softmax
# baseline's checkpoint, re-initialise the classifier, train ONLY
# roi_head.bbox_head.fc_cls with the BAGS loss (backbone, neck, RPN, mask
# head, the bbox head's shared FCs and fc_reg frozen: parameters without
# gradients, BN statistics fixed; see longtail_plugin/engine/hooks/freeze_hook.py).
# BAGS's protocol: lr 0.01 (half the stage-1 lr, as 0.01 vs 0.02 in the
# authors' LVIS runs), steps at 8/12 and 11/12 of the schedule, no RFS.
# The stage-2 length (400 iterations after 800) is our choice for the CPU.
_base_ = '../baselines/mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-densehead.py'

# the stage-1 row this stage starts from, and its checkpoint as
# tools/lt_benchmark.py lays it out (--out work_dirs/lt, seed 0). The
# benchmark runner replaces load_from per run: the seed-k row loads the
# final checkpoint of the stage-1 row's seed-k run under the same --out
# (training it first when missing). With MMDetection's train.py pass
# another with --cfg-options load_from=...
stage1_config = 'configs/baselines/mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-densehead.py'
load_from = 'work_dirs/lt/mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-densehead/seed0/iter_800.pth'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            loss_cls=dict(
                _delete_=True,
                type='BalancedGroupSoftmaxLoss',
                num_classes={{_base_.num_classes}},
                bins=(10, 100, 1000),
                beta=8.0))))

max_iters = 400
# the BAGS groups come from the training annotation file named once in
# train_dataloader
default_hooks = dict(
    category_info=dict(type='TrainCategoryInfoHook'),
    checkpoint=dict(interval=max_iters))
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='FreezeModulesHook',
         trainable=['roi_head.bbox_head.fc_cls'],
         reinit=['roi_head.bbox_head.fc_cls'],
         reinit_cfg=dict(type='Normal', std=0.01, bias=0.))
]
# only read under DistributedDataParallel: the frozen parameters get no
# gradient (the hook checks this setting)
find_unused_parameters = True

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=50),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[int(max_iters * 8 / 12), int(max_iters * 11 / 12)],
        gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.01))
