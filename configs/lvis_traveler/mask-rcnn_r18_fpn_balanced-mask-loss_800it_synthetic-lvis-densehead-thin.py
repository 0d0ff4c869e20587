# The balanced mask loss of the LVIS Challenge 2020 winners' recipe (Tan et
# al., arXiv:2009.01559) ALONE, on the softmax Mask R-CNN of the synthetic
# benchmark (dense-head set with thin shapes, 800 iterations): compare with
# `mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-densehead-thin.py`, the
# same model with MMDetection's plain per-pixel BCE. Formula and defaults
# (gamma = 1, min_fraction = 0.02) are ours:
# longtail_plugin/models/losses/balanced_mask_loss.py.
_base_ = './mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-densehead-thin.py'

model = dict(
    roi_head=dict(
        mask_head=dict(
            loss_mask=dict(
                _delete_=True,
                type='BalancedMaskLoss',
                gamma=1.0,
                min_fraction=0.02,
                loss_weight=1.0))))
