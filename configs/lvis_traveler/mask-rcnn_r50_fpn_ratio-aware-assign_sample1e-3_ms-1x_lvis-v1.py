# The ratio-aware mask-proposal assignment of the LVIS Challenge 2020
# winners' recipe (Tan et al., arXiv:2009.01559) ALONE, on MMDetection's
# stock LVIS v1 Mask R-CNN (R50-FPN, repeat-factor sampling 1e-3,
# multi-scale, 1x): compare with
# `mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py`.
# The report gives no formula: the FPN level of a mask RoI from
# sqrt(w h) * r ** (gamma / 2), r = mask area / box area (ground truth in
# training), is ours (longtail_plugin/models/roi_heads/roi_extractors/
# ratio_aware_roi_extractor.py), as are gamma = 1, min_ratio = 1/16 and the
# test-time choice test_ratio='default' (no ratio at inference: MMDetection's
# box-scale level; 'predicted_mask' is the two-pass alternative).
_base_ = 'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
custom_imports = dict(imports=['longtail_plugin'], allow_failed_imports=False)

model = dict(
    roi_head=dict(
        type='RatioAwareRoIHead',
        test_ratio='default',
        mask_roi_extractor=dict(
            type='RatioAwareRoIExtractor', gamma=1.0, min_ratio=1.0 / 16)))
# LVIS metric with per-category AP (same AP as MMDetection's LVISMetric)
val_evaluator = dict(type='LongTailLVISMetric')
test_evaluator = val_evaluator
# LVIS evaluation once, after the last epoch
train_cfg = dict(val_interval=12)
