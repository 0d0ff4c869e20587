# EQL v2 (Tan et al., "Equalization Loss v2", CVPR 2021), the published
# setting: Mask R-CNN R50-FPN, 1x, LVIS v1, RANDOM sampling (no repeat-factor
# sampling), multi-scale 640-800, 16 images per batch (8 GPUs x 2), per-class
# NMS (MMDetection's default), 300 detections, score_thr 1e-4.
_base_ = '../_base_/mask-rcnn_r50_fpn_random-ms-1x_lvis-v1.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            # the authors' prior p = 0.001 (configs/_base_/recipe_parts.py)
            init_cfg={{_base_.sigmoid_prior_init}},
            loss_cls=dict(
                _delete_=True,
                type='EqualizationLossV2',
                num_classes=1203,
                gamma=12.0,
                mu=0.8,
                alpha=4.0))))

custom_hooks = [dict(type='GradRatioLoggerHook')]
