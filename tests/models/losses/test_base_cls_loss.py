"""Tests of BaseClassificationLoss, the frame of the classification losses:
the custom-channel protocol, the checks (issue 20 item 3), the empty batch,
the one reduction rule and the statistics step - on a toy loss with
hand-computed values and on each loss built on the frame."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from longtail_plugin.models.losses import (BaseClassificationLoss,
                                           EqualizationLoss,
                                           EqualizationLossV2,
                                           SoftmaxEqualizationLoss)
from longtail_plugin.models.losses.utils import (reduction_scale,
                                                 weighted_reduce)


class ToyLoss(BaseClassificationLoss):
    """Per-sample loss = sum of the logits: every value is easy by hand."""
    use_sigmoid = False
    num_extra_channels = 1

    def __init__(self, **kwargs):
        super().__init__(stats_init_ratio=1.0, **kwargs)
        self.seen = []

    def loss_per_sample(self, logits, label):
        return logits.sum(dim=-1)

    def statistics_step(self, logits, label, weight, scale):
        self.seen.append((scale, None if weight is None else weight.clone()))
        c = self.num_classes
        # d(loss)/dz = scale * w_i for every entry; positives: label column
        w = torch.full((logits.size(0), ), scale, dtype=torch.float64)
        if weight is not None:
            w = w * weight.double()
        pos = torch.zeros(c, dtype=torch.float64)
        neg = torch.zeros(c, dtype=torch.float64)
        for i, y in enumerate(label.tolist()):
            for j in range(c):
                (pos if j == y else neg)[j] += w[i]
        return pos, neg


Z = [[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0], [4.0, 0.0, -2.0]]  # sums 6, -.5, 2
Y = [0, 2, 1]  # C = 2: labels 0, 1 classes, 2 background


def test_toy_reduction_rule_by_hand():
    loss = ToyLoss(num_classes=2, loss_weight=0.5)
    z, y = torch.tensor(Z), torch.tensor(Y)
    w = torch.tensor([1.0, 2.0, 0.0])
    assert loss(z, y).item() == pytest.approx(0.5 * (6 - 0.5 + 2) / 3)
    assert loss(z, y, w).item() == pytest.approx(0.5 * (6 - 1.0) / 3)
    assert loss(z, y, w, avg_factor=2.0).item() == pytest.approx(
        0.5 * 5.0 / 2.0, rel=1e-6)
    assert loss(z, y, w, reduction_override='sum').item() == pytest.approx(
        0.5 * 5.0)
    assert loss(z, y, w, reduction_override='none').tolist() == \
        pytest.approx([3.0, -0.5, 0.0])
    with pytest.raises(ValueError, match='avg_factor'):
        loss(z, y, w, avg_factor=2.0, reduction_override='sum')


def test_reduction_rule_is_mmdetections():
    from mmdet.models.losses.utils import weight_reduce_loss
    x = torch.randn(7, dtype=torch.float64)
    w = torch.rand(7, dtype=torch.float64)
    for red, af in [('mean', None), ('mean', 3.0), ('sum', None),
                    ('none', None), ('none', 2.0)]:
        assert torch.equal(
            weighted_reduce(x, w, red, af), weight_reduce_loss(x, w, red, af))


@pytest.mark.parametrize('red,af', [('mean', None), ('mean', 2.5),
                                    ('sum', None)])
def test_reduction_scale_is_the_derivative(red, af):
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    weighted_reduce(x, None, red, af).backward()
    assert torch.allclose(x.grad,
                          torch.full_like(x, reduction_scale(red, af, 5)))
    with pytest.raises(ValueError, match='unknown reduction'):
        reduction_scale('avg')


def test_statistics_step_gets_scale_and_weight_in_training_only():
    loss = ToyLoss(num_classes=2, loss_weight=0.5)
    z, y = torch.tensor(Z), torch.tensor(Y)
    w = torch.tensor([1.0, 2.0, 0.0])
    loss(z, y, w, avg_factor=4.0)
    (scale, weight), = loss.seen
    assert scale == pytest.approx(0.5 / 4.0)
    assert weight.tolist() == [1.0, 2.0, 0.0]
    # pos: sample 0 -> class 0 (0.125); sample 2 -> class 1 (w = 0)
    assert loss.grad_stats.pos_grad.tolist() == pytest.approx([0.125, 0.0])
    assert loss.grad_stats.neg_grad.tolist() == pytest.approx(
        [0.25, 0.125 + 0.25])
    loss.eval()
    loss(z, y)
    assert len(loss.seen) == 1 and int(loss.grad_stats.num_updates) == 1


def test_a_new_loss_is_its_formula():
    """Softmax cross-entropy in four lines gives F.cross_entropy."""

    class CE(BaseClassificationLoss):
        use_sigmoid = False
        num_extra_channels = 1

        def loss_per_sample(self, logits, label):
            return F.cross_entropy(logits, label, reduction='none')

    z = torch.randn(6, 4)
    y = torch.tensor([0, 3, 1, 2, 3, 0])
    w = torch.rand(6)
    ce = CE(num_classes=3)
    assert torch.allclose(
        ce(z, y, w, avg_factor=3.0),
        (F.cross_entropy(z, y, reduction='none') * w).sum() /
        (3.0 + torch.finfo(torch.float32).eps))
    assert ce.get_cls_channels(3) == 4


def _all_losses():
    return [
        EqualizationLoss(num_classes=3, image_frequency=[5e-4, 0.1, 0.2]),
        EqualizationLossV2(num_classes=3),
        SoftmaxEqualizationLoss(num_classes=3),
    ]


@pytest.mark.parametrize('loss', _all_losses(),
                         ids=lambda m: type(m).__name__)
def test_labels_outside_range_or_not_integer(loss):
    name = type(loss).__name__
    width = 4  # every loss accepts C + 1 columns outside a head
    z = torch.zeros(2, width)
    for bad in (-1, 4):
        y = torch.tensor([0, bad])
        with pytest.raises(ValueError,
                           match=rf'{name}: label {bad} .*\[0, 3\]'):
            loss(z, y)
    with pytest.raises(ValueError, match=rf'{name}: labels must be integers'):
        loss(z, torch.tensor([0.0, 1.7]))
    with pytest.raises(ValueError, match=rf'{name}: 3 labels for 2 rows'):
        loss(z, torch.tensor([0, 1, 2]))
    # the valid range itself is accepted (3 = background)
    assert torch.isfinite(loss(z, torch.tensor([0, 3])))


@pytest.mark.parametrize('loss', _all_losses(),
                         ids=lambda m: type(m).__name__)
def test_reduction_override_and_weight_checks(loss):
    name = type(loss).__name__
    z, y = torch.zeros(2, 4), torch.tensor([0, 3])
    with pytest.raises(ValueError, match=rf'{name}: reduction_override'):
        loss(z, y, reduction_override='avg')
    with pytest.raises(ValueError, match=rf'{name}: weight has shape'):
        loss(z, y, torch.ones(3))
    with pytest.raises(ValueError, match=rf'{name}: reduction must be'):
        type(loss)(num_classes=3, reduction='avg', **_freq(loss))
    with pytest.raises(ValueError, match=rf'{name}: num_classes must be'):
        type(loss)(num_classes=0, **_freq(loss))


def _freq(loss):
    return (dict(image_frequency=[0.1] * 3)
            if isinstance(loss, EqualizationLoss) else {})


@pytest.mark.parametrize('loss', _all_losses(),
                         ids=lambda m: type(m).__name__)
def test_use_sigmoid_must_match_the_kind(loss):
    kind = type(loss).use_sigmoid
    with pytest.raises(ValueError, match=f'use_sigmoid must be {kind}'):
        type(loss)(num_classes=3, use_sigmoid=not kind, **_freq(loss))


@pytest.mark.parametrize('loss', _all_losses(),
                         ids=lambda m: type(m).__name__)
def test_empty_batch_zero_loss_with_graph(loss):
    for red in ('mean', 'sum', 'none'):
        z = torch.zeros(0, 4, requires_grad=True)
        out = loss(z, torch.zeros(0, dtype=torch.long),
                   reduction_override=red)
        assert out.shape == ((0, ) if red == 'none' else ())
        assert out.grad_fn is not None
        out.sum().backward()
        assert z.grad is not None


@pytest.mark.parametrize('loss,channels', [
    (EqualizationLoss(num_classes=3, image_frequency=[0.1] * 3), 3),
    (EqualizationLossV2(num_classes=3), 4),
    (SoftmaxEqualizationLoss(num_classes=3), 4),
], ids=['EqualizationLoss', 'EqualizationLossV2', 'SoftmaxEqualizationLoss'])
def test_head_class_count_at_build_and_width_at_call(loss, channels):
    name = type(loss).__name__
    with pytest.raises(ValueError, match=rf'{name}: num_classes=3 but the '
                       r'head has num_classes=2'):
        loss.get_cls_channels(2)
    assert loss.get_cls_channels(3) == channels
    # bound to a head: exactly the head's width
    loss(torch.zeros(2, channels), torch.tensor([0, 3]))
    other = 4 if channels == 3 else 3
    with pytest.raises(ValueError,
                       match=rf'{name}: cls_score has shape \(2, {other}\), '
                       rf'expected \[N, {channels}\] for num_classes=3'):
        loss(torch.zeros(2, other), torch.tensor([0, 1]))


def test_softmax_eql_one_class_fewer_is_caught():
    """Issue 20 item 3: a head with 99 classes (100-wide logits) and a loss
    built for 100 used to give a finite loss with the background column
    read as class 99."""
    loss = SoftmaxEqualizationLoss(num_classes=100)
    with pytest.raises(ValueError, match='num_classes=100 but the head has '
                       'num_classes=99'):
        loss.get_cls_channels(99)
    # outside a head: 100 columns is the plain-classifier layout, where the
    # detector's background label 99 + 1 = 100 is out of range
    z = torch.zeros(3, 100)
    with pytest.raises(ValueError, match=r'label 100 .*\[0, 99\]'):
        loss(z, torch.tensor([0, 5, 100]))


def test_eql_ann_file_class_count_names_key_and_file(tmp_path):
    path = tmp_path / 'train.json'
    path.write_text(json.dumps(dict(
        images=[dict(id=1)], annotations=[],
        categories=[dict(id=i, name=str(i), image_count=1,
                         instance_count=1) for i in (1, 2)])))
    with pytest.raises(ValueError, match=r"EqualizationLoss: num_classes=3 "
                       rf"but ann_file='{path}' has 2 categories"):
        EqualizationLoss(num_classes=3, ann_file=str(path))


def test_eqlv2_float_labels_no_longer_truncated():
    loss = EqualizationLossV2(num_classes=3)
    with pytest.raises(ValueError, match='labels must be integers'):
        loss(torch.zeros(1, 4), torch.tensor([1.9]))


def test_eql_v1_minus_one_no_longer_background():
    loss = EqualizationLoss(num_classes=3, image_frequency=[0.1] * 3)
    z = torch.tensor([[1.0, -2.0, 0.5]])
    with pytest.raises(ValueError, match='label -1'):
        loss(z, torch.tensor([-1]))
    bce = sum(math.log1p(math.exp(v)) for v in (1.0, -2.0, 0.5))
    assert loss(z, torch.tensor([3])).item() == pytest.approx(bce, rel=1e-6)
