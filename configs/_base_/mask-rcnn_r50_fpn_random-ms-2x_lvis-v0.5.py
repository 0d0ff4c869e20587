# MMDetection's LVIS v0.5 Mask R-CNN (R50-FPN, multi-scale, 2x) with random
# image sampling instead of repeat-factor sampling; polygon masks and a single
# evaluation after the last epoch.
_base_ = [
    'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-2x_lvis-v0.5.py',
    './recipe_parts.py'  # sigmoid_prior_init, polygon_ms_train_pipeline
]
custom_imports = dict(imports=['longtail_plugin'], allow_failed_imports=False)

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LVISV05Dataset',
        data_root='data/lvis_v0.5/',
        ann_file='annotations/lvis_v0.5_train.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline={{_base_.polygon_ms_train_pipeline}}))
val_evaluator = dict(type='LongTailLVISMetric')
test_evaluator = val_evaluator
auto_scale_lr = dict(enable=False, base_batch_size=16)
# LVIS evaluation once, after the last epoch (the EQL authors' detectron2
# config evaluates only at the end of training)
train_cfg = dict(val_interval=24)
