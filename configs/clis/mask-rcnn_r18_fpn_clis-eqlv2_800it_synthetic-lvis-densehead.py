# CLIS with EQL v2 as the instance classification loss: the CLIS config of
# the dense-head synthetic set (same data, paste, image-level and
# contrastive losses) with the classifier of
# configs/eqlv2/mask-rcnn_r18_fpn_eqlv2_800it_synthetic-lvis-densehead.py
# (EqualizationLossV2 at its paper defaults, sigmoid-prior start of fc_cls).
# Does the image-level supervision add to a long-tail loss, or do both fix
# the same thing?
#
# The image-level loss keeps CLIS's default (softmax cross-entropy over the
# classifier's channels, weight 0.1): it does not feed EQL v2's gradient
# statistics, which see detection RoIs only.
_base_ = './mask-rcnn_r18_fpn_clis_800it_synthetic-lvis-densehead.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            # the EQL v2 config's init (sigmoid prior p = 0.01 on fc_cls)
            # plus the objectness classifier's own
            init_cfg=[
                dict(type='Normal', std=0.01, bias_prob=0.01,
                     override=dict(name='fc_cls')),
                dict(type='Normal', std=0.001, override=dict(name='fc_reg')),
                dict(type='Normal', std=0.01, override=dict(name='fc_obj')),
                dict(type='Xavier', distribution='uniform',
                     override=[dict(name='cls_fcs'), dict(name='reg_fcs')])
            ],
            loss_cls=dict(
                _delete_=True,
                type='EqualizationLossV2',
                num_classes={{_base_.num_classes}}))))
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='GradRatioLoggerHook')
]
