# Stage 2 of the LVIS Challenge 2020 winners' recipe (Tan et al.,
# arXiv:2009.01559: "we first freeze the backbone"), on the dense-head
# synthetic set: start from the stage-1 checkpoint, freeze the BACKBONE ONLY
# (neck, RPN, bbox head and mask head train), re-initialise the classifier
# and train it with Balanced Group Softmax. The mask components of the
# recipe (BalancedMaskLoss, ratio-aware mask-proposal assignment) are added
# on top of this config by their own rows once measured.
#
# The backbone is frozen with MMDetection's own ResNet options (applied when
# the model is built, before any DDP wrapping): frozen_stages=4 freezes the
# stem and the four stages, norm_eval=True keeps all its BN layers in eval
# mode. The hook only re-initialises fc_cls after load_from.
_base_ = './mask-rcnn_r18_fpn_bags-decoupled_400it_synthetic-lvis-densehead.py'

model = dict(backbone=dict(frozen_stages=4, norm_eval=True))
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='FreezeModulesHook',
         reinit=['roi_head.bbox_head.fc_cls'],
         reinit_cfg=dict(type='Normal', std=0.01, bias=0.))
]
# schedule and lr as the BAGS stage 2 (the report gives neither)
