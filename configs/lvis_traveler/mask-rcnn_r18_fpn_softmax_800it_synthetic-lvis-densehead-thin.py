# The softmax baseline at 800 iterations on the dense-head set with thin
# shapes: the dense-head synthetic set (head_instances=3) whose shape
# vocabulary also holds seven thin, hollow or diagonal shapes (rods and
# frames near a diagonal, thin C-rings and crescents, L, V and Z strokes;
# mask/box area ratio < 0.25), so a third of the categories in every
# frequency group are thin (median ratio < 0.3; 6% of the instances of the
# plain dense-head set are below 0.3, 37% of this one). The set for the mask
# components of the LVIS 2020 recipe (balanced mask loss, ratio-aware mask
# RoI assignment); see configs/lvis_traveler/README.md ("Synthetic set: thin
# objects") for the measured distribution and the thinnest categories.
_base_ = '../baselines/mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-densehead.py'

data_root = 'data/synthetic_lvis_densehead_thin/'
# generator arguments (tools/make_synthetic_lvis.py --head-instances 3
# --thin-shapes); tools/lt_benchmark.py generates the set from them when it
# is missing
synthetic_lvis = dict(head_instances=3.0, thin_shapes=True)
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/lvis_v1_val.json')
test_evaluator = val_evaluator
