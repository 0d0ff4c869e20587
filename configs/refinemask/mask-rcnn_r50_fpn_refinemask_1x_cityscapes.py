# RefineMask on Cityscapes (8 classes). The base sets lr 0.01 for
# 8 images per batch (8 GPUs x 1 image), 8 epochs of the dataset repeated 8x,
# and initialises from a COCO Mask R-CNN (the RefineMask head is then
# trained from scratch: its weights do not match the FCN head's).
_base_ = 'mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py'
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
            stage_num_classes=(8, 8, 8, 8))))

optim_wrapper = dict(
    optimizer=dict(lr=0.01), clip_grad=dict(max_norm=35, norm_type=2))
train_dataloader = dict(batch_size=1)  # x 8 GPUs = 8 images per batch
auto_scale_lr = dict(enable=False, base_batch_size=8)
