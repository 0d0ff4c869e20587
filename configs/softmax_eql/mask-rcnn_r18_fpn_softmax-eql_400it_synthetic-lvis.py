# Softmax-EQL on the synthetic benchmark (ratios of accumulated gradients:
# nothing to rescale).
_base_ = '../_base_/mask-rcnn_r18_fpn_synthetic-lvis.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            loss_cls=dict(
                _delete_=True,
                type='SoftmaxEqualizationLoss',
                num_classes={{_base_.num_classes}}))))
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='GradRatioLoggerHook')
]
