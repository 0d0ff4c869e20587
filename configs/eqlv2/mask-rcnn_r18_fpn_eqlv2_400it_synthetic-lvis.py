# EQL v2 on the synthetic long-tailed benchmark: the baseline of
# configs/baselines/ with the loss swapped; uniform sampling as in the paper.
# gamma, mu, alpha act on gradient ratios and need no rescaling.
_base_ = '../_base_/mask-rcnn_r18_fpn_synthetic-lvis.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            loss_cls=dict(
                _delete_=True,
                type='EqualizationLossV2',
                num_classes={{_base_.num_classes}}))))
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='GradRatioLoggerHook')
]
