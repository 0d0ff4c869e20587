# Softmax-EQL (Tan et al., "The Equalization Losses: Gradient-Driven Training
# for Long-tailed Object Recognition", TPAMI 2023): softmax classifier with
# gradient-driven logit adjustment (indicator: accumulated positive gradient,
# tau = 1); LVIS v1, random sampling.
_base_ = '../_base_/mask-rcnn_r50_fpn_random-ms-1x_lvis-v1.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            loss_cls=dict(
                _delete_=True,
                type='SoftmaxEqualizationLoss',
                num_classes=1203,
                indicator='pos',
                tau=1.0))))
custom_hooks = [dict(type='GradRatioLoggerHook')]
