_base_ = './atss_r50_fpn_focal_2x_lvis-v1.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
