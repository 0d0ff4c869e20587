# Balanced Group Softmax (Li et al., "Overcoming Classifier Imbalance for
# Long-tail Object Detection with Balanced Group Softmax", CVPR 2020) in its
# own decoupled protocol on LVIS v1, Mask R-CNN R50-FPN.
#
# Facts from the authors' mmdet-1 configs (FishYuLi/BalancedGroupSoftmax,
# configs/bags/gs_mask_rcnn_r50_fpn_1x_lvis.py, written for LVIS v0.5):
# start from the trained baseline (`load_from = .../mask_r50/epoch_12.pth`,
# their configs/baselines/mask_rcnn_r50_fpn_1x_lvis.py), train only the
# classifier (`selectp = 1`), others sampled at 8 x positives
# (`others_sample_ratio=8.0`), 4 instance-count groups + background
# (`num_bins=5`), SGD lr 0.01, momentum 0.9, weight decay 1e-4, gradient
# clipping at 35, linear warm-up over 500 iterations from 1/3, steps at
# epochs 8 and 11, 12 epochs, no repeat-factor sampling.
# The LVIS v1 numbers (mask AP 23.1 / APr 13.1 vs the baseline's 16.1 / 0.0,
# configs/lvis_traveler/README.md) are the EQL v2 authors' re-implementation
# on this baseline: random sampling, multi-scale 640-800 training (our base
# config), which this config keeps.
_base_ = '../_base_/mask-rcnn_r50_fpn_random-ms-1x_lvis-v1.py'

# Stage 1 is the softmax Mask R-CNN baseline trained with our base config;
# the path below is where `tools/train.py <stage1_config>` leaves its last
# checkpoint by default. The stock fc_cls (1204 outputs) does not match the
# BAGS layout (1203 + 1 + 5 = 1209): MMEngine skips it with a size-mismatch
# warning, or remove it first with tools/ckpt_surgery.py --method remove.
stage1_config = 'configs/_base_/mask-rcnn_r50_fpn_random-ms-1x_lvis-v1.py'
load_from = 'work_dirs/mask-rcnn_r50_fpn_random-ms-1x_lvis-v1/epoch_12.pth'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            loss_cls=dict(
                _delete_=True,
                type='BalancedGroupSoftmaxLoss',
                num_classes=1203,
                # the authors' groups: [0, 10), [10, 100), [100, 1000),
                # [1000, inf) training instances, plus background
                bins=(10, 100, 1000),
                beta=8.0))))

# the BAGS groups come from the training annotation file that
# train_dataloader names (the one place its path is written)
default_hooks = dict(category_info=dict(type='TrainCategoryInfoHook'))
custom_hooks = [
    dict(type='FreezeModulesHook',
         trainable=['roi_head.bbox_head.fc_cls'],
         reinit=['roi_head.bbox_head.fc_cls'],
         # MMDetection's BBoxHead fc_cls initialisation (and the authors')
         reinit_cfg=dict(type='Normal', std=0.01, bias=0.))
]
# only read under DistributedDataParallel: frozen parameters get no gradient
find_unused_parameters = True

optim_wrapper = dict(
    optimizer=dict(lr=0.01), clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=12,
         milestones=[8, 11], gamma=0.1)
]
train_cfg = dict(max_epochs=12, val_interval=12)
