# EQL (Tan et al., "Equalization Loss for Long-Tailed Object Recognition",
# CVPR 2020) on LVIS v1: sigmoid classifier, tail threshold lambda = 1.1e-3
# (the authors' LVIS v1 setting; 1.76e-3 in the paper for v0.5) on image
# frequencies read from the training annotation file; random sampling.
_base_ = '../_base_/mask-rcnn_r50_fpn_random-ms-1x_lvis-v1.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            # the authors' prior p = 0.001 (configs/_base_/recipe_parts.py)
            init_cfg={{_base_.sigmoid_prior_init}},
            loss_cls=dict(
                _delete_=True,
                type='EqualizationLoss',
                num_classes=1203,
                lambda_=1.1e-3,
                # the authors' tail set: image counts over the images with
                # annotations (their table's denominator), configs/eql/README
                frequency_denominator='annotated_images'))))
# class frequencies: from the training set train_dataloader names (the one
# place its path is written), given to the loss when training starts
default_hooks = dict(category_info=dict(type='TrainCategoryInfoHook'))
