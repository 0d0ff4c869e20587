# Faster RefineMask variant on LVIS v1.
_base_ = './mask-rcnn_r50_fpn_refinemask_sample1e-3_ms-1x_lvis-v1.py'

model = dict(
    roi_head=dict(
        mask_head=dict(
            _delete_=True,
            type='SimpleRefineMaskHead',
            num_classes=1203,
            semantic_channels=64,
            stage_loss_weights=(0.5, 0.75, 0.75, 1.0))))
