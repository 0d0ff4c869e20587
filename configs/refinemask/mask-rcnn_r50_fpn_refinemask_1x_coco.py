# RefineMask (Zhang et al., CVPR 2021) on Mask R-CNN R50-FPN, COCO, 1x.
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/recipe_parts.py'  # polygon_train_pipeline
]
custom_imports = dict(imports=['longtail_plugin'], allow_failed_imports=False)

model = dict(
    roi_head=dict(
        type='RefineMaskRoIHead',
        mask_chunk_size=100,  # RoIs per mask-head chunk at inference
        # the published configs double the box losses
        bbox_head=dict(
            loss_cls=dict(loss_weight=2.0), loss_bbox=dict(loss_weight=2.0)),
        # mask_roi_extractor: the base 14x14 RoIAlign over P2..P5
        mask_head=dict(
            _delete_=True,
            type='RefineMaskHead',
            num_convs_instance=2,
            num_convs_semantic=4,
            in_channels=256,
            conv_out_channels=256,
            semantic_channels=256,
            stage_channels=(128, 64, 32),
            stage_num_classes=(80, 80, 80, 80),
            stage_sup_size=(14, 28, 56, 112),
            stage_loss_weights=(0.25, 0.5, 0.75, 1.0),
            boundary_width=2,
            merge_width=1,
            loss_mask=dict(type='BARCrossEntropyLoss', loss_weight=1.0),
            loss_semantic=dict(type='BARCrossEntropyLoss', loss_weight=1.0))))

# gradient-norm clipping at 35, as in the authors' configs (`grad_clip`)
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))

# masks loaded as polygons, as in the authors' COCO/LVIS pipelines
train_dataloader = dict(
    dataset=dict(pipeline={{_base_.polygon_train_pipeline}}))
# evaluated after epoch 12 (the authors' `interval=12`)
train_cfg = dict(val_interval=12)
