# Baseline: MMDetection's own Seesaw loss (Wang et al., CVPR 2021) with the
# normalised-linear classifier of its LVIS configs; uniform sampling. Seesaw
# uses cumulative class counts (ratios), so no hyper-parameter is rescaled.
_base_ = '../_base_/mask-rcnn_r18_fpn_synthetic-lvis.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            cls_predictor_cfg=dict(type='NormedLinear', tempearture=20),
            loss_cls=dict(
                type='SeesawLoss',
                p=0.8,
                q=2.0,
                num_classes={{_base_.num_classes}},
                loss_weight=1.0))))
