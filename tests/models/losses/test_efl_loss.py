"""Tests of EqualizedFocalLoss / EqualizedQualityFocalLoss (Li et al.,
CVPR 2022): values and gradients against a float64 reference written from
the formula, statistics against autograd gradients of the final loss (also
through real MMDetection heads), distributed agreement, resume, edge cases
and autocast."""
import os
import uuid
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

from longtail_plugin.engine.hooks import EFLStatsFlushHook
from longtail_plugin.engine.hooks.efl_stats_hook import flush_efl_statistics
from longtail_plugin.models.losses import (EqualizedFocalLoss,
                                           EqualizedQualityFocalLoss)
from longtail_plugin.models.losses.efl_loss import (
    equalized_focal_loss, equalized_quality_focal_loss)

F32_EPS = torch.finfo(torch.float32).eps


# ---------------------------------------------------------------------------
# float64 references written from the paper's formulas
# ---------------------------------------------------------------------------
def one_hot(labels, c, dtype=torch.float64):
    y = torch.zeros(labels.numel(), c, dtype=dtype)
    valid = (labels >= 0) & (labels < c)
    y[valid.nonzero(as_tuple=True)[0], labels[valid]] = 1.0
    return y


def gammas(ratio, gamma_b=2.0, s=8.0):
    g = ratio.double().clamp(0, 1)
    gam = gamma_b + s * (1 - g)
    return gam, gam / gamma_b


def reduce_ref(elem, reduction, avg_factor, loss_weight):
    if reduction == 'none':
        return loss_weight * elem
    if reduction == 'sum':
        return loss_weight * elem.sum()
    if avg_factor is None:
        return loss_weight * elem.mean()
    return loss_weight * elem.sum() / (avg_factor + F32_EPS)


def ref_efl(pred, labels, ratio, weight=None, reduction='mean',
            avg_factor=None, loss_weight=1.0, gamma_b=2.0, s=8.0,
            alpha=0.25):
    z = pred.double()
    y = one_hot(labels, z.shape[1])
    gam, fac = gammas(ratio, gamma_b, s)
    # p_t = sigmoid(+-z); log and 1 - p_t written without cancellation
    zt = torch.where(y > 0, z, -z)
    at = torch.where(y > 0, torch.full_like(z, alpha),
                     torch.full_like(z, 1 - alpha))
    elem = -at * fac * torch.sigmoid(-zt)**gam * nn.functional.logsigmoid(zt)
    if weight is not None:
        w = weight.double()
        elem = elem * (w[:, None] if w.dim() == 1 else w)
    return reduce_ref(elem, reduction, avg_factor, loss_weight)


def ref_eqfl(pred, labels, scores, ratio, weight=None, reduction='mean',
             avg_factor=None, loss_weight=1.0, beta=2.0, s=8.0):
    z = pred.double()
    y = one_hot(labels, z.shape[1])
    t = y * scores.double()[:, None]
    gam, fac = gammas(ratio, beta, s)
    p = torch.sigmoid(z)
    logsig = nn.functional.logsigmoid
    bce = -(t * logsig(z) + (1 - t) * logsig(-z))
    elem = (fac * (t - p).abs()**gam * bce).sum(1)
    if weight is not None:
        elem = elem * weight.double()
    return reduce_ref(elem, reduction, avg_factor, loss_weight)


def split_grad(grad, labels):
    """(pos, neg) float64 sums of |grad| split by the one-hot target."""
    g = grad.detach().double().abs()
    y = one_hot(labels, g.shape[1])
    return (g * y).sum(0), (g * (1 - y)).sum(0)


def make_level(n, c, gen, pos_frac=0.3, ignore_frac=0.2, scale=3.0):
    pred = torch.randn(n, c, generator=gen) * scale
    labels = torch.full((n, ), c, dtype=torch.long)
    pos = torch.rand(n, generator=gen) < pos_frac
    labels[pos] = torch.randint(0, c, (int(pos.sum()), ), generator=gen)
    weight = (torch.rand(n, generator=gen) >= ignore_frac).float()
    return pred, labels, weight


def set_ratio(loss, ratio):
    with torch.no_grad():
        loss.grad_stats.pos_neg.copy_(ratio.double())


# ---------------------------------------------------------------------------
# values and gradients
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('reduction,avg_factor', [('mean', 7.5),
                                                  ('mean', None),
                                                  ('sum', None),
                                                  ('none', None)])
