# Baseline: softmax cross-entropy with repeat-factor sampling (Gupta et al.,
# LVIS, CVPR 2019). The threshold is a fraction of images: LVIS's t = 1e-3 on
# ~100k images repeats a one-image category sqrt(1e-3 * 1e5) = 10 times; on
# the 1,200-image synthetic set the same repetition needs t = 1e-3 * 1e5 / 1200
# ~= 0.08 (t = 1e-3 would repeat it ~1.1 times, i.e. do nothing).
_base_ = '../_base_/mask-rcnn_r18_fpn_synthetic-lvis.py'

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ClassBalancedDataset',
        oversample_thr=0.08,
        dataset={{_base_.train_dataloader.dataset}}))
