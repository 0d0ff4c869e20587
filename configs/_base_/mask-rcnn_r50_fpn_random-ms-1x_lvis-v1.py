# MMDetection's LVIS v1 Mask R-CNN (R50-FPN, multi-scale 640-800, 1x, 16
# images per batch) with RANDOM image sampling instead of repeat-factor
# sampling: the setting in which EQL, EQL v2 and Softmax-EQL are published;
# polygon masks and a single evaluation after epoch 12, as the authors'.
_base_ = [
    'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py',
    './recipe_parts.py'  # sigmoid_prior_init, polygon_ms_train_pipeline
]
custom_imports = dict(imports=['longtail_plugin'], allow_failed_imports=False)

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LVISV1Dataset',
        data_root='data/lvis_v1/',
        ann_file='annotations/lvis_v1_train.json',
        data_prefix=dict(img=''),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline={{_base_.polygon_ms_train_pipeline}}))
val_evaluator = dict(type='LongTailLVISMetric')
test_evaluator = val_evaluator
auto_scale_lr = dict(enable=False, base_batch_size=16)
# LVIS evaluation once, after the last epoch (the authors' `interval=12`)
train_cfg = dict(val_interval=12)
