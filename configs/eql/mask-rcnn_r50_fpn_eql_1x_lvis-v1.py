# EQL (Tan et al., "Equalization Loss for Long-Tailed Object Recognition",
# CVPR 2020) on LVIS v1: sigmoid classifier, tail threshold lambda = 1.1e-3
# (the authors' LVIS v1 setting; 1.76e-3 in the paper for v0.5) on image
# frequencies read from the training annotation file; random sampling.
_base_ = '../_base_/mask-rcnn_r50_fpn_random-ms-1x_lvis-v1.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            loss_cls=dict(
                _delete_=True,
                type='EqualizationLoss',
                num_classes=1203,
                lambda_=1.1e-3,
                ann_file='data/lvis_v1/annotations/lvis_v1_train.json'))))
