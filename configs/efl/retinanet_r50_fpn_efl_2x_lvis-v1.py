# Equalized Focal Loss on the RetinaNet variant of the recipe (LVIS v1).
_base_ = './retinanet_r50_fpn_focal_2x_lvis-v1.py'

model = dict(
    bbox_head=dict(
        loss_cls=dict(
            _delete_=True,
            type='EqualizedFocalLoss',
            num_classes=1203,
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            scale_factor=8.0,
            loss_weight=1.0)))
custom_hooks = [
    dict(type='EFLStatsFlushHook'),
    dict(type='GradRatioLoggerHook')
]
