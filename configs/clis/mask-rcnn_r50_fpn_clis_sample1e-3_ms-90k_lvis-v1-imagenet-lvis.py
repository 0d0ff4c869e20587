# CLIS (multi-task Collaborative Learning with Image-level Supervision) on
# MMDetection's LVIS v1 Mask R-CNN (R50-FPN, RFS 1e-3, multi-scale) with the
# ImageNet-LVIS image-level data of the Detic-style anchor it inherits (same
# data, batch and schedule). No model code or recipe was published: the
# head, its sizes, the loss weights, the temperature and the paste settings
# are ours (configs/clis/README.md), chosen on the synthetic benchmark.
# Image-level regions: Detic's file has none (the whole image is the
# region); CLIS's own pre-defined boxes go in each image's "bbox".
_base_ = './mask-rcnn_r50_fpn_detic-image-label_sample1e-3_ms-90k_lvis-v1-imagenet-lvis.py'

model = dict(
    data_preprocessor=dict(
        batch_augments=[
            # an image-level region pasted at 0.25-0.6 of its size into one
            # detection image of the batch, where it hides no object
            dict(type='ImageLevelPaste', num_targets=1,
                 scale_range=(0.25, 0.6), max_overlap=0.0, max_tries=10)
        ]),
    roi_head=dict(
        type='CLISRoIHead',
        # the base's Shared2FCBBoxHead arguments (channels, classes, coder,
        # losses) carry over; CLIS adds its branches and objectness
        bbox_head=dict(
            type='CLISBBoxHead',
            decouple=True,
            siamese=True,
            # class probability x objectness, chosen on the synthetic set
            # (configs/clis/README.md: same checkpoints re-scored)
            score_mode='product',
            objectness_weight=0.5,
            loss_objectness=dict(
                type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
        image_loss_weight=0.1,
        contrastive_loss=dict(type='InfoNCELoss', temperature=0.1),
        contrastive_weight=0.1,
        proj_hidden=1024,
        proj_dim=128))
