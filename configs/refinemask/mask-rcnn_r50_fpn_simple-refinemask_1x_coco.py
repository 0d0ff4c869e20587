# The authors' later "faster" RefineMask variant (no published accuracy):
# no semantic logits/loss, plain RoIAlign of the semantic features, global
# context in the fusion, last logits at 56 upsampled to 112, class-agnostic
# last stage, stage weights 0.5, 0.75, 0.75, 1.0.
_base_ = './mask-rcnn_r50_fpn_refinemask_1x_coco.py'

model = dict(
    roi_head=dict(
        mask_head=dict(
            _delete_=True,
            type='SimpleRefineMaskHead',
            num_classes=80,
            # the authors' 256-channel semantic convs, reduced to each
            # stage's width by a 1x1 conv + ReLU before the RoIAlign
            # (`semantic_transform_in`), and the RoI mean added as is to the
            # fusion's branch sum
            semantic_channels=256,
            semantic_transform='in',
            global_context='identity',
            stage_loss_weights=(0.5, 0.75, 0.75, 1.0))))
