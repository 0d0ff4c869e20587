"""Tests of InfoNCELoss (CLIS contrastive term): hand-computed 2x2 and 3x3
cases, gradients in float64, and the N = 0 / N = 1 edge cases."""
import math

import pytest
import torch

from mmdet.registry import MODELS

import longtail_plugin  # noqa: F401  (registers the modules)
from longtail_plugin.models.losses import InfoNCELoss


def lse(*v):
    return math.log(sum(math.exp(a) for a in v))


def test_two_by_two_by_hand():
    # q = e1, e2; k = e1, (1, 1) / sqrt(2); tau = 1
    # s = q k^T = [[1, r], [0, r]] with r = 1 / sqrt(2)
    r = 1 / math.sqrt(2)
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # rows (q -> k): [1, r] target 0, [0, r] target 1
    qk = ((lse(1, r) - 1) + (lse(0, r) - r)) / 2
    # columns (k -> q): [1, 0] target 0, [r, r] target 1 (= log 2)
    kq = ((lse(1, 0) - 1) + math.log(2)) / 2
    assert qk == pytest.approx(0.47910964518344756, abs=1e-12)
    assert kq == pytest.approx(0.503204434039084, abs=1e-12)
    one_way = InfoNCELoss(temperature=1.0, symmetric=False)
    both = InfoNCELoss(temperature=1.0)
    assert one_way(q, k).item() == pytest.approx(0.4791096, abs=1e-6)
    assert both(q, k).item() == pytest.approx(0.4911570, abs=1e-6)
    # key -> query alone is the query -> key loss with the roles swapped
    assert one_way(k, q).item() == pytest.approx(0.5032044, abs=1e-6)
    # scaling a row does not change anything (L2 normalisation)
    assert both(3 * q, k * torch.tensor([[2.0], [0.5]])).item() == \
        pytest.approx(0.4911570, abs=1e-6)


def test_three_by_three_by_hand_temperature_and_weight():
    # q = e1, e2, e3; k = (1, 0, 0), (0, 3, 4) / 5, (0, 0, 2) / 2
    # s = q k^T / 0.5 = [[2, 0, 0], [0, 1.2, 0], [0, 1.6, 2]]
    q = torch.eye(3)
    k = torch.tensor([[1.0, 0.0, 0.0], [0.0, 3.0, 4.0], [0.0, 0.0, 2.0]])
    rows = [lse(2, 0, 0) - 2, lse(0, 1.2, 0) - 1.2, lse(0, 1.6, 2) - 2]
    cols = [lse(2, 0, 0) - 2, lse(0, 1.2, 1.6) - 1.2, lse(0, 0, 2) - 2]
    qk, kq = sum(rows) / 3, sum(cols) / 3
    assert qk == pytest.approx(0.4339878788313199, abs=1e-12)
    assert kq == pytest.approx(0.502070863240563, abs=1e-12)
    loss = InfoNCELoss(temperature=0.5, symmetric=False)(q, k)
    assert loss.item() == pytest.approx(0.4339879, abs=1e-6)
    loss = MODELS.build(
        dict(type='InfoNCELoss', temperature=0.5, loss_weight=2.0))(q, k)
    assert loss.item() == pytest.approx(2 * 0.4680294, abs=1e-6)


def test_gradcheck_float64():
    torch.manual_seed(0)
    q = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    k = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    for symmetric in (True, False):
        loss = InfoNCELoss(temperature=0.3, symmetric=symmetric)
        assert torch.autograd.gradcheck(loss, (q, k))


def test_empty_and_single_pair():
    loss = InfoNCELoss()
    q = torch.zeros(0, 8, requires_grad=True)
    k = torch.zeros(0, 8, requires_grad=True)
    out = loss(q, k)
    assert out.dim() == 0 and out.item() == 0.0
    out.backward()
    assert q.grad is not None and k.grad is not None
    # one pair: a single candidate, the cross-entropy is exactly 0
    q = torch.randn(1, 8, requires_grad=True)
    k = torch.randn(1, 8, requires_grad=True)
    out = loss(q, k)
    assert out.item() == 0.0 and out.requires_grad
    out.backward()
    assert torch.equal(q.grad, torch.zeros_like(q))


def test_bad_input():
    with pytest.raises(ValueError, match='temperature must be > 0'):
        InfoNCELoss(temperature=0.0)
    with pytest.raises(ValueError, match='same shape'):
        InfoNCELoss()(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match=r'\[N, D\]'):
        InfoNCELoss()(torch.randn(3), torch.randn(3))
