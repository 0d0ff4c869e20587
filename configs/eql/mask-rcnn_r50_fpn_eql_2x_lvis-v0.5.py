# EQL on LVIS v0.5 with the paper's lambda = 1.76e-3.
_base_ = '../_base_/mask-rcnn_r50_fpn_random-ms-2x_lvis-v0.5.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            loss_cls=dict(
                _delete_=True,
                type='EqualizationLoss',
                num_classes=1230,
                lambda_=1.76e-3,
                ann_file='data/lvis_v0.5/annotations/lvis_v0.5_train.json'))))
