# RefineMask on the synthetic long-tailed benchmark: the Mask R-CNN of
# ../_base_/mask-rcnn_r18_fpn_synthetic-lvis.py with the FCN mask head
# replaced: same detector, box losses, data and budget as the FCN row
# (configs/baselines/mask-rcnn_r18_fpn_softmax_400it_synthetic-lvis.py), so
# the mask head is the only difference (the published configs' box-loss
# weight 2.0 is kept for the COCO/LVIS configs only). Channels are scaled
# with the base's 128-channel FPN; the last stage is class-agnostic as in the
# authors' LVIS config.
_base_ = '../_base_/mask-rcnn_r18_fpn_synthetic-lvis.py'

model = dict(
    roi_head=dict(
        type='RefineMaskRoIHead',
        mask_head=dict(
            _delete_=True,
            type='RefineMaskHead',
            in_channels=128,
            conv_out_channels=128,
            semantic_channels=128,
            stage_channels=(64, 32, 16),
            stage_num_classes=({{_base_.num_classes}}, ) * 3 + (1, ))))
