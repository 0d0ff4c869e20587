# RefineMask on the synthetic long-tailed benchmark: the Mask R-CNN of
# ../_base_/mask-rcnn_r18_fpn_synthetic-lvis.py with the FCN mask head
# replaced (same detector, data and budget as the FCN row). Channels are
# scaled with the base's 128-channel FPN; the last stage is class-agnostic
# as in the authors' LVIS config; bbox loss weights 2.0 as published.
_base_ = '../_base_/mask-rcnn_r18_fpn_synthetic-lvis.py'

model = dict(
    roi_head=dict(
        type='RefineMaskRoIHead',
        bbox_head=dict(
            loss_cls=dict(loss_weight=2.0), loss_bbox=dict(loss_weight=2.0)),
        mask_head=dict(
            _delete_=True,
            type='RefineMaskHead',
            in_channels=128,
            conv_out_channels=128,
            semantic_channels=128,
            stage_channels=(64, 32, 16),
            stage_num_classes=({{_base_.num_classes}}, ) * 3 + (1, ))))
