# Our extension (not in the paper): a RefineMask head at every stage of
# Cascade Mask R-CNN; test-time masks are the mean of the stages' merged
# 112x112 probabilities.
_base_ = [
    'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/recipe_parts.py'  # polygon_train_pipeline
]
custom_imports = dict(imports=['longtail_plugin'], allow_failed_imports=False)

model = dict(
    roi_head=dict(
        type='RefineMaskCascadeRoIHead',
        mask_chunk_size=100,
        mask_head=dict(
            _delete_=True,
            type='RefineMaskHead',
            stage_num_classes=(80, 80, 80, 80))))

# the RefineMask COCO recipe (configs/refinemask/README.md, "Recipe"):
# gradient-norm clipping at 35, masks loaded as polygons
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
train_dataloader = dict(
    dataset=dict(pipeline={{_base_.polygon_train_pipeline}}))
