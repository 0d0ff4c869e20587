# Self-training in stage 1 of the LVIS Challenge 2020 winners' recipe (Tan
# et al., arXiv:2009.01559; the report names self-training but gives no
# detail - everything below is our pattern): train stage 1 (EQL + RFS) on the
# ground truth PLUS pseudo-labels, the confident detections of a trained
# model written in LVIS format by tools/pseudo_label.py, e.g.
#
#   python tools/pseudo_label.py \
#       configs/lvis_traveler/mask-rcnn_r50_fpn_traveler-stage1-eql_sample1e-3_ms-1x_lvis-v1.py \
#       work_dirs/mask-rcnn_r50_fpn_traveler-stage1-eql_sample1e-3_ms-1x_lvis-v1/epoch_12.pth \
#       --images data/unlabeled/ --categories data/lvis_v1/annotations/lvis_v1_train.json \
#       --out data/lvis_v1/annotations/lvis_v1_pseudo.json --score-thr 0.5
#
# The two sets are concatenated (MMEngine's ConcatDataset); repeat-factor
# sampling applies to the ground truth only (ours). The ground truth comes
# first: its file is the training set whose class frequencies EQL uses
# (TrainCategoryInfoHook reads the first set of a ConcatDataset). Both are
# LVISFormatDataset so their metainfo (class names from the file) agree; the
# pseudo-label file copies the ground truth's categories.
_base_ = './mask-rcnn_r50_fpn_traveler-stage1-eql_sample1e-3_ms-1x_lvis-v1.py'

pseudo_label_file = 'annotations/lvis_v1_pseudo.json'  # under data_root
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(
                type='ClassBalancedDataset',
                oversample_thr=1e-3,
                dataset=dict(
                    type='LVISFormatDataset',
                    data_root='data/lvis_v1/',
                    ann_file='annotations/lvis_v1_train.json',
                    data_prefix=dict(img=''),
                    filter_cfg=dict(filter_empty_gt=True, min_size=32),
                    pipeline={{_base_.polygon_ms_train_pipeline}})),
            dict(
                type='LVISFormatDataset',
                data_root='data/lvis_v1/',
                ann_file=pseudo_label_file,
                data_prefix=dict(img=''),
                filter_cfg=dict(filter_empty_gt=True, min_size=32),
                pipeline={{_base_.polygon_ms_train_pipeline}})
        ]))
