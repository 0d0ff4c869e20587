"""Tests of EqualizationLoss (EQL v1, Tan et al. CVPR 2020)."""
import json
import math

import pytest
import torch

from longtail_plugin.models.losses import EqualizationLoss


def bce(z, y):
    return math.log1p(math.exp(-z)) if y else math.log1p(math.exp(z))


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


@pytest.fixture
def ann_file(tmp_path):
    # 1000 images; class frequencies 0.001 (tail for 1.76e-3), 0.05, 0.5
    data = dict(
        images=[dict(id=i) for i in range(1000)],
        annotations=[],
        categories=[
            dict(id=1, name='a', image_count=1, instance_count=1,
                 frequency='r'),
            dict(id=2, name='b', image_count=50, instance_count=60,
                 frequency='c'),
            dict(id=3, name='c', image_count=500, instance_count=900,
                 frequency='f'),
        ])
    path = tmp_path / 'train.json'
    path.write_text(json.dumps(data))
    return str(path)


Z = [[1.0, -0.5, 0.2], [0.3, 0.1, -1.0], [-0.2, 0.4, 0.0]]
Y = [1, 3, 0]  # C = 3, label 3 = background


def hand_loss(tail):
    total = 0.0
    for zi, yi in zip(Z, Y):
        fg = yi < 3
        for j in range(3):
            y = 1 if j == yi else 0
            w = 1 - (1 if fg else 0) * tail[j] * (1 - y)
            total += w * bce(zi[j], y)
    return total / 3


def test_loss_from_ann_file(ann_file):
    loss = EqualizationLoss(num_classes=3, lambda_=1.76e-3, ann_file=ann_file)
    assert loss.tail_mask.tolist() == [1.0, 0.0, 0.0]
    out = loss(torch.tensor(Z), torch.tensor(Y))
    assert out.item() == pytest.approx(hand_loss([1, 0, 0]), rel=1e-6)
    # lambda above 0.05 makes class b tail as well
    loss2 = EqualizationLoss(num_classes=3, lambda_=0.1, ann_file=ann_file)
    assert loss2(torch.tensor(Z), torch.tensor(Y)).item() == pytest.approx(
        hand_loss([1, 1, 0]), rel=1e-6)
    # the tail flags are derived from the data, not stored in checkpoints
    assert 'tail_mask' not in loss.state_dict()


def test_explicit_frequency_weights_and_avg_factor():
    loss = EqualizationLoss(
        num_classes=3, lambda_=1e-3, image_frequency=[5e-4, 0.1, 0.2],
        loss_weight=0.5)
    z, y = torch.tensor(Z), torch.tensor(Y)
    lw = torch.tensor([2.0, 1.0, 0.0])
    # per-RoI losses by hand
    rows = []
    for zi, yi in zip(Z, Y):
        fg = yi < 3
        rows.append(
            sum((1 - fg * [1, 0, 0][j] * (j != yi)) * bce(zi[j], j == yi)
                for j in range(3)))
    assert loss(z, y, lw, avg_factor=2.0).item() == pytest.approx(
        0.5 * (2 * rows[0] + rows[1]) / 2, rel=1e-6)
    assert loss(
        z, y, lw, reduction_override='none').tolist() == pytest.approx(
            [0.5 * 2 * rows[0], 0.5 * rows[1], 0.0], rel=1e-6)


def test_missing_or_mismatched_frequencies(ann_file):
    # without counts the loss waits for TrainCategoryInfoHook; training
    # before that is a clear error
    unbound = EqualizationLoss(num_classes=3)
    assert unbound.needs_category_info
    with pytest.raises(ValueError, match='ann_file'):
        unbound(torch.tensor(Z), torch.tensor(Y))
    with pytest.raises(ValueError, match='num_classes'):
        EqualizationLoss(num_classes=4, ann_file=ann_file)
    with pytest.raises(ValueError, match='image_frequency'):
        EqualizationLoss(num_classes=4, image_frequency=[0.1, 0.2])
    with pytest.raises(FileNotFoundError):
        EqualizationLoss(num_classes=3, ann_file='/no/such/file.json')