@pytest.mark.parametrize('weight_kind', ['none', 'row', 'elem'])
def test_efl_values_match_formula(reduction, avg_factor, weight_kind):
    gen = torch.Generator().manual_seed(0)
    c = 7
    pred, labels, w = make_level(23, c, gen)
    weight = {'none': None, 'row': w,
              'elem': torch.rand(23, c, generator=gen)}[weight_kind]
    ratio = torch.rand(c, generator=gen) * 1.5  # > 1 is clamped
    loss = EqualizedFocalLoss(num_classes=c, loss_weight=1.7,
                              chunk_elems=3 * c).eval()
    set_ratio(loss, ratio)
    out = loss(pred.double(), labels, weight, avg_factor=avg_factor,
               reduction_override=reduction)
    ref = ref_efl(pred, labels, ratio, weight, reduction, avg_factor, 1.7)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('reduction,avg_factor', [('mean', 4.0),
                                                  ('mean', None),
                                                  ('sum', None),
                                                  ('none', None)])
def test_eqfl_values_match_formula(reduction, avg_factor):
    gen = torch.Generator().manual_seed(1)
    c = 6
    pred, labels, w = make_level(19, c, gen)
    scores = torch.rand(19, generator=gen)
    ratio = torch.rand(c, generator=gen)
    loss = EqualizedQualityFocalLoss(num_classes=c, loss_weight=0.5,
                                     chunk_elems=2 * c).eval()
    set_ratio(loss, ratio)
    out = loss(pred.double(), (labels, scores), w, avg_factor=avg_factor,
               reduction_override=reduction)
    ref = ref_eqfl(pred, labels, scores, ratio, w, reduction, avg_factor,
                   0.5)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)


def test_initial_ratio_gives_mmdet_focal_and_qfl():
    """g_j = 1 at the start: EFL is the focal loss, EQFL is QFL."""
    from mmdet.models.losses import FocalLoss, QualityFocalLoss
    gen = torch.Generator().manual_seed(2)
    c = 5
    pred, labels, w = make_level(40, c, gen)
    efl = EqualizedFocalLoss(num_classes=c)
    fl = FocalLoss(use_sigmoid=True, gamma=2.0, alpha=0.25)
    torch.testing.assert_close(
        efl(pred, labels, w, avg_factor=3.0),
        fl(pred, labels, w, avg_factor=3.0))
    scores = torch.rand(40, generator=gen)
    eqfl = EqualizedQualityFocalLoss(num_classes=c)
    qfl = QualityFocalLoss(use_sigmoid=True, beta=2.0)
    torch.testing.assert_close(
        eqfl(pred, (labels, scores), w, avg_factor=3.0),
        qfl(pred, (labels, scores), w, avg_factor=3.0))
    torch.testing.assert_close(
        eqfl(pred, (labels, scores), w, reduction_override='none'),
        qfl(pred, (labels, scores), w, reduction_override='none'))


def test_extreme_logits_are_finite():
    c = 4
    pred = torch.tensor([[-90., 90., 0., 30.], [25., -25., 1e-3, -1e-3]],
                        requires_grad=True)
    labels = torch.tensor([1, 0])
    loss = EqualizedFocalLoss(num_classes=c)
    out = loss(pred, labels, reduction_override='sum')
    out.backward()
    ref = ref_efl(pred.detach(), labels, torch.ones(c), reduction='sum')
    assert torch.isfinite(pred.grad).all()
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('case', ['efl_sum', 'efl_none_row_w',
                                  'efl_none_elem_w', 'eqfl_sum',
                                  'eqfl_none'])
def test_gradcheck_float64(case):
    gen = torch.Generator().manual_seed(3)
    c = 5
    pred, labels, w = make_level(11, c, gen, scale=2.0)
    pred = pred.double().requires_grad_()
    gam, fac = gammas(torch.rand(c, generator=gen))
    w2 = torch.rand(11, c, generator=gen, dtype=torch.float64)
    scores = torch.rand(11, generator=gen, dtype=torch.float64)
    ch = 2 * c  # several chunks

    def fn(x):
        if case == 'efl_sum':
            return equalized_focal_loss(x, labels, gam, fac, weight=w,
                                        avg_factor=3.0, loss_weight=2.0,
                                        chunk_elems=ch)
        if case == 'efl_none_row_w':
            return equalized_focal_loss(x, labels, gam, fac, weight=w,
                                        reduction='none', chunk_elems=ch)
        if case == 'efl_none_elem_w':
            return equalized_focal_loss(x, labels, gam, fac, weight=w2,
                                        reduction='none', chunk_elems=ch)
        if case == 'eqfl_sum':
            return equalized_quality_focal_loss(x, (labels, scores), gam,
                                                fac, weight=w,
                                                avg_factor=2.0,
                                                chunk_elems=ch)
        return equalized_quality_focal_loss(x, (labels, scores), gam, fac,
                                            weight=w, reduction='none',
                                            chunk_elems=ch)

    assert torch.autograd.gradcheck(fn, (pred, ))


