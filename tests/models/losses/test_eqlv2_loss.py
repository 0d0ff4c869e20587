"""Tests of EqualizationLossV2 (EQL v2, Tan et al. CVPR 2021)."""
import math

import pytest
import torch

from longtail_plugin.models.losses import EqualizationLossV2


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def bce(z, y):
    return math.log1p(math.exp(-z)) if y else math.log1p(math.exp(z))


def eqlv2_weights(ratio, gamma=12.0, mu=0.8, alpha=4.0):
    """(pos_w, neg_w) lists of length C+1 from the C ratios, by hand."""
    q = [sig(gamma * (g - mu)) for g in ratio]
    return [1 + alpha * (1 - x) for x in q] + [1.0], q + [1.0]


Z = [[1.0, -0.5, 0.2], [0.3, 0.1, -1.0], [-0.7, 0.9, 0.4]]
Y = [0, 2, 1]  # C = 2, label 2 = background


def hand_loss_rows(z, y, ratio):
    pos_w, neg_w = eqlv2_weights(ratio)
    rows = []
    for zi, yi in zip(z, y):
        rows.append(
            sum((pos_w[j] if j == yi else neg_w[j]) * bce(zi[j], j == yi)
                for j in range(len(zi))))
    return rows


def test_initial_loss_is_plain_bce():
    loss = EqualizationLossV2(num_classes=2)
    out = loss(torch.tensor(Z), torch.tensor(Y))
    # g = 100: q = 1, so every weight is 1
    expected = sum(
        bce(Z[i][j], j == Y[i]) for i in range(3) for j in range(3)) / 3
    assert out.item() == pytest.approx(expected, rel=1e-6)


def test_loss_with_statistics_weights_and_avg_factor():
    loss = EqualizationLossV2(num_classes=2, loss_weight=2.0)
    loss.grad_stats.pos_neg.copy_(torch.tensor([0.8, 0.5]))
    loss.eval()  # keep the statistics fixed
    rows = hand_loss_rows(Z, Y, [0.8, 0.5])
    # sanity of the hand weights: q_0 = 0.5 -> pos 3, neg 0.5
    assert eqlv2_weights([0.8])[0][0] == 3.0
    z, y = torch.tensor(Z), torch.tensor(Y)
    lw = torch.tensor([1.0, 0.5, 0.0])
    assert loss(z, y).item() == pytest.approx(2 * sum(rows) / 3, rel=1e-6)
    assert loss(z, y, lw, avg_factor=4.0).item() == pytest.approx(
        2 * (rows[0] + 0.5 * rows[1]) / 4, rel=1e-6)
    assert loss(z, y, lw, reduction_override='sum').item() == pytest.approx(
        2 * (rows[0] + 0.5 * rows[1]), rel=1e-6)
    none = loss(z, y, lw, reduction_override='none')
    assert none.shape == (3, )
    assert none.tolist() == pytest.approx(
        [2 * rows[0], 2 * 0.5 * rows[1], 0.0], rel=1e-6)


def test_gradcheck_float64():
    loss = EqualizationLossV2(num_classes=2)
    loss.grad_stats.pos_neg.copy_(torch.tensor([0.8, 0.5]))
    loss.eval()
    z = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(Y)
    lw = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x: loss(x, y, lw, avg_factor=3.0), (z, ))


