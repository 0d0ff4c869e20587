# Mask R-CNN sized for the synthetic long-tailed LVIS benchmark on a CPU.
#
# Inherits MMDetection's LVIS v1 Mask R-CNN and overrides only what the small
# data needs: a ResNet-18 trained from scratch (no weights can be downloaded),
# heads sized for 160x160 images (measured ~5x faster per iteration than the
# upstream sizes, see README), the synthetic data set and an iteration-based
# CPU schedule. Uniform sampling (the repeat-factor variant is its own config).
# Generate the data with: python tools/make_synthetic_lvis.py --out data/synthetic_lvis
_base_ = 'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
custom_imports = dict(imports=['longtail_plugin'], allow_failed_imports=False)

num_classes = 100  # tools/make_synthetic_lvis.py --num-classes
data_root = 'data/synthetic_lvis/'
image_size = (160, 160)
max_iters = 400
val_interval = 400

model = dict(
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_eval=False,  # trained from scratch: BN statistics must learn
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    rpn_head=dict(
        in_channels=128,
        feat_channels=128,
        # objects are 12-70 px: anchors 16 px at stride 4 instead of 32 px
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(
            in_channels=128, fc_out_channels=512, num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=128),
        mask_head=dict(
            in_channels=128, conv_out_channels=128,
            num_classes=num_classes)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=500),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=500),
        # 100 detections per image are plenty for <= 6 objects per image and
        # keep CPU evaluation fast; real LVIS configs keep 300 / 1e-4.
        rcnn=dict(score_thr=1e-3, max_per_img=100)))

# Initialisation of a SIGMOID RoI classifier trained from scratch on this
# short budget (used by the EQL / EQL v2 configs; the softmax head keeps
# MMDetection's): class biases start at the sigmoid prior p = 0.01, the
# rest as in Shared2FCBBoxHead. See configs/eqlv2/README.md for why.
sigmoid_prior_init = [
    dict(type='Normal', std=0.01, bias_prob=0.01,
         override=dict(name='fc_cls')),
    dict(type='Normal', std=0.001, override=dict(name='fc_reg')),
    dict(type='Xavier', distribution='uniform',
         override=[dict(name='shared_fcs'), dict(name='cls_fcs'),
                   dict(name='reg_fcs')])
]

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        _delete_=True,
        type='LVISFormatDataset',  # class names from the file
        data_root=data_root,
        ann_file='annotations/lvis_v1_train.json',
        data_prefix=dict(img=''),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        type='LVISFormatDataset',  # class names from the file
        data_root=data_root,
        ann_file='annotations/lvis_v1_val.json',
        data_prefix=dict(img=''),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='LongTailLVISMetric',
    ann_file=data_root + 'annotations/lvis_v1_val.json',
    metric=['bbox', 'segm'])
test_evaluator = val_evaluator

# Equal budgets in gradient steps, not epochs (repeat-factor sampling makes
# epochs longer): every synthetic config trains max_iters iterations.
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=val_interval)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=100),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[int(max_iters * 0.75)],
        gamma=0.1)
]
optim_wrapper = dict(
    optimizer=dict(lr=0.02), clip_grad=dict(max_norm=35, norm_type=2))
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False, window_size=20)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
# a head whose num_classes differs from the annotation file stops with an
# error naming both numbers
custom_hooks = [dict(type='NumClassCheckHook')]
