# CLIS ablation: without the contrastive regulariser (no projection heads,
# loss_contrastive logged as zero); objects are still pasted, so the data
# the detector sees is CLIS's.
_base_ = './mask-rcnn_r18_fpn_clis_800it_synthetic-lvis-densehead.py'

model = dict(roi_head=dict(contrastive_weight=None))