def test_gradient_matches_reference_autograd():
    gen = torch.Generator().manual_seed(4)
    c = 9
    pred, labels, w = make_level(50, c, gen)
    ratio = torch.rand(c, generator=gen)
    x = pred.double().requires_grad_()
    loss = EqualizedFocalLoss(num_classes=c, loss_weight=1.3,
                              chunk_elems=4 * c).eval()
    set_ratio(loss, ratio)
    loss(x, labels, w, avg_factor=5.0).backward()
    xr = pred.double().requires_grad_()
    ref_efl(xr, labels, ratio, w, 'mean', 5.0, 1.3).backward()
    torch.testing.assert_close(x.grad, xr.grad, rtol=1e-9, atol=1e-13)


# ---------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------
def test_statistics_equal_gradient_over_levels():
    """Three FPN levels, avg_factor and loss_weight: after the flush the
    statistics equal the autograd gradient of the summed loss split by the
    target; all levels of the iteration use the same factors."""
    gen = torch.Generator().manual_seed(5)
    c = 8
    ratio = torch.rand(c, generator=gen) * 0.9 + 0.05
    loss = EqualizedFocalLoss(num_classes=c, loss_weight=2.5,
                              chunk_elems=5 * c).train()
    set_ratio(loss, ratio)
    before = loss.grad_stats.pos_neg.clone()
    levels = [make_level(n, c, gen) for n in (31, 17, 6)]
    leaves = [p.clone().requires_grad_() for p, _, _ in levels]
    total = 0
    for x, (_, labels, w) in zip(leaves, levels):
        total = total + loss(x, labels, w, avg_factor=9.0)
        # nothing reaches the statistics before the iteration ends
        assert torch.equal(loss.grad_stats.pos_neg, before)
    total.backward()
    pos = sum(split_grad(x.grad, lv[1])[0] for x, lv in zip(leaves, levels))
    neg = sum(split_grad(x.grad, lv[1])[1] for x, lv in zip(leaves, levels))
    pend_pos, pend_neg = loss.pending_statistics()
    torch.testing.assert_close(pend_pos, pos, rtol=1e-5, atol=1e-9)
    assert loss.flush_statistics()
    assert not loss.has_pending_statistics
    torch.testing.assert_close(loss.grad_stats.pos_grad, pos, rtol=1e-5,
                               atol=1e-9)
    torch.testing.assert_close(loss.grad_stats.neg_grad, neg, rtol=1e-5,
                               atol=1e-9)
    # and the float64 reference gradient of the same total loss
    ref_leaves = [p.double().requires_grad_() for p, _, _ in levels]
    ref_total = sum(
        ref_efl(x, lv[1], ratio, lv[2], 'mean', 9.0, 2.5)
        for x, lv in zip(ref_leaves, levels))
    ref_total.backward()
    rpos = sum(
        split_grad(x.grad, lv[1])[0] for x, lv in zip(ref_leaves, levels))
    rneg = sum(
        split_grad(x.grad, lv[1])[1] for x, lv in zip(ref_leaves, levels))
    torch.testing.assert_close(loss.grad_stats.pos_grad, rpos, rtol=1e-5,
                               atol=1e-9)
    torch.testing.assert_close(loss.grad_stats.neg_grad, rneg, rtol=1e-5,
                               atol=1e-9)
    assert int(loss.grad_stats.num_updates) == 1
    expected_ratio = rpos / (rneg + 1e-10)
    torch.testing.assert_close(loss.grad_stats.pos_neg, expected_ratio,
                               rtol=1e-5, atol=1e-9)


