"""Boundary band and BAR loss (RefineMask)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from longtail_plugin.models.losses import BARCrossEntropyLoss
from longtail_plugin.models.losses.bar_loss import bar_cross_entropy
from longtail_plugin.models.roi_heads.refine_mask import (boundary_band,
                                                        upsample_band)


def _square(n=10, lo=2, hi=8):
    m = torch.zeros(n, n)
    m[lo:hi, lo:hi] = 1
    return m


def test_band_6x6_square_w1_hand_drawn():
    band = boundary_band(_square()[None], width=1)[0].int()
    # 6x6 square at rows/cols 2..7: the band is the inner ring (rows/cols 2
    # and 7 of the square) plus the outer ring (rows/cols 1 and 8, corners
    # included since they see the square's corner diagonally).
    expected = torch.tensor([
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 1, 1, 1, 1, 1, 0],
        [0, 1, 1, 1, 1, 1, 1, 1, 1, 0],
        [0, 1, 1, 0, 0, 0, 0, 1, 1, 0],
        [0, 1, 1, 0, 0, 0, 0, 1, 1, 0],
        [0, 1, 1, 0, 0, 0, 0, 1, 1, 0],
        [0, 1, 1, 0, 0, 0, 0, 1, 1, 0],
        [0, 1, 1, 1, 1, 1, 1, 1, 1, 0],
        [0, 1, 1, 1, 1, 1, 1, 1, 1, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ]).int()
    assert torch.equal(band, expected)


def test_band_zero_padding_border_is_background():
    band = boundary_band(torch.ones(1, 1, 5, 5), width=1)[0, 0].int()
    expected = torch.ones(5, 5, dtype=torch.int32)
    expected[1:4, 1:4] = 0  # only the outer ring sees the (background) pad
    assert torch.equal(band, expected)
    # all background: no band
    assert not boundary_band(torch.zeros(1, 6, 6), 2).any()


def test_band_ten_percent_threshold_w2():
    # a window of 25 pixels: 2 opposite pixels (8%) are not enough, 3 (12%) are
    m = torch.zeros(1, 9, 9)
    m[0, 4, 4] = 1
    band = boundary_band(m, width=2)[0]
    assert band.sum() == 1 and band[4, 4]  # only the lone pixel itself
    m[0, 4, 5] = 1
    assert boundary_band(m, 2)[0].sum() == 2  # neighbours see 2/25
    m[0, 4, 3] = 1
    band = boundary_band(m, 2)[0]
    assert band[2, 4] and band[6, 4]  # see all 3 fg pixels -> 12% > 10%
    assert not band[2, 1]  # sees 1 fg pixel


def test_band_accepts_bool_and_logits_shapes():
    sq = _square()
    a = boundary_band(sq[None] > 0, 1)
    b = boundary_band(sq[None, None], 1)[:, 0]
    assert a.dtype == torch.bool and torch.equal(a, b)
    with pytest.raises(ValueError):
        boundary_band(torch.zeros(2, 3, 4, 4), 1)


def test_upsample_band_nearest():
    b = torch.tensor([[[[True, False], [False, True]]]])
    up = upsample_band(b, (4, 4))[0, 0]
    assert up[:2, :2].all() and not up[:2, 2:].any() and up[2:, 2:].all()


def _manual_bce(x, y):
    p = torch.sigmoid(x.double())
    y = y.double()
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p))


def test_bar_loss_equals_bce_over_band():
    torch.manual_seed(0)
    target = _square()[None]
    pred = torch.randn(1, 10, 10) * 3
    band = boundary_band(target, 1)
    expected = (_manual_bce(pred, target) * band).sum() / band.sum()
    loss = BARCrossEntropyLoss(loss_weight=1.0)
    assert torch.allclose(loss(pred, target, band).double(), expected,
                          atol=1e-5)
    # region derived from the target's own band (width 1)
    loss_t = BARCrossEntropyLoss(loss_weight=2.0, boundary_width=1)
    assert torch.allclose(
        loss_t(pred, target, 'target').double(), 2 * expected, atol=1e-5)
    # no region: plain mean BCE
    assert torch.allclose(
        loss(pred, target).double(), _manual_bce(pred, target).mean(),
        atol=1e-5)


def test_bar_loss_empty_region_and_input():
    pred = torch.randn(2, 1, 8, 8, requires_grad=True)
    tgt = torch.zeros(2, 1, 8, 8)
    region = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    out = bar_cross_entropy(pred, tgt, region)
    assert out.item() == 0.0  # sum over an empty R / max(|R|, 1)
    out.backward()
    empty = torch.zeros(0, 8, 8, requires_grad=True)
    assert bar_cross_entropy(empty, torch.zeros(0, 8, 8)).item() == 0.0


def test_bar_loss_matches_torch_bce_and_grad():
    torch.manual_seed(1)
    pred = torch.randn(3, 12, 12, requires_grad=True)
    tgt = (torch.rand(3, 12, 12) > 0.5).float()
    region = torch.rand(3, 12, 12) > 0.3
    loss = bar_cross_entropy(pred, tgt, region)
    ref = F.binary_cross_entropy_with_logits(pred[region], tgt[region])
    assert torch.allclose(loss, ref, atol=1e-6)
    loss.backward()
    assert (pred.grad[~region] == 0).all()
    assert np.isfinite(pred.grad.numpy()).all()
