# Focal-loss baseline for EFL (Li et al., "Equalized Focal Loss for Dense
# Long-Tailed Object Detection", CVPR 2022) on LVIS v1, RetinaNet variant.
# The paper's recipe as far as RetinaHead allows: GN in the head, 2 anchors
# per location (scales 6 and 8, ratio 1), GIoU box loss (weight 1) on decoded
# boxes with unscaled offsets, classifier prior 0.001, frozen BN, gradient
# clipping 35, repeat-factor sampling t = 1e-3, 24 epochs, 16 images per
# batch (8 GPUs x 2), images padded to a multiple of 64, 6,000 candidates per
# level at score > 0 and 300 detections at test time (the authors' config:
# ModelTC/United-Perception
# configs/det/efl/efl_improved_baseline_r50_2x_rfs.yaml).
# RetinaHead keeps MaxIoU assignment: ATSSAssigner needs the per-level prior
# counts only ATSSHead passes (see atss_r50_fpn_focal_2x_lvis-v1.py).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/lvis_v1_instance.py',
    'mmdet::_base_/schedules/schedule_2x.py',
    'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['longtail_plugin'], allow_failed_imports=False)

model = dict(
    # the authors pad to a multiple of 64 (`alignment: 64`)
    data_preprocessor=dict(pad_size_divisor=64),
    # frozen BN: no affine update and fixed statistics (norm_eval=True)
    backbone=dict(norm_cfg=dict(type='BN', requires_grad=False)),
    bbox_head=dict(
        num_classes=1203,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        # scales 6 and 8 exactly: octave scales are base * 2**(i / n), and
        # 8 / 6 = 2**0.415 is no such ratio, so the scales are listed
        anchor_generator=dict(
            _delete_=True,
            type='AnchorGenerator',
            ratios=[1.0],
            scales=[6, 8],
            strides=[8, 16, 32, 64, 128]),
        # unscaled offsets (the authors' coder has no target stds)
        bbox_coder=dict(target_stds=[1.0, 1.0, 1.0, 1.0]),
        reg_decoded_bbox=True,
        loss_bbox=dict(_delete_=True, type='GIoULoss', loss_weight=1.0),
        init_cfg=dict(
            type='Normal',
            layer='Conv2d',
            std=0.01,
            override=dict(
                type='Normal', name='retina_cls', std=0.01,
                bias_prob=0.001))),
    # authors: pre_nms_score_thresh 0, pre_nms_top_n 6000, top_n 300
    test_cfg=dict(nms_pre=6000, score_thr=0.0, max_per_img=300))

# boxes only
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736),
                (1333, 768), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
# ClassBalancedDataset(oversample_thr=1e-3) comes from the LVIS base
train_dataloader = dict(
    dataset=dict(dataset=dict(pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='LongTailLVISMetric', metric='bbox')
test_evaluator = val_evaluator

# 24 epochs (schedule_2x, SGD lr 0.02 for 16 images), one warm-up epoch
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.001,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(
        type='MultiStepLR',
        begin=0,
        end=24,
        by_epoch=True,
        milestones=[16, 22],
        gamma=0.1)
]
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
# LVIS evaluation once, after the last epoch (the authors' `test_freq: 24`)
train_cfg = dict(val_interval=24)
auto_scale_lr = dict(enable=False, base_batch_size=16)