def test_eqfl_statistics_equal_gradient():
    gen = torch.Generator().manual_seed(6)
    c = 6
    loss = EqualizedQualityFocalLoss(num_classes=c, loss_weight=0.7).train()
    set_ratio(loss, torch.rand(c, generator=gen))
    levels = [make_level(n, c, gen) for n in (20, 9)]
    scores = [torch.rand(lv[0].shape[0], generator=gen) for lv in levels]
    leaves = [p.clone().requires_grad_() for p, _, _ in levels]
    total = sum(
        loss(x, (lv[1], s), weight=lv[2], avg_factor=4.0)
        for x, lv, s in zip(leaves, levels, scores))
    total.backward()
    loss.flush_statistics()
    pos = sum(split_grad(x.grad, lv[1])[0] for x, lv in zip(leaves, levels))
    neg = sum(split_grad(x.grad, lv[1])[1] for x, lv in zip(leaves, levels))
    torch.testing.assert_close(loss.grad_stats.pos_grad, pos, rtol=1e-5,
                               atol=1e-9)
    torch.testing.assert_close(loss.grad_stats.neg_grad, neg, rtol=1e-5,
                               atol=1e-9)


def test_statistics_for_reduction_none_are_those_of_the_sum():
    gen = torch.Generator().manual_seed(7)
    c = 4
    pred, labels, w = make_level(15, c, gen)
    loss = EqualizedFocalLoss(num_classes=c, loss_weight=3.0).train()
    x = pred.requires_grad_()
    loss(x, labels, w, reduction_override='none').sum().backward()
    loss.flush_statistics()
    pos, neg = split_grad(x.grad, labels)
    torch.testing.assert_close(loss.grad_stats.pos_grad, pos, rtol=1e-5,
                               atol=1e-9)
    torch.testing.assert_close(loss.grad_stats.neg_grad, neg, rtol=1e-5,
                               atol=1e-9)


def test_no_statistics_in_eval_mode_or_without_grad():
    gen = torch.Generator().manual_seed(8)
    c = 4
    pred, labels, w = make_level(10, c, gen)
    loss = EqualizedFocalLoss(num_classes=c).eval()
    loss(pred.requires_grad_(), labels, w)
    assert not loss.has_pending_statistics
    loss.train()
    with torch.no_grad():
        loss(pred, labels, w)
    assert not loss.has_pending_statistics
    assert not loss.flush_statistics()
    assert int(loss.grad_stats.num_updates) == 0


def test_empty_and_all_ignored_batches():
    c = 5
    loss = EqualizedFocalLoss(num_classes=c).train()
    init = {k: v.clone() for k, v in loss.state_dict().items()}
    # empty
    x = torch.zeros(0, c, requires_grad=True)
    out = loss(x, torch.zeros(0, dtype=torch.long), avg_factor=1.0)
    assert out.grad_fn is not None and float(out) == 0.0
    out.backward()
    assert x.grad.shape == (0, c)
    # all ignored (positives present, label weights zero)
    y = torch.randn(6, c, requires_grad=True)
    labels = torch.tensor([0, 1, 5, 2, 5, 4])
    out2 = loss(y, labels, torch.zeros(6), avg_factor=3.0)
    assert out2.grad_fn is not None and float(out2) == 0.0
    out2.backward()
    assert torch.count_nonzero(y.grad) == 0
    out3 = EqualizedQualityFocalLoss(num_classes=c).train()(
        torch.zeros(0, c, requires_grad=True),
        (torch.zeros(0, dtype=torch.long), torch.zeros(0)))
    assert out3.grad_fn is not None and float(out3) == 0.0
    loss.flush_statistics()
    for k in ('pos_grad', 'neg_grad', 'pos_neg'):
        assert torch.equal(loss.grad_stats.state_dict()[k],
                           init['grad_stats.' + k])


def test_non_finite_step_is_skipped():
    c = 3
    loss = EqualizedFocalLoss(num_classes=c).train()
    x = torch.tensor([[float('nan'), 0.0, 1.0]], requires_grad=True)
    loss(x, torch.tensor([1])).backward()
    assert not loss.flush_statistics()
    assert int(loss.grad_stats.num_skipped) == 1
    assert torch.equal(loss.grad_stats.pos_neg, torch.ones(c).double())


def _run_iteration(loss, gen, c, sizes=(12, 5)):
    levels = [make_level(n, c, gen) for n in sizes]
    total = sum(
        loss(p.clone().requires_grad_(), lab, w, avg_factor=4.0)
        for p, lab, w in levels)
    total.backward()
    return float(total)


def test_state_dict_resume_is_bit_identical():
    c = 6
    a = EqualizedFocalLoss(num_classes=c).train()
    gen = torch.Generator().manual_seed(9)
    for _ in range(2):
        _run_iteration(a, gen, c)
        a.flush_statistics()
    sd = a.state_dict()
    assert set(sd) == {
        'grad_stats.pos_grad', 'grad_stats.neg_grad', 'grad_stats.pos_neg',
        'grad_stats.num_updates', 'grad_stats.num_skipped'
    }
    b = EqualizedFocalLoss(num_classes=c).train()
    b.load_state_dict(sd)
    state = gen.get_state()
    la = _run_iteration(a, gen, c)
    gen.set_state(state)
    lb = _run_iteration(b, gen, c)
    a.flush_statistics()
    b.flush_statistics()
    assert la == lb
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