def test_statistics_over_steps_match_hand_accumulation():
    loss = EqualizationLossV2(num_classes=2)
    g = torch.Generator().manual_seed(0)
    steps = [(torch.randn(4, 3, generator=g, dtype=torch.float64),
              torch.tensor(lab), torch.tensor(lw, dtype=torch.float64))
             for lab, lw in (([0, 2, 1, 2], [1, 1, 1, 1]),
                             ([1, 1, 2, 0], [1, 0.5, 1, 2]),
                             ([2, 2, 0, 1], [1, 1, 0, 1]))]
    pos, neg, ratio = [0.0, 0.0], [0.0, 0.0], [100.0, 100.0]
    for z, y, lw in steps:
        loss(z, y, lw)
        pos_w, neg_w = eqlv2_weights(ratio)
        for i in range(z.shape[0]):
            for j in range(2):  # the background column is not accumulated
                t = 1.0 if int(y[i]) == j else 0.0
                grad = abs(sig(float(z[i, j])) - t)
                w = (pos_w[j] if t else neg_w[j]) * float(lw[i])
                pos[j] += grad * t * w
                neg[j] += grad * (1 - t) * w
        ratio = [p / (n + 1e-10) for p, n in zip(pos, neg)]
    st = loss.grad_stats
    assert st.pos_grad.tolist() == pytest.approx(pos, rel=1e-6)
    assert st.neg_grad.tolist() == pytest.approx(neg, rel=1e-6)
    assert st.pos_neg.tolist() == pytest.approx(ratio, rel=1e-6)
    assert int(st.num_updates) == 3


def test_statistics_equal_autograd_gradient_magnitudes():
    loss = EqualizationLossV2(num_classes=2)
    loss.grad_stats.pos_neg.copy_(torch.tensor([0.8, 0.5]))
    z = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(Y)
    lw = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    out = loss(z, y, lw, reduction_override='sum')
    (grad, ) = torch.autograd.grad(out, z)
    onehot = torch.nn.functional.one_hot(y, 3).double()
    exp_pos = (grad.abs() * onehot).sum(0)[:2]
    exp_neg = (grad.abs() * (1 - onehot)).sum(0)[:2]
    assert torch.allclose(loss.grad_stats.pos_grad, exp_pos, rtol=1e-6)
    assert torch.allclose(loss.grad_stats.neg_grad, exp_neg, rtol=1e-6)


def test_eval_mode_does_not_update():
    loss = EqualizationLossV2(num_classes=2).eval()
    loss(torch.tensor(Z), torch.tensor(Y))
    assert int(loss.grad_stats.num_updates) == 0
    assert loss.grad_stats.pos_grad.abs().sum() == 0


def test_state_dict_roundtrip_same_next_loss(tmp_path):
    torch.manual_seed(0)
    a = EqualizationLossV2(num_classes=2)
    for _ in range(3):
        a(torch.randn(6, 3), torch.randint(0, 3, (6, )))
    torch.save(a.state_dict(), tmp_path / 'a.pth')
    b = EqualizationLossV2(num_classes=2)
    b.load_state_dict(torch.load(tmp_path / 'a.pth', weights_only=True))
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    z, y = torch.randn(6, 3), torch.randint(0, 3, (6, ))
    assert torch.equal(a(z, y), b(z, y))
    assert torch.equal(a.grad_stats.pos_neg, b.grad_stats.pos_neg)


def test_load_other_class_count_is_clear_error():
    a = EqualizationLossV2(num_classes=3)
    b = EqualizationLossV2(num_classes=2)
    with pytest.raises(RuntimeError, match='grad_stats.pos_grad'):
        b.load_state_dict(a.state_dict())


def test_empty_batch_zero_loss_with_graph():
    loss = EqualizationLossV2(num_classes=2)
    z = torch.zeros(0, 3, requires_grad=True)
    out = loss(z, torch.zeros(0, dtype=torch.long))
    assert out.item() == 0.0 and out.grad_fn is not None
    out.backward()
    assert z.grad.shape == (0, 3)
    # nothing seen yet: the ratio stays at its initial value
    assert loss.grad_stats.pos_neg.tolist() == [100.0, 100.0]
    none = loss(z, torch.zeros(0, dtype=torch.long),
                reduction_override='none')
    assert none.shape == (0, )


def test_nonfinite_logits_leave_statistics_unchanged():
    loss = EqualizationLossV2(num_classes=2)
    loss(torch.tensor(Z), torch.tensor(Y))
    before = {k: v.clone() for k, v in loss.state_dict().items()}
    bad = torch.tensor(Z)
    bad[1, 0] = float('nan')
    loss(bad, torch.tensor(Y))
    for k in ('pos_grad', 'neg_grad', 'pos_neg', 'num_updates'):
        assert torch.equal(loss.grad_stats.state_dict()[k],
                           before['grad_stats.' + k])
    assert int(loss.grad_stats.num_skipped) == 1


