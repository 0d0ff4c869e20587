# Paper (bbox AP): AP 29.2, APr 23.5, APc 27.4, APf 33.8.
_base_ = './atss_r50_fpn_efl_2x_lvis-v1.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
