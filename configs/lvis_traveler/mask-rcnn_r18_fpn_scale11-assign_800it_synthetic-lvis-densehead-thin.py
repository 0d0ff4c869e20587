# Control for the ratio-aware assignment on the synthetic benchmark: the
# same RoI head and mask RoI extractor with finest_scale = 11 (MMDetection's
# 56 scaled to our 5x smaller images) but gamma = 0, i.e. MMDetection's
# box-scale level rule at that scale with the ratio ignored. The difference
# to `mask-rcnn_r18_fpn_ratio-aware-assign_800it_synthetic-lvis-densehead-thin.py`
# is the ratio alone.
_base_ = './mask-rcnn_r18_fpn_ratio-aware-assign_800it_synthetic-lvis-densehead-thin.py'

model = dict(roi_head=dict(mask_roi_extractor=dict(gamma=0.0)))