def test_wrong_class_count():
    loss = EqualizationLossV2(num_classes=3)
    with pytest.raises(ValueError, match='num_classes'):
        loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match='num_classes'):
        loss.get_cls_channels(5)
    assert loss.get_cls_channels(3) == 4


def test_activation_and_accuracy():
    loss = EqualizationLossV2(num_classes=2)
    z = torch.tensor(Z)
    s = loss.get_activation(z)
    for i in range(3):
        for j in range(2):
            assert s[i, j].item() == pytest.approx(
                sig(Z[i][j]) * (1 - sig(Z[i][2])), rel=1e-6)
        assert s[i, 2].item() == pytest.approx(sig(Z[i][2]), rel=1e-6)
    acc = loss.get_accuracy(z, torch.tensor(Y))
    # objectness (fg when z_C < 0): row 0 z_C=0.2 -> bg (is fg), row 1
    # -1.0 -> fg (is bg), row 2 0.4 -> bg (is fg): 0 of 3 right
    assert acc['acc_objectness'].item() == pytest.approx(0.0)
    # classes over fg rows 0 (argmax 0, label 0) and 2 (argmax 1, label 1)
    assert acc['acc_classes'].item() == pytest.approx(100.0)


def _bbox_head(loss_cls):
    pytest.importorskip('mmcv.ops')
    import mmdet.models  # noqa: F401  (registers the heads)
    from mmdet.registry import MODELS
    return MODELS.build(
        dict(
            type='Shared2FCBBoxHead',
            in_channels=4,
            fc_out_channels=8,
            roi_feat_size=2,
            num_classes=2,
            loss_cls=loss_cls,
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)))


def test_bbox_head_integration():
    head = _bbox_head(dict(type='EqualizationLossV2', num_classes=2))
    assert isinstance(head.loss_cls, EqualizationLossV2)
    assert head.fc_cls.out_features == 3
    torch.manual_seed(0)
    cls_score, bbox_pred = head(torch.randn(5, 4, 2, 2))
    assert cls_score.shape == (5, 3)
    rois = torch.tensor([[0, 1., 1., 10., 10.]] * 5)
    res = head.predict_by_feat(
        rois=(rois, ),
        cls_scores=(cls_score, ),
        bbox_preds=(bbox_pred, ),
        batch_img_metas=[dict(img_shape=(32, 32))],
        rcnn_test_cfg=None)
    p = cls_score.detach().sigmoid()
    expected = torch.cat([p[:, :2] * (1 - p[:, 2:]), p[:, 2:]], dim=1)
    assert torch.allclose(res[0].scores, expected, atol=1e-7)
    # training loss path: custom accuracy keys, label weights honoured
    labels = torch.tensor([0, 1, 2, 2, 0])
    losses = head.loss(cls_score, bbox_pred, rois, labels, torch.ones(5),
                       torch.zeros(5, 4), torch.ones(5, 4))
    assert {'loss_cls', 'acc_objectness', 'acc_classes',
            'loss_bbox'} <= set(losses)
    losses['loss_cls'].backward()
    assert int(head.loss_cls.grad_stats.num_updates) == 1


def test_reweight_off_is_plain_bce_but_records_statistics():
    loss = EqualizationLossV2(num_classes=2, reweight=False)
    loss.grad_stats.pos_neg.copy_(torch.tensor([0.05, 0.5]))  # would reweight
    z, y = torch.tensor(Z), torch.tensor(Y)
    expected = sum(
        bce(Z[i][j], j == Y[i]) for i in range(3) for j in range(3)) / 3
    assert loss(z, y).item() == pytest.approx(expected, rel=1e-6)
    # statistics: |p - y| of the foreground columns, unweighted
    pos0 = abs(sig(Z[0][0]) - 1)
    neg0 = abs(sig(Z[1][0])) + abs(sig(Z[2][0]))
    assert loss.grad_stats.pos_grad[0].item() == pytest.approx(pos0)
    assert loss.grad_stats.neg_grad[0].item() == pytest.approx(neg0)
