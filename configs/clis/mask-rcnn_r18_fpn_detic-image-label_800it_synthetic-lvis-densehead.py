# The simplest way to use image-level labels, as the anchor for CLIS: the
# softmax Mask R-CNN of the dense-head synthetic set (800 iterations) trained
# on its detection images PLUS the set's image-level companion (single-object
# images, tail over-represented), with Detic's image-label loss on the
# largest RPN proposal of each image-level sample (Zhou et al., ECCV 2022;
# weight 0.1, with the softmax cross-entropy this head trains with instead
# of Detic's sigmoid BCE, see below and
# longtail_plugin/models/roi_heads/image_label_roi_head.py).
#
# This config also holds the image-level data path that the CLIS configs
# inherit: the two sources in one ConcatDataset, mixed inside every batch by
# MMDetection's MultiSourceSampler. Each batch holds 4 detection images (the
# baseline's whole batch, so the detection signal per iteration is the
# baseline's) and 2 image-level images.
_base_ = '../baselines/mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-densehead.py'

# the image-level companion of the dense-head set; tools/lt_benchmark.py
# generates it when missing (tools/make_synthetic_image_level.py
# --detection data/synthetic_lvis_densehead)
synthetic_image_level = dict()
image_level_root = 'data/synthetic_lvis_densehead_imagelevel/'
num_detection_per_batch = 4
num_image_level_per_batch = 2
batch_size = num_detection_per_batch + num_image_level_per_batch

meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
             'flip', 'flip_direction', 'image_level')
detection_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale={{_base_.image_size}}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs', meta_keys=meta_keys)
]
image_level_pipeline = [
    dict(type='LoadImageFromFile'),
    # the region (or the whole image) as the sample's box, one per label;
    # box-shaped masks only so both kinds of sample hold the same fields
    # (never supervised)
    dict(type='LoadImageLevelAnnotations'),
    dict(type='Resize', scale={{_base_.image_size}}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs', meta_keys=meta_keys)
]
train_dataloader = dict(
    batch_size=batch_size,
    # MultiSourceSampler draws the batch itself: no aspect-ratio grouping
    batch_sampler=None,
    sampler=dict(
        _delete_=True,
        type='MultiSourceSampler',
        batch_size=batch_size,
        source_ratio=[num_detection_per_batch, num_image_level_per_batch]),
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(
                type='LVISFormatDataset',
                data_root={{_base_.data_root}},
                ann_file='annotations/lvis_v1_train.json',
                data_prefix=dict(img=''),
                filter_cfg=dict(filter_empty_gt=True, min_size=4),
                pipeline=detection_pipeline),
            dict(
                type='ImageLevelDataset',
                data_root=image_level_root,
                ann_file='annotations/image_level.json',
                data_prefix=dict(img='images/'),
                pipeline=image_level_pipeline)
        ]))

# Detic's rule (largest proposal, weight 0.1) with the loss this softmax head
# trains its classifier with (ImageLabelRoIHead's default loss_form='ce');
# Detic's sigmoid BCE summed over the classes (loss_form='bce') diverged on
# the softmax head of the synthetic set after the warm-up
# (configs/clis/README.md). Not set here because the CLIS configs inherit
# this roi_head and CLISRoIHead has no such argument.
model = dict(
    type='ImageLevelTwoStageDetector',
    roi_head=dict(type='ImageLabelRoIHead', image_loss_weight=0.1))
