"""Tests of SoftmaxEqualizationLoss (Softmax-EQL, Tan et al. TPAMI)."""
import math

import pytest
import torch

from longtail_plugin.models.losses import SoftmaxEqualizationLoss


def ce(z, y):
    return math.log(sum(math.exp(v) for v in z)) - z[y]


Z = [[1.0, 0.5, -0.3], [0.2, -0.1, 0.4], [0.0, 0.3, 0.1]]
Y = [0, 2, 1]


def adjusted(z, y, u, tau=1.0, fg=None):
    """z'_j = z_j + tau log(u_j / u_y) for foreground j != y."""
    fg = len(u) if fg is None else fg
    out = list(z)
    if y < fg:
        for j in range(fg):
            if j != y:
                out[j] = z[j] + tau * math.log(u[j] / u[y])
    return out


def test_initial_loss_is_cross_entropy():
    loss = SoftmaxEqualizationLoss(num_classes=3)
    out = loss(torch.tensor(Z), torch.tensor(Y))
    assert out.item() == pytest.approx(
        sum(ce(z, y) for z, y in zip(Z, Y)) / 3, rel=1e-6)


@pytest.mark.parametrize('indicator', ['pos', 'neg', 'pos_and_neg'])
def test_logit_adjustment_by_hand(indicator):
    loss = SoftmaxEqualizationLoss(num_classes=3, indicator=indicator,
                                   tau=0.5).eval()
    pos, neg = [4.0, 1.0, 0.0], [2.0, 3.0, 0.5]
    loss.grad_stats.pos_grad.copy_(torch.tensor(pos))
    loss.grad_stats.neg_grad.copy_(torch.tensor(neg))
    u = {'pos': pos, 'neg': neg,
         'pos_and_neg': [p + n for p, n in zip(pos, neg)]}[indicator]
    u = [max(v, 1e-4) for v in u]  # pos_2 = 0 is clamped to 1e-4
    expected = sum(
        ce(adjusted(z, y, u, tau=0.5), y) for z, y in zip(Z, Y)) / 3
    out = loss(torch.tensor(Z), torch.tensor(Y))
    assert out.item() == pytest.approx(expected, rel=1e-5)


def test_detection_layout_background_not_adjusted():
    # C = 2 foreground classes + background column 2
    loss = SoftmaxEqualizationLoss(num_classes=2).eval()
    loss.grad_stats.pos_grad.copy_(torch.tensor([4.0, 1.0]))
    y = [0, 2, 1]  # row 1 is background
    u = [4.0, 1.0]
    rows = [ce(adjusted(z, yi, u, fg=2), yi) for z, yi in zip(Z, y)]
    assert rows[1] == ce(Z[1], 2)  # background RoI: plain CE
    out = loss(torch.tensor(Z), torch.tensor(y), reduction_override='none')
    assert out.tolist() == pytest.approx(rows, rel=1e-5)


def _autograd_stats(loss, z, y, lw, avg_factor):
    zz = z.clone().requires_grad_()
    out = loss(zz, y, lw, avg_factor=avg_factor)
    (g, ) = torch.autograd.grad(out, zz)
    onehot = torch.nn.functional.one_hot(y, z.shape[1]).double()
    c = loss.num_classes
    return ((g.abs() * onehot).sum(0)[:c], (g.abs() *
                                            (1 - onehot)).sum(0)[:c])


@pytest.mark.parametrize('columns', [3, 4])
def test_statistics_equal_autograd_over_steps(columns):
    loss = SoftmaxEqualizationLoss(num_classes=3, loss_weight=2.0)
    g = torch.Generator().manual_seed(1)
    exp_pos = torch.zeros(3, dtype=torch.float64)
    exp_neg = torch.zeros(3, dtype=torch.float64)
    for step in range(3):
        z = torch.randn(5, columns, generator=g, dtype=torch.float64)
        y = torch.randint(0, columns, (5, ), generator=g)
        lw = torch.tensor([1.0, 0.5, 0.0, 2.0, 1.0], dtype=torch.float64)
        # what the stats should receive: |dL/dz| of this very loss
        loss.eval()
        p, n = _autograd_stats(loss, z, y, lw, avg_factor=4.0)
        loss.train()
        loss(z, y, lw, avg_factor=4.0)
        exp_pos += p
        exp_neg += n
        assert torch.allclose(loss.grad_stats.pos_grad, exp_pos, rtol=1e-9)
        assert torch.allclose(loss.grad_stats.neg_grad, exp_neg, rtol=1e-9)
    assert int(loss.grad_stats.num_updates) == 3
    assert exp_pos.sum() > 0


def test_gradcheck_float64():
    loss = SoftmaxEqualizationLoss(num_classes=3).eval()
    loss.grad_stats.pos_grad.copy_(torch.tensor([4.0, 1.0, 0.2]))
    z = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    lw = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x: loss(x, torch.tensor(Y), lw, avg_factor=3.0), (z, ))


def test_state_dict_roundtrip_same_next_loss(tmp_path):
    torch.manual_seed(0)
    a = SoftmaxEqualizationLoss(num_classes=3)
    for _ in range(3):
        a(torch.randn(6, 3), torch.randint(0, 3, (6, )))
    torch.save(a.state_dict(), tmp_path / 'a.pth')
    b = SoftmaxEqualizationLoss(num_classes=3)
    b.load_state_dict(torch.load(tmp_path / 'a.pth', weights_only=True))
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    z, y = torch.randn(6, 3), torch.randint(0, 3, (6, ))
    assert torch.equal(a(z, y), b(z, y))


def test_empty_nonfinite_and_errors():
    loss = SoftmaxEqualizationLoss(num_classes=3)
    z = torch.zeros(0, 3, requires_grad=True)
    out = loss(z, torch.zeros(0, dtype=torch.long))
    assert out.item() == 0 and out.grad_fn is not None
    out.backward()
    loss(torch.tensor(Z), torch.tensor(Y))
    before = {k: v.clone() for k, v in loss.grad_stats.state_dict().items()}
    bad = torch.tensor(Z)
    bad[0, 1] = float('inf')
    loss(bad, torch.tensor(Y))
    for k in ('pos_grad', 'neg_grad', 'num_updates'):
        assert torch.equal(loss.grad_stats.state_dict()[k], before[k])
    assert int(loss.grad_stats.num_skipped) == 1
    with pytest.raises(ValueError, match='num_classes'):
        loss(torch.zeros(2, 6), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match='indicator'):
        SoftmaxEqualizationLoss(num_classes=3, indicator='both')


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
            loss_cls=dict(type='SoftmaxEqualizationLoss', num_classes=3),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)))
    assert head.fc_cls.out_features == 4  # stock softmax layout
    cls_score, bbox_pred = head(torch.randn(4, 4, 2, 2))
    rois = torch.tensor([[0, 1., 1., 10., 10.]] * 4)
    losses = head.loss(cls_score, bbox_pred, rois, torch.tensor([0, 3, 1, 2]),
                       torch.ones(4), torch.zeros(4, 4), torch.ones(4, 4))
    assert {'loss_cls', 'acc', 'loss_bbox'} <= set(losses)
    assert int(head.loss_cls.grad_stats.num_updates) == 1
