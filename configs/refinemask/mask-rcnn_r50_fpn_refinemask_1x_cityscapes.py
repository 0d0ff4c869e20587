# RefineMask on Cityscapes (8 classes), the authors' recipe
# (zhanggang001/RefineMask configs/refinemask/cityscapes/r50-refinemask.py and
# its README): 16 images per batch (here 8 GPUs x 2) at lr 0.01, 8 epochs of
# the dataset repeated 8x (lr x0.1 after epoch 7), ImageNet weights only.
# MMDetection's Cityscapes base starts from a COCO Mask R-CNN checkpoint and
# trains 8 images per batch; both are undone here.
_base_ = 'mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py'
custom_imports = dict(imports=['longtail_plugin'], allow_failed_imports=False)

model = dict(
    # ImageNet-pretrained ResNet-50 (the base sets init_cfg=None because it
    # loads a COCO detector)
    backbone=dict(
        init_cfg=dict(
            _delete_=True,
            type='Pretrained',
            checkpoint='torchvision://resnet50')),
    roi_head=dict(
        type='RefineMaskRoIHead',
        mask_chunk_size=100,
        bbox_head=dict(
            loss_cls=dict(loss_weight=2.0), loss_bbox=dict(loss_weight=2.0)),
        mask_head=dict(
            _delete_=True,
            type='RefineMaskHead',
            stage_num_classes=(8, 8, 8, 8))))

# gradient-norm clipping at 35, as in the authors' config (`grad_clip`)
optim_wrapper = dict(
    optimizer=dict(lr=0.01), clip_grad=dict(max_norm=35, norm_type=2))
train_dataloader = dict(batch_size=2)  # x 8 GPUs = 16 images per batch
auto_scale_lr = dict(enable=False, base_batch_size=16)
load_from = None
