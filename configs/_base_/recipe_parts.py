# Pieces of the published recipes shared by several real-data configs
# (inherited through `_base_`, used as `{{_base_.<name>}}`); see each
# method's README, "Recipe", and tests/configs/test_recipes.py.

# The EQL / EQL v2 authors' sigmoid-classifier initialisation: fc_cls weights
# N(0, 0.01) and every bias at the prior p = 0.001 (bias = log(p / (1 - p)),
# `bias_init_with_prob(0.001)` in tztztztztz/eqlv2
# mmdet/models/roi_heads/bbox_heads/convfc_bbox_head.py); the other layers as
# MMDetection's Shared2FCBBoxHead. For `bbox_head.init_cfg` of sigmoid-loss
# configs; softmax heads keep MMDetection's (bias 0).
sigmoid_prior_init = [
    dict(type='Normal', std=0.01, bias_prob=0.001,
         override=dict(name='fc_cls')),
    dict(type='Normal', std=0.001, override=dict(name='fc_reg')),
    dict(type='Xavier', distribution='uniform',
         override=[dict(name='shared_fcs'), dict(name='cls_fcs'),
                   dict(name='reg_fcs')])
]

# Masks loaded as polygons (`poly2mask=False`), as in the EQL v2 and
# RefineMask authors' COCO / LVIS pipelines: short side 640-800 (LVIS) ...
polygon_ms_train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True,
         poly2mask=False),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736),
                (1333, 768), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
# ... and a single scale, (1333, 800) (COCO)
polygon_train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True,
         poly2mask=False),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
