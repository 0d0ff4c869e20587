# Control for the image-level rows of the dense-head synthetic set: the
# Detic-style anchor's data path (4 detection + 2 image-level images per
# batch, ImageLevelTwoStageDetector) with its image-label loss switched off.
# Trained only to tell what the mixed data path itself does to detection;
# it should match the softmax baseline.
_base_ = './mask-rcnn_r18_fpn_detic-image-label_800it_synthetic-lvis-densehead.py'

model = dict(roi_head=dict(image_loss_weight=0.0))
