"""Tests of BalancedMaskLoss (our fg/bg re-balanced mask BCE)."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from longtail_plugin.models.losses import BalancedMaskLoss
from longtail_plugin.models.losses.balanced_mask_loss import \
    balanced_pixel_weights


def bce(x, t):
    """BCE with logits of one pixel (plain Python)."""
    return max(x, 0) - x * t + math.log1p(math.exp(-abs(x)))


def test_balanced_targets_give_plain_bce():
    # every RoI has half foreground pixels -> all weights 1
    x = [[0.3, -1.2, 2.0, 0.1], [-0.5, 0.7, 1.5, -2.0]]
    t = [[1, 0, 1, 0], [0, 0, 1, 1]]
    pred = torch.tensor(x, dtype=torch.float64).reshape(2, 2, 2)
    target = torch.tensor(t, dtype=torch.float64).reshape(2, 2, 2)
    hand = sum(bce(a, b) for r, s in zip(x, t) for a, b in zip(r, s)) / 8
    out = BalancedMaskLoss()(pred, target)
    assert out.item() == pytest.approx(hand, rel=1e-12)
    assert balanced_pixel_weights(target).eq(1).all()


def test_imbalanced_roi_by_hand():
    # 2x2 RoI with one foreground pixel: f = 1/4, u_fg = 4, u_bg = 4/3,
    # Z = 1/4 * 4 + 3/4 * 4/3 = 2 -> w_fg = 2, w_bg = 2/3
    x = [0.4, -0.3, 1.1, -2.2]
    t = [1, 0, 0, 0]
    pred = torch.tensor(x, dtype=torch.float64).reshape(1, 2, 2)
    target = torch.tensor(t, dtype=torch.float64).reshape(1, 2, 2)
    w = balanced_pixel_weights(target).flatten().tolist()
    assert w == pytest.approx([2.0, 2 / 3, 2 / 3, 2 / 3], rel=1e-12)
    hand = (2.0 * bce(x[0], 1) + 2 / 3 * sum(bce(a, 0) for a in x[1:])) / 4
    assert BalancedMaskLoss()(pred, target).item() == pytest.approx(
        hand, rel=1e-12)
    # gamma = 0.5: u_fg = 2, u_bg = (4/3)^0.5, weights renormalised
    u_fg, u_bg = 2.0, math.sqrt(4 / 3)
    z = 0.25 * u_fg + 0.75 * u_bg
    hand_half = (u_fg * bce(x[0], 1) + u_bg * sum(bce(a, 0)
                                                    for a in x[1:])) / z / 4
    assert BalancedMaskLoss(gamma=0.5)(pred, target).item() == \
        pytest.approx(hand_half, rel=1e-12)


def test_clamp_and_weights_average_to_one():
    # 4x4 with one fg pixel, min_fraction 0.25: the fraction 1/16 is
    # clamped to 1/4 -> u_fg = 4, u_bg = 4/3, Z = 1/16*4 + 15/16*4/3 = 1.5
    target = torch.zeros(1, 4, 4, dtype=torch.float64)
    target[0, 1, 2] = 1.0
    w = balanced_pixel_weights(target, min_fraction=0.25)
    assert w[0, 1, 2].item() == pytest.approx(8 / 3, rel=1e-12)
    assert w[0, 0, 0].item() == pytest.approx(8 / 9, rel=1e-12)
    # unclamped: 1 / (2 f) and 1 / (2 (1 - f))
    w = balanced_pixel_weights(target, min_fraction=0.01)
    assert w[0, 1, 2].item() == pytest.approx(8.0, rel=1e-12)
    assert w[0, 0, 0].item() == pytest.approx(8 / 15, rel=1e-12)
    # random soft targets: the pixel weights of each RoI average to one
    soft = torch.rand(5, 7, 7, dtype=torch.float64,
                      generator=torch.Generator().manual_seed(0)) ** 4
    means = balanced_pixel_weights(soft).mean(dim=(1, 2))
    assert torch.allclose(means, torch.ones(5, dtype=torch.float64))


def test_uniform_rois_and_gamma_zero_are_plain_bce():
    g = torch.Generator().manual_seed(3)
    pred = torch.randn(3, 5, 6, 6, dtype=torch.float64, generator=g)
    target = (torch.rand(3, 6, 6, generator=g) > 0.8).double()
    target[1] = 0.0  # an all-background RoI
    target[2] = 1.0  # an all-foreground RoI
    label = torch.tensor([4, 0, 2])
    sel = pred[torch.arange(3), label]
    plain = F.binary_cross_entropy_with_logits(sel, target, reduction='none')
    per_roi = BalancedMaskLoss()(pred, target, label,
                                 reduction_override='none')
    assert per_roi[1:].tolist() == pytest.approx(
        plain[1:].mean(dim=(1, 2)).tolist(), rel=1e-12)
    assert per_roi[0].item() != pytest.approx(plain[0].mean().item(),
                                              rel=1e-3)
    # gamma = 0 is MMDetection's mask cross-entropy
    from mmdet.models.losses import CrossEntropyLoss
    ref = CrossEntropyLoss(use_mask=True)(pred, target, label)
    out = BalancedMaskLoss(gamma=0.0)(pred, target, label)
    assert out.item() == pytest.approx(ref.item(), rel=1e-12)


def test_reductions_weight_and_avg_factor():
    g = torch.Generator().manual_seed(4)
    pred = torch.randn(3, 2, 4, 4, dtype=torch.float64, generator=g)
    target = (torch.rand(3, 4, 4, generator=g) > 0.7).double()
    label = torch.tensor([1, 0, 1])
    loss = BalancedMaskLoss(loss_weight=2.0)
    per_roi = loss(pred, target, label, reduction_override='none')
    assert per_roi.shape == (3, )
    assert loss(pred, target, label).item() == pytest.approx(
        per_roi.mean().item(), rel=1e-12)
    assert loss(pred, target, label, reduction_override='sum').item() == \
        pytest.approx(per_roi.sum().item(), rel=1e-12)
    w = torch.tensor([1.0, 0.0, 3.0])
    assert loss(pred, target, label, w, avg_factor=4.0).item() == \
        pytest.approx((per_roi[0] + 3 * per_roi[2]).item() / 4, rel=1e-6)


def test_gradcheck_and_channel_selection():
    g = torch.Generator().manual_seed(5)
    pred = torch.randn(3, 4, 5, 5, dtype=torch.float64, generator=g)
    target = (torch.rand(3, 5, 5, generator=g) > 0.85).double()
    label = torch.tensor([3, 1, 3])
    w = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    x = pred.clone().requires_grad_(True)
    loss = BalancedMaskLoss(gamma=0.7)
    assert torch.autograd.gradcheck(
        lambda p: loss(p, target, label, w, avg_factor=3.0), (x, ))
    loss(x, target, label).backward()
    assert torch.all(x.grad[:, [0, 2]] == 0)
    assert torch.all(x.grad[0, 3] != 0) and torch.all(x.grad[1, 1] != 0)
    # analytic gradient of one RoI: w_p (sigmoid(x_p) - t_p) / P
    y = pred[:1, 3].clone().requires_grad_(True)
    BalancedMaskLoss()(y, target[:1]).backward()
    expect = balanced_pixel_weights(target[:1]) * (
        torch.sigmoid(pred[:1, 3]) - target[:1]) / 25
    assert torch.allclose(y.grad, expect, rtol=1e-12, atol=0)


def test_empty_input_keeps_the_graph():
    pred = torch.zeros(0, 4, 28, 28, requires_grad=True)
    target = torch.zeros(0, 28, 28)
    out = BalancedMaskLoss()(pred, target, torch.zeros(0, dtype=torch.long))
    assert out.item() == 0.0 and out.requires_grad
    out.backward()
    assert pred.grad.shape == pred.shape
    none = BalancedMaskLoss(reduction='none')(
        pred, target, torch.zeros(0, dtype=torch.long))
    assert none.shape == (0, )


def test_errors():
    with pytest.raises(ValueError, match='gamma'):
        BalancedMaskLoss(gamma=-1)
    with pytest.raises(ValueError, match='min_fraction'):
        BalancedMaskLoss(min_fraction=0.0)
    with pytest.raises(ValueError, match='reduction'):
        BalancedMaskLoss(reduction='avg')
    loss = BalancedMaskLoss()
    pred = torch.zeros(2, 3, 4, 4)
    target = torch.zeros(2, 4, 4)
    with pytest.raises(ValueError, match='labels are needed'):
        loss(pred, target)
    with pytest.raises(ValueError, match=r'\[0, 2\]'):
        loss(pred, target, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match='mask_target has shape'):
        loss(pred, torch.zeros(2, 5, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r'in \[0, 1\]'):
        loss(pred, target + 2, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='one value per RoI'):
        loss(pred, target, torch.tensor([0, 1]), torch.ones(3))
    with pytest.raises(ValueError, match='reduction_override'):
        loss(pred, target, torch.tensor([0, 1]), reduction_override='x')


def test_as_fcn_mask_head_loss_mask():
    """MMDetection's FCNMaskHead calls the loss with its own arguments."""
    from mmdet.registry import MODELS
    from mmdet.structures.mask import BitmapMasks
    from mmdet.utils import register_all_modules
    from mmengine.config import ConfigDict
    from mmengine.structures import InstanceData
    register_all_modules()
    head = MODELS.build(
        dict(type='FCNMaskHead', num_convs=1, in_channels=8,
             conv_out_channels=8, num_classes=3,
             loss_mask=dict(type='BalancedMaskLoss', loss_weight=1.0)))
    masks = np.zeros((2, 32, 32), dtype=np.uint8)
    masks[0, 4:28, 15:17] = 1  # a thin bar: mostly background in its box
    masks[1, 8:24, 8:24] = 1
    gt = InstanceData(masks=BitmapMasks(masks, 32, 32))
    res = SimpleNamespace(
        pos_priors=torch.tensor([[2., 2., 30., 30.], [8., 8., 24., 24.]]),
        pos_assigned_gt_inds=torch.tensor([0, 1]),
        pos_gt_labels=torch.tensor([2, 0]))
    feats = torch.randn(2, 8, 14, 14)
    mask_preds = head(feats)
    out = head.loss_and_target(mask_preds, [res], [gt],
                               ConfigDict(mask_size=28))
    loss = out['loss_mask']['loss_mask']
    targets = out['mask_targets']
    assert targets.shape == (2, 28, 28)
    sel = mask_preds[torch.arange(2), torch.tensor([2, 0])]
    expect = BalancedMaskLoss()(sel, targets)
    assert loss.item() == pytest.approx(expect.item(), rel=1e-6)
    loss.backward()
