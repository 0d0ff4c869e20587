# CLIS hyper-parameter probe (one seed; configs/clis/README.md, "Defaults
# and the probes behind them"): the data mix. 4 detection + 4 image-level
# images per batch instead of 4 + 2, everything else CLIS's: twice the
# image-level labels per iteration and twice the contrastive pairs, the
# detection signal unchanged.
_base_ = './mask-rcnn_r18_fpn_clis_800it_synthetic-lvis-densehead.py'

num_image_level_per_batch = 4
batch_size = 4 + num_image_level_per_batch
train_dataloader = dict(
    batch_size=batch_size,
    sampler=dict(batch_size=batch_size, source_ratio=[4, 4]))
