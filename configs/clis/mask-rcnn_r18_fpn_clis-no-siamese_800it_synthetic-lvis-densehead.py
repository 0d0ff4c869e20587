# CLIS ablation: the image-classification branch gets its own 2-fc trunk and
# classifier instead of sharing the instance classifier's weights, so the
# image-level labels reach instance classification only through the shared
# backbone/neck and the contrastive loss.
_base_ = './mask-rcnn_r18_fpn_clis_800it_synthetic-lvis-densehead.py'

model = dict(roi_head=dict(bbox_head=dict(siamese=False)))
