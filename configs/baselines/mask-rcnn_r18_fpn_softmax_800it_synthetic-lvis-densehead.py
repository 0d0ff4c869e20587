# The softmax baseline at 800 iterations on the dense-head variant of the
# synthetic set: same images, categories, image counts and frequency groups,
# but a frequent category has on average 3 instances in each image that has
# it (extra ones small), so rare + common categories are 10 % of the training
# instances instead of 24 % (LVIS v1: a few per cent). See
# configs/eqlv2/README.md ("Why EQL v2 costs frequent AP here").
_base_ = './mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis.py'

data_root = 'data/synthetic_lvis_densehead/'
# generator arguments (tools/make_synthetic_lvis.py --head-instances 3);
# tools/lt_benchmark.py generates the set from them when it is missing
synthetic_lvis = dict(head_instances=3.0)
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/lvis_v1_val.json')
test_evaluator = val_evaluator