def test_gradcheck_and_ignored_background_column():
    loss = EqualizationLoss(num_classes=3, image_frequency=[5e-4, 0.1, 0.2])
    y = torch.tensor(Y)
    lw = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    z = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x: loss(x, y, lw, avg_factor=3.0), (z, ))
    # a C+1 layout: the extra column is ignored and gets no gradient
    z4 = torch.cat([torch.tensor(Z), torch.ones(3, 1)], 1).requires_grad_()
    out = loss(z4, y)
    out.backward()
    assert out.item() == pytest.approx(
        loss(torch.tensor(Z), y).item(), rel=1e-7)
    assert torch.all(z4.grad[:, 3] == 0)
    # the tail class 0 gets no gradient from RoI 0 (fg of class 1)
    assert z4.grad[0, 0] == 0 and z4.grad[1, 0] != 0


def test_empty_batch_and_wrong_columns():
    loss = EqualizationLoss(num_classes=3, image_frequency=[5e-4, 0.1, 0.2])
    z = torch.zeros(0, 3, requires_grad=True)
    out = loss(z, torch.zeros(0, dtype=torch.long))
    assert out.item() == 0 and out.grad_fn is not None
    out.backward()
    with pytest.raises(ValueError, match='num_classes'):
        loss(torch.zeros(2, 5), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match='num_classes'):
        loss.get_cls_channels(4)


def test_activation():
    loss = EqualizationLoss(num_classes=3, image_frequency=[5e-4, 0.1, 0.2])
    s = loss.get_activation(torch.tensor(Z))
    assert s.shape == (3, 4)
    for i in range(3):
        for j in range(3):
            assert s[i, j].item() == pytest.approx(sig(Z[i][j]), rel=1e-6)
        none = (1 - sig(Z[i][0])) * (1 - sig(Z[i][1])) * (1 - sig(Z[i][2]))
        assert s[i, 3].item() == pytest.approx(none, rel=1e-5)
    acc = loss.get_accuracy(torch.tensor(Z), torch.tensor(Y))
    # fg RoIs 0 (argmax 0, label 1) and 2 (argmax 1, label 0)
    assert acc['acc_classes'].item() == 0.0


def test_bbox_head_integration():
    pytest.importorskip('mmcv.ops')
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS
    head = MODELS.build(
        dict(
            type='Shared2FCBBoxHead',
            in_channels=4,
            fc_out_channels=8,
            roi_feat_size=2,
            num_classes=3,
            loss_cls=dict(
                type='EqualizationLoss',
                num_classes=3,
                image_frequency=[5e-4, 0.1, 0.2]),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)))
    assert head.fc_cls.out_features == 3
    cls_score, bbox_pred = head(torch.randn(4, 4, 2, 2))
    rois = torch.tensor([[0, 1., 1., 10., 10.]] * 4)
    res = head.predict_by_feat((rois, ), (cls_score, ), (bbox_pred, ),
                               [dict(img_shape=(32, 32))],
                               rcnn_test_cfg=None)
    assert torch.allclose(res[0].scores[:, :3], cls_score.detach().sigmoid())
    losses = head.loss(cls_score, bbox_pred, rois, torch.tensor([0, 3, 1, 2]),
                       torch.ones(4), torch.zeros(4, 4), torch.ones(4, 4))
    assert {'loss_cls', 'acc_classes', 'loss_bbox'} <= set(losses)


def test_frequency_denominator_annotated_images(tmp_path):
    """The authors' rule divides image counts by the annotated images.

    11 images, 10 of them with an annotation; class a is in 1 image. Over
    all images f_a = 1/11 = 0.0909 < 0.095 (tail); over annotated images
    f_a = 1/10 = 0.1 >= 0.095 (not tail). Class b (5 images) is never tail.
    """
    anns = [dict(id=1, image_id=0, category_id=1)]
    anns += [dict(id=2 + i, image_id=i, category_id=2) for i in range(5)]
    anns += [dict(id=10 + i, image_id=i, category_id=2)
             for i in range(5, 10)]  # images 5-9: class b again (no count)
    data = dict(images=[dict(id=i) for i in range(11)], annotations=anns,
                categories=[dict(id=1, name='a', image_count=1,
                                 instance_count=1, frequency='r'),
                            dict(id=2, name='b', image_count=5,
                                 instance_count=10, frequency='c')])
    path = tmp_path / 'train.json'
    path.write_text(json.dumps(data))
    plain = EqualizationLoss(num_classes=2, lambda_=0.095,
                             ann_file=str(path))
    assert plain.tail_mask.tolist() == [1.0, 0.0]
    authors = EqualizationLoss(num_classes=2, lambda_=0.095,
                               ann_file=str(path),
                               frequency_denominator='annotated_images')
    assert authors.tail_mask.tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match='frequency_denominator'):
        EqualizationLoss(num_classes=2, frequency_denominator='anns')