def test_autocast_bf16_cpu():
    torch.manual_seed(10)
    c = 7
    lin = nn.Linear(16, c)
    feats = torch.randn(64, 16)
    labels = torch.randint(0, c + 1, (64, ))
    lbf = EqualizedFocalLoss(num_classes=c).train()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        pred = lin(feats)
        assert pred.dtype == torch.bfloat16
        pred.retain_grad()
        out = lbf(pred, labels, avg_factor=5.0)
    assert out.dtype == torch.float32
    out.backward()
    assert pred.grad.dtype == torch.bfloat16
    assert torch.isfinite(lin.weight.grad).all()
    assert lbf.flush_statistics()
    pos_bf, neg_bf = lbf.grad_stats.pos_grad, lbf.grad_stats.neg_grad
    assert torch.isfinite(pos_bf).all() and torch.isfinite(neg_bf).all()
    # the same bf16 logits in float32: the statistics are computed in fp32
    l32 = EqualizedFocalLoss(num_classes=c).train()
    x = pred.detach().float().requires_grad_()
    l32(x, labels, avg_factor=5.0).backward()
    l32.flush_statistics()
    torch.testing.assert_close(pos_bf, l32.grad_stats.pos_grad, rtol=1e-6,
                               atol=1e-9)
    torch.testing.assert_close(neg_bf, l32.grad_stats.neg_grad, rtol=1e-6,
                               atol=1e-9)
    # full-precision logits: equal up to the bf16 rounding of the logits
    lfp = EqualizedFocalLoss(num_classes=c).train()
    y = lin(feats).detach().requires_grad_()
    lfp(y, labels, avg_factor=5.0).backward()
    lfp.flush_statistics()
    torch.testing.assert_close(pos_bf, lfp.grad_stats.pos_grad, rtol=5e-2,
                               atol=1e-6)
    torch.testing.assert_close(neg_bf, lfp.grad_stats.neg_grad, rtol=5e-2,
                               atol=1e-6)


# ---------------------------------------------------------------------------
# real MMDetection heads: ATSSHead / RetinaHead with EFL, GFLHead with EQFL
# ---------------------------------------------------------------------------
C_HEAD = 5


def _head_cfg(kind):
    anchors = dict(type='AnchorGenerator', ratios=[1.0], scales=[6, 8],
                   strides=[8, 16])
    common = dict(num_classes=C_HEAD, in_channels=8, feat_channels=8,
                  stacked_convs=1, anchor_generator=anchors)
    efl = dict(type='EqualizedFocalLoss', num_classes=C_HEAD,
               use_sigmoid=True, loss_weight=1.5)
    test_cfg = dict(nms_pre=100, min_bbox_size=0, score_thr=0.05,
                    nms=dict(type='nms', iou_threshold=0.6), max_per_img=10)
    atss_train = dict(assigner=dict(type='ATSSAssigner', topk=9),
                      allowed_border=-1, pos_weight=-1, debug=False)
    if kind == 'atss':
        return dict(type='ATSSHead', norm_cfg=dict(type='GN', num_groups=4),
                    loss_cls=efl, loss_bbox=dict(type='GIoULoss'),
                    train_cfg=atss_train, test_cfg=test_cfg, **common)
    if kind == 'retina':
        return dict(
            type='RetinaHead', loss_cls=efl,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
            loss_bbox=dict(type='L1Loss'),
            train_cfg=dict(
                assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                              neg_iou_thr=0.4, min_pos_iou=0,
                              ignore_iof_thr=-1),
                sampler=dict(type='PseudoSampler'), allowed_border=-1,
                pos_weight=-1, debug=False),
            test_cfg=test_cfg, **common)
    # GFLHead takes one anchor per location
    common['anchor_generator'] = dict(type='AnchorGenerator', ratios=[1.0],
                                      octave_base_scale=4,
                                      scales_per_octave=1, strides=[8, 16])
    return dict(type='GFLHead', norm_cfg=dict(type='GN', num_groups=4),
                reg_max=4,
                loss_cls=dict(type='EqualizedQualityFocalLoss',
                              num_classes=C_HEAD, use_sigmoid=True,
                              beta=2.0, loss_weight=1.0),
                loss_dfl=dict(type='DistributionFocalLoss',
                              loss_weight=0.25),
                loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
                train_cfg=atss_train, test_cfg=test_cfg, **common)


