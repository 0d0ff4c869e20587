# The balanced mask loss of the LVIS Challenge 2020 winners' recipe (Tan et
# al., "1st Place Solution of LVIS Challenge 2020: A Good Box is not a
# Guarantee of a Good Mask", arXiv:2009.01559) ALONE, on MMDetection's stock
# LVIS v1 Mask R-CNN (R50-FPN, repeat-factor sampling 1e-3, multi-scale,
# 1x): compare with `mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py`.
# The report gives no formula and no weight: the loss (inverse-frequency
# foreground/background pixel weights per RoI, normalised to mean one) and
# its defaults gamma = 1, min_fraction = 0.02 are ours, see
# longtail_plugin/models/losses/balanced_mask_loss.py. loss_weight 1.0 is
# MMDetection's mask loss weight (the loss keeps plain BCE's scale).
_base_ = 'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
custom_imports = dict(imports=['longtail_plugin'], allow_failed_imports=False)

model = dict(
    roi_head=dict(
        mask_head=dict(
            loss_mask=dict(
                _delete_=True,
                type='BalancedMaskLoss',
                gamma=1.0,
                min_fraction=0.02,
                loss_weight=1.0))))
# LVIS metric with per-category AP (same AP as MMDetection's LVISMetric)
val_evaluator = dict(type='LongTailLVISMetric')
test_evaluator = val_evaluator
# LVIS evaluation once, after the last epoch
train_cfg = dict(val_interval=12)
