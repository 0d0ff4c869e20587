# CLIS ablation: without task-specialised branches (one shared 2-fc trunk
# feeds classification, box regression and objectness, as in
# Shared2FCBBoxHead); the siamese image branch and the contrastive loss stay.
_base_ = './mask-rcnn_r18_fpn_clis_800it_synthetic-lvis-densehead.py'

model = dict(roi_head=dict(bbox_head=dict(decouple=False)))
