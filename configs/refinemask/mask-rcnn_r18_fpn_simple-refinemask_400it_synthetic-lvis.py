# The faster RefineMask variant on the synthetic benchmark (only the mask
# head differs from the FCN row).
_base_ = '../_base_/mask-rcnn_r18_fpn_synthetic-lvis.py'

model = dict(
    roi_head=dict(
        type='RefineMaskRoIHead',
        mask_head=dict(
            _delete_=True,
            type='SimpleRefineMaskHead',
            num_classes={{_base_.num_classes}},
            in_channels=128,
            conv_out_channels=128,
            semantic_channels=64,
            stage_channels=(64, 32, 16))))
