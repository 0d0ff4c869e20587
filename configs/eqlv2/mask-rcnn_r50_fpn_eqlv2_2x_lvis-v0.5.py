# EQL v2 on LVIS v0.5 (1,230 classes): the v0.5 data set and 2x schedule of
# MMDetection's LVIS v0.5 baseline, random sampling.
_base_ = '../_base_/mask-rcnn_r50_fpn_random-ms-2x_lvis-v0.5.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            # the authors' prior p = 0.001 (configs/_base_/recipe_parts.py)
            init_cfg={{_base_.sigmoid_prior_init}},
            loss_cls=dict(
                _delete_=True,
                type='EqualizationLossV2',
                num_classes=1230,
                gamma=12.0,
                mu=0.8,
                alpha=4.0))))
custom_hooks = [dict(type='GradRatioLoggerHook')]
