# EQL on the synthetic benchmark. lambda is a fraction of training images and
# is rescaled: LVIS v1's 1.1e-3 x ~100k images = 110 images; on the 1,200
# synthetic training images that is 110 / 1200 ~= 0.092 (rare + common tail,
# as on LVIS). Frequencies are read from the training annotation file.
_base_ = '../_base_/mask-rcnn_r18_fpn_synthetic-lvis.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            # sigmoid prior init as in the EQL v2 synthetic config
            init_cfg={{_base_.sigmoid_prior_init}},
            loss_cls=dict(
                _delete_=True,
                type='EqualizationLoss',
                num_classes={{_base_.num_classes}},
                lambda_=0.092))))
# class frequencies: from the training set train_dataloader names (the one
# place its path is written), given to the loss when training starts
default_hooks = dict(category_info=dict(type='TrainCategoryInfoHook'))
