# The EFL paper's "improved baseline" with the focal loss, as close as
# MMDetection allows: the RetinaNet recipe of retinanet_r50_fpn_focal_2x_
# lvis-v1.py with ATSSHead (ATSS assignment over the top 18 = 9 x 2 anchors
# per level; a centerness branch stands in for the paper's IoU branch: see
# "Recipe" in README.md).
_base_ = './retinanet_r50_fpn_focal_2x_lvis-v1.py'

model = dict(
    type='ATSS',
    bbox_head=dict(
        type='ATSSHead',
        loss_centerness=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        init_cfg=dict(override=dict(name='atss_cls'))),
    train_cfg=dict(
        _delete_=True,
        assigner=dict(type='ATSSAssigner', topk=18),
        allowed_border=-1,
        pos_weight=-1,
        debug=False))