@pytest.fixture
def message_hub():
    from mmengine.logging import MessageHub
    name = f'test_efl_{uuid.uuid4().hex}'
    hub = MessageHub.get_instance(name)
    yield hub
    hub.update_info('iter', None)
    MessageHub._instance_dict.pop(name, None)


@pytest.mark.parametrize('kind', ['atss', 'retina', 'gfl'])
def test_statistics_through_real_head(kind, message_hub):
    """Two iterations of a real head's ``loss_by_feat`` (one call of the
    loss per FPN level): the statistics equal the logits' autograd
    gradients split by target. Iteration 1 is flushed by the fallback (new
    'iter' in the message hub), iteration 2 by EFLStatsFlushHook."""
    from mmengine.structures import InstanceData

    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    torch.manual_seed(11)
    head = MODELS.build(_head_cfg(kind)).train()
    loss_mod = head.loss_cls
    records = []

    def hook(module, args, kwargs, output):
        # after the call: the factors it used (a fallback flush, if any,
        # happens at the start of the call)
        pred, target = args[0], args[1]
        labels = target if torch.is_tensor(target) else target[0]
        pred.retain_grad()
        records.append((pred, labels.clone(),
                        module.focusing_factors()[0].clone()))

    handle = loss_mod.register_forward_hook(hook, with_kwargs=True)
    metas = [
        dict(img_shape=(64, 64), pad_shape=(64, 64),
             batch_input_shape=(64, 64), scale_factor=(1.0, 1.0))
        for _ in range(2)
    ]
    gts = [
        InstanceData(bboxes=torch.tensor([[4., 6., 40., 44.],
                                          [20., 12., 60., 54.]]),
                     labels=torch.tensor([1, 3])),
        InstanceData(bboxes=torch.tensor([[10., 10., 34., 30.]]),
                     labels=torch.tensor([4]))
    ]
    expected_pos = torch.zeros(C_HEAD, dtype=torch.float64)
    expected_neg = torch.zeros(C_HEAD, dtype=torch.float64)
    for it in range(2):
        message_hub.update_info('iter', it)
        records.clear()
        feats = [torch.randn(2, 8, 8, 8), torch.randn(2, 8, 4, 4)]
        outs = head(feats)
        losses = head.loss_by_feat(*outs, gts, metas)
        total = sum(v if torch.is_tensor(v) else sum(v)
                    for k, v in losses.items() if 'loss' in k)
        assert len(records) == 2  # one call per level
        # both levels of the iteration use the same focusing factors
        assert torch.equal(records[0][2], records[1][2])
        if it == 1:
            # iteration 0 was flushed at the first call of iteration 1
            torch.testing.assert_close(loss_mod.grad_stats.pos_grad,
                                       expected_pos, rtol=1e-5, atol=1e-10)
            torch.testing.assert_close(loss_mod.grad_stats.neg_grad,
                                       expected_neg, rtol=1e-5, atol=1e-10)
        total.backward()
        for pred, labels, _ in records:
            pos, neg = split_grad(pred.grad, labels)
            expected_pos += pos
            expected_neg += neg
        assert (expected_pos > 0).any(), [r[1] for r in records]
    EFLStatsFlushHook().after_train_iter(SimpleNamespace(model=head), 1)
    handle.remove()
    assert not loss_mod.has_pending_statistics
    assert int(loss_mod.grad_stats.num_updates) == 2
    torch.testing.assert_close(loss_mod.grad_stats.pos_grad, expected_pos,
                               rtol=1e-5, atol=1e-10)
    torch.testing.assert_close(loss_mod.grad_stats.neg_grad, expected_neg,
                               rtol=1e-5, atol=1e-10)
    assert flush_efl_statistics(head) == 0  # nothing left


def test_hook_is_registered():
    from mmdet.registry import HOOKS
    assert HOOKS.get('EFLStatsFlushHook') is EFLStatsFlushHook
    assert EFLStatsFlushHook.priority == 'ABOVE_NORMAL'


# ---------------------------------------------------------------------------
# two processes (gloo) agree with one process on all the data
# ---------------------------------------------------------------------------
def _dist_data(c=6):
    gen = torch.Generator().manual_seed(12)
    return [[make_level(n, c, gen) for n in (16, 8)] for _ in range(2)]


