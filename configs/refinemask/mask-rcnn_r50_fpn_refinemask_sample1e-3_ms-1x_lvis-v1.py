# RefineMask on LVIS v1: 1203 classes, class-agnostic last stage,
# repeat-factor sampling (oversample_thr=1e-3) and multi-scale 640..800 from
# the base, 300 detections per image with score_thr 1e-4.
_base_ = [
    'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py',
    '../_base_/recipe_parts.py'  # polygon_ms_train_pipeline
]
custom_imports = dict(imports=['longtail_plugin'], allow_failed_imports=False)

model = dict(
    roi_head=dict(
        type='RefineMaskRoIHead',
        mask_chunk_size=100,
        bbox_head=dict(
            loss_cls=dict(loss_weight=2.0), loss_bbox=dict(loss_weight=2.0)),
        mask_head=dict(
            _delete_=True,
            type='RefineMaskHead',
            stage_num_classes=(1203, 1203, 1203, 1),
            stage_loss_weights=(0.25, 0.5, 0.75, 1.0))),
    test_cfg=dict(rcnn=dict(score_thr=0.0001, max_per_img=300)))

# gradient-norm clipping at 35, as in the authors' configs (`grad_clip`)
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))

# masks loaded as polygons, as in the authors' LVIS pipeline; the dataset is
# ClassBalancedDataset(oversample_thr=1e-3) around LVISV1Dataset (the base)
train_dataloader = dict(
    dataset=dict(dataset=dict(pipeline={{_base_.polygon_ms_train_pipeline}})))
# LVIS evaluation once, after the last epoch (the authors' `interval=12`)
train_cfg = dict(val_interval=12)
