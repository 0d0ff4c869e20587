# Equalized Focal Loss on the synthetic benchmark: the focal-loss ATSS
# baseline with the loss swapped (gamma_b 2, s 8, alpha 0.25: the paper's
# values; they act on gradient ratios and need no rescaling).
_base_ = './atss_r18_fpn_focal_400it_synthetic-lvis.py'

model = dict(
    bbox_head=dict(
        loss_cls=dict(
            _delete_=True,
            type='EqualizedFocalLoss',
            num_classes={{_base_.num_classes}},
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            scale_factor=8.0,
            loss_weight=1.0)))
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='EFLStatsFlushHook'),
    dict(type='GradRatioLoggerHook')
]