def _dist_run(loss, iterations, rank=None, world=1):
    for levels in iterations:
        total = 0
        for pred, labels, w in levels:
            if rank is not None:
                rows = slice(rank * pred.shape[0] // world,
                             (rank + 1) * pred.shape[0] // world)
                pred, labels, w = pred[rows], labels[rows], w[rows]
            total = total + loss(pred.clone().requires_grad_(), labels, w,
                                 avg_factor=6.0)
        total.backward()
        loss.flush_statistics()


def _dist_worker(rank, world, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=world)
    try:
        loss = EqualizedFocalLoss(num_classes=6).train()
        _dist_run(loss, _dist_data(), rank, world)
        torch.save(loss.state_dict(), os.path.join(out_dir, f'{rank}.pt'))
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_matches_single_process(tmp_path):
    init_file = tmp_path / 'dist_init'
    mp.spawn(_dist_worker, args=(2, str(init_file), str(tmp_path)),
             nprocs=2, join=True)
    sd0 = torch.load(tmp_path / '0.pt')
    sd1 = torch.load(tmp_path / '1.pt')
    for k in sd0:
        assert torch.equal(sd0[k], sd1[k]), k
    single = EqualizedFocalLoss(num_classes=6).train()
    _dist_run(single, _dist_data())
    for k, v in single.state_dict().items():
        # float32 per-chunk sums over different row groupings
        torch.testing.assert_close(sd0[k], v, rtol=1e-6, atol=1e-12)
    assert int(sd0['grad_stats.num_updates']) == 2


def test_loss_benchmark_smoke():
    from longtail_benchmark.loss_benchmark import (format_table,
                                                   resolve_threads, run_case,
                                                   summarize)
    results = []
    for rnd in range(2):
        for m in ('bce', 'efl'):
            r = run_case(m, 64, 12, reps=1, threads=1)
            assert 'error' not in r and r['median_s'] > 0, r
            results.append(dict(r, round=rnd))
    results.append(dict(method='efl_fused', n=64, c=12, threads=1, round=0,
                        error='CUDA only'))
    rows = {r['method']: r for r in summarize(results)}
    ratios = [e['median_s'] / b['median_s'] for e, b in
              zip(results[1:4:2], results[0:4:2])]
    assert rows['efl']['ratios'] == ratios
    assert rows['efl']['time_ratio'] == pytest.approx(sum(ratios) / 2)
    table = format_table(results)
    assert '| 64 x 12 | 1 | efl |' in table
    assert '| 64 x 12 | 1 | efl_fused | n/a (CUDA only)' in table
    assert resolve_threads([1, '1', 2])[:2] == [1, 2]


# ---------------------------------------------------------------------------
# the iteration's end without a runner, CPU threads, checks
# ---------------------------------------------------------------------------
@pytest.fixture
def no_runner_hub():
    """A message hub without an 'iter' (as in a plain PyTorch loop)."""
    from mmengine.logging import MessageHub
    name = f'test_efl_plain_{uuid.uuid4().hex}'
    hub = MessageHub.get_instance(name)
    assert hub.get_info('iter') is None
    yield hub
    MessageHub._instance_dict.pop(name, None)


def test_plain_pytorch_loop_keeps_every_iteration(no_runner_hub):
    """No runner and no flush hook: each iteration's sums reach the
    statistics at the first call after its backward pass (before this
    rule they stayed pending forever); the levels of one iteration share
    the factors."""
    gen = torch.Generator().manual_seed(21)
    c = 5
    loss = EqualizedFocalLoss(num_classes=c).train()
    expected_pos = torch.zeros(c, dtype=torch.float64)
    expected_neg = torch.zeros(c, dtype=torch.float64)
    for it in range(3):
        levels = [make_level(n, c, gen) for n in (14, 6)]
        leaves = [p.clone().requires_grad_() for p, _, _ in levels]
        factors = []
        total = 0
        for x, (_, labels, w) in zip(leaves, levels):
            total = total + loss(x, labels, w, avg_factor=3.0)
            factors.append(loss.focusing_factors()[0])
        assert torch.equal(factors[0], factors[1])
        # the previous iterations are in the statistics now
        assert int(loss.grad_stats.num_updates) == it
        torch.testing.assert_close(loss.grad_stats.pos_grad, expected_pos,
                                   rtol=1e-5, atol=1e-10)
        total.backward()
        for x, lv in zip(leaves, levels):
            pos, neg = split_grad(x.grad, lv[1])
            expected_pos += pos
            expected_neg += neg
    # the last iteration: explicitly, or warned about when saving
    assert loss.has_pending_statistics
    with pytest.warns(RuntimeWarning, match='pending'):
        loss.state_dict()
    assert loss.flush_statistics()
    assert int(loss.grad_stats.num_updates) == 3
    torch.testing.assert_close(loss.grad_stats.neg_grad, expected_neg,
                               rtol=1e-5, atol=1e-10)


def test_hook_flushes_through_public_buffer_api():
    from longtail_plugin.utils.grad_stats_buffer import \
        BufferedGradientStatistics
    c = 4
    model = nn.Sequential(nn.Identity(),
                          EqualizedQualityFocalLoss(num_classes=c).train())
    loss = model[1]
    assert isinstance(loss.grad_stats, BufferedGradientStatistics)
    x = torch.randn(6, c, requires_grad=True)
    loss(x, (torch.tensor([0, 4, 2, 4, 4, 1]), torch.rand(6)))
    assert loss.grad_stats.has_pending
    pos, neg = loss.grad_stats.pending()
    assert flush_efl_statistics(nn.Sequential(model)) == 1
    assert torch.equal(loss.grad_stats.pos_grad, pos)
    assert torch.equal(loss.grad_stats.neg_grad, neg)


@pytest.mark.parametrize('reduction', ['mean', 'none'])
@pytest.mark.parametrize('quality', [False, True])
def test_result_does_not_depend_on_thread_count(reduction, quality):
    """Chunks run on several Python threads; every chunk writes its own
    rows and column sums, added in chunk order: bit-identical results."""
    gen = torch.Generator().manual_seed(22)
    c = 7
    pred, labels, w = make_level(300, c, gen)
    scores = torch.rand(300, generator=gen)
    gam, fac = gammas(torch.rand(c, generator=gen))
    outs = []
    for threads in (1, 2, 3):
        x = pred.clone().requires_grad_()
        kw = dict(weight=w, reduction=reduction, return_stats=True,
                  chunk_elems=4 * c, threads=threads)
        if quality:
            loss, pos, neg = equalized_quality_focal_loss(
                x, (labels, scores), gam, fac, **kw)
        else:
            loss, pos, neg = equalized_focal_loss(x, labels, gam, fac, **kw)
        loss.sum().backward()
        outs.append((loss.detach(), pos, neg, x.grad))
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            assert torch.equal(a, b)


def test_worker_thread_errors_reach_the_caller():
    from longtail_plugin.models.losses.efl_kernel import run_parallel
    done = []

    def work(k):
        if k == 13:
            raise KeyError('chunk 13')
        done.append(k)

    with pytest.raises(KeyError, match='chunk 13'):
        run_parallel(work, 16, 2)
    # the caller's group (chunks 0-7) finished; the worker's stopped at 13
    assert sorted(done) == list(range(13))


def test_chunk_sizes_bound_memory():
    from longtail_plugin.models.losses.efl_kernel import (CPU_CHUNK_ELEMS,
                                                          default_chunk_elems)
    assert default_chunk_elems(torch.empty(20000, 1203)) == CPU_CHUNK_ELEMS
    # GPU: an eighth of the logits' bytes in float32 elements, between 64K
    # and 16M elements (the fixed 16M chunk was 4.5x the logits at 20k)
    for n in (100, 20000, 80000, 2000000):
        for dtype, frac in ((torch.float32, 8), (torch.float16, 16)):
            t = torch.empty(n, 1203, device='meta', dtype=dtype)
            chunk = default_chunk_elems(t)
            assert 1 << 16 <= chunk <= 1 << 24
            assert chunk <= max(t.numel() // frac, 1 << 16)
            if n == 20000:
                assert chunk == t.numel() // frac


def test_bad_labels_and_widths_are_errors():
    loss = EqualizedFocalLoss(num_classes=3)
    with pytest.raises(ValueError, match=r'EqualizedFocalLoss.*\[0, 3\]'):
        loss(torch.randn(2, 3), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match='EqualizedFocalLoss.*integers'):
        loss(torch.randn(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match='EqualizedFocalLoss.*shape'):
        loss(torch.randn(2, 4), torch.tensor([0, 1]))
    eqfl = EqualizedQualityFocalLoss(num_classes=3)
    with pytest.raises(ValueError, match='EqualizedQualityFocalLoss'):
        eqfl(torch.randn(2, 3), (torch.tensor([-1, 0]), torch.rand(2)))
