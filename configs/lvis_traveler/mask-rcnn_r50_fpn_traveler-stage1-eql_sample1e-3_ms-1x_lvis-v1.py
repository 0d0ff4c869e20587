# Stage 1 (representation) of the LVIS Challenge 2020 winners' recipe (Tan
# et al., arXiv:2009.01559): EQL (configs/eql/mask-rcnn_r50_fpn_eql_1x_lvis-v1.py:
# sigmoid classifier, lambda = 1.1e-3) plus repeat-factor sampling
# (ClassBalancedDataset, oversample_thr = 1e-3, MMDetection's LVIS setting),
# multi-scale 640-800 training, on Mask R-CNN R50-FPN, 1x.
# The report's stage 1 uses a larger detector (X101-FPN baseline), heavier
# data augmentation and self-training; it gives neither the RFS threshold
# nor the augmentation list: RFS 1e-3 and the 640-800 multi-scale are ours
# (MMDetection's LVIS defaults). Self-training on top of this stage:
# mask-rcnn_r50_fpn_traveler-stage1-eql-self-training_sample1e-3_ms-1x_lvis-v1.py.
_base_ = '../eql/mask-rcnn_r50_fpn_eql_1x_lvis-v1.py'

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ClassBalancedDataset',
        oversample_thr=1e-3,
        dataset=dict(
            type='LVISV1Dataset',
            data_root='data/lvis_v1/',
            ann_file='annotations/lvis_v1_train.json',
            data_prefix=dict(img=''),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline={{_base_.polygon_ms_train_pipeline}})))
