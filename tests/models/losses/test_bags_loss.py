"""Tests of BalancedGroupSoftmaxLoss (BAGS, Li et al. CVPR 2020)."""
import json
import math
from types import SimpleNamespace

import pytest
import torch

from longtail_plugin.models.losses import BalancedGroupSoftmaxLoss
from longtail_plugin.models.losses.bags_loss import instance_count_groups
from longtail_plugin.utils import category_info_from_dataset

# C = 3 classes with 5 / 50 / 500 training instances: one class in each of
# the groups [0, 10), [10, 100), [100, 1000); the group [1000, inf) is empty.
# Columns: 0..2 classes, 3 background, 4 group-0 "foreground" (o_0),
# 5..8 the "others" of groups 1..4.
COUNTS = [5, 50, 500]
Z = [
    [1.0, -0.5, 0.2, 0.3, -0.1, 0.4, -0.2, 0.7, 0.05],
    [0.3, 0.1, -1.0, -0.6, 0.5, 0.2, 0.1, -0.3, 0.0],
    [-0.2, 0.4, 0.0, 1.2, -0.4, -0.5, 0.6, 0.2, 0.1],
    [0.8, 0.2, -0.3, 0.1, 0.9, -0.7, 0.3, 0.0, -0.2],
]
Y = [0, 1, 3, 0]  # 3 = background


def ce(logits, target):
    """Softmax cross-entropy of a list of logits (plain Python)."""
    m = max(logits)
    lse = m + math.log(sum(math.exp(v - m) for v in logits))
    return lse - logits[target]


def hand_loss(weights=(1, 1, 1, 1), others=None):
    """BAGS loss of (Z, Y) by hand. ``others[g]``: the RoIs group g uses as
    "others" (default: all)."""
    c = 3
    group_of = {0: 1, 1: 2, 2: 3}
    total = 0.0
    # group 0: [z_bg, o_0], target 1 = foreground
    rows = [i for i in range(4) if weights[i] > 0]
    total += sum(weights[i] * ce([Z[i][3], Z[i][4]], int(Y[i] < c))
                 for i in rows) / len(rows)
    for g in (1, 2, 3):
        cls = [j for j in range(c) if group_of[j] == g]
        pos = [i for i in rows if Y[i] in cls]
        if not pos:
            continue
        oth = [i for i in rows if i not in pos]
        if others is not None and g in others:
            oth = others[g]
        used = pos + oth
        s = 0.0
        for i in used:
            logits = [Z[i][4 + g]] + [Z[i][j] for j in cls]
            target = 1 + cls.index(Y[i]) if Y[i] in cls else 0
            s += weights[i] * ce(logits, target)
        total += s / len(used)
    return total


def make_loss(**kw):
    kw.setdefault('instance_count', COUNTS)
    kw.setdefault('seed', 0)
    loss = BalancedGroupSoftmaxLoss(num_classes=3, **kw)
    return loss.eval()


@pytest.fixture
def ann_file(tmp_path):
    data = dict(
        images=[dict(id=i) for i in range(1, 11)],
        annotations=[],
        categories=[
            dict(id=i + 1, name=f'c{i}', image_count=1, instance_count=n,
                 frequency='r') for i, n in enumerate(COUNTS)
        ])
    path = tmp_path / 'train.json'
    path.write_text(json.dumps(data))
    return str(path)


# --- layout and groups ----------------------------------------------------
def test_groups_follow_the_authors_bins():
    counts = [0, 9, 10, 99, 100, 999, 1000, 5000]
    assert instance_count_groups(counts, (10, 100, 1000)).tolist() == \
        [1, 1, 2, 2, 3, 3, 4, 4]
    loss = BalancedGroupSoftmaxLoss(8, instance_count=counts)
    # C + 1 + G channels, G = 5 groups (background + 4)
    assert loss.num_groups == 5
    assert loss.get_cls_channels(8) == 8 + 1 + 5
    assert loss.group_sizes() == [2, 2, 2, 2]
    two = BalancedGroupSoftmaxLoss(8, bins=(10, ), instance_count=counts)
    assert two.get_cls_channels(8) == 8 + 1 + 3
    assert two.class_group.tolist() == [1, 1, 2, 2, 2, 2, 2, 2]
    # an empty group keeps its column: the layout never depends on the data
    assert make_loss().get_cls_channels(3) == 9
    assert make_loss().group_sizes() == [1, 1, 1, 0]


def test_groups_from_ann_file_hook_and_checkpoint(ann_file, tmp_path):
    a = BalancedGroupSoftmaxLoss(3, ann_file=ann_file)
    assert a.class_group.tolist() == [1, 2, 3] and not a.needs_category_info
    # counts derived from the annotations of a file without LVIS fields
    b = BalancedGroupSoftmaxLoss(3, ann_file='train.json',
                                 data_root=str(tmp_path))
    assert b.class_group.tolist() == [1, 2, 3]
    data = dict(images=[dict(id=1)],
                categories=[dict(id=i, name=str(i)) for i in (1, 2, 3)],
                annotations=[dict(id=k, image_id=1, category_id=2)
                             for k in range(12)])
    info = category_info_from_dataset(data, 'derived')
    # the TrainCategoryInfoHook path
    c = BalancedGroupSoftmaxLoss(3)
    assert c.needs_category_info
    with pytest.raises(ValueError, match='TrainCategoryInfoHook'):
        c(torch.zeros(2, 9), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match='ann_file'):
        c.get_activation(torch.zeros(2, 9))
    c.bind_category_info(info)
    assert c.class_group.tolist() == [1, 2, 1]
    assert not c.needs_category_info
    # the groups travel with the checkpoint (testing, resuming)
    d = BalancedGroupSoftmaxLoss(3)
    d.load_state_dict(c.state_dict())
    assert d.class_group.tolist() == [1, 2, 1] and not d.needs_category_info
    with pytest.raises(ValueError, match='has 3 categories'):
        BalancedGroupSoftmaxLoss(2, ann_file=ann_file)


# --- loss values ----------------------------------------------------------
def test_loss_matches_hand_computation_without_sampling():
    loss = make_loss(beta=None)
    z, y = torch.tensor(Z, dtype=torch.float64), torch.tensor(Y)
    assert loss(z, y).item() == pytest.approx(hand_loss(), rel=1e-12)
    # beta = 8 keeps every "other" here (at most 3 per group): same value
    assert make_loss()(z, y).item() == pytest.approx(hand_loss(), rel=1e-12)
    # avg_factor is ignored (per-group normalisation), loss_weight scales
    assert make_loss(loss_weight=0.5)(z, y, avg_factor=100.).item() == \
        pytest.approx(0.5 * hand_loss(), rel=1e-12)


def test_reductions():
    z, y = torch.tensor(Z, dtype=torch.float64), torch.tensor(Y)
    loss = make_loss(beta=1.0)
    mean = loss(z, y)
    none = loss(z, y, reduction_override='none')
    assert none.shape == (4, )
    assert none.sum().item() == pytest.approx(mean.item(), rel=1e-12)
    # 'sum' drops the per-group normalisers: with beta=None it is the sum
    # of all used cross-entropies
    full = make_loss(beta=None)
    c = 3
    total = sum(ce([Z[i][3], Z[i][4]], int(Y[i] < c)) for i in range(4))
    total += sum(ce([Z[i][5], Z[i][0]], int(Y[i] == 0)) for i in range(4))
    total += sum(ce([Z[i][6], Z[i][1]], int(Y[i] == 1)) for i in range(4))
    assert full(z, y, reduction_override='sum').item() == pytest.approx(
        total, rel=1e-12)


def test_label_weights_are_respected():
    z, y = torch.tensor(Z, dtype=torch.float64), torch.tensor(Y)
    w = torch.tensor([2.0, 1.0, 0.0, 1.0])
    out = make_loss(beta=None)(z, y, w)
    assert out.item() == pytest.approx(hand_loss((2, 1, 0, 1)), rel=1e-12)
    assert out.item() != pytest.approx(hand_loss(), rel=1e-3)
    # a RoI of weight 0 takes no part, even as a sampled "other"
    loss = make_loss(beta=1.0)
    for step in range(20):
        loss.sample_step.fill_(step)
        used = [u for _, u, _ in loss.group_terms(
            z, y, w > 0, loss.sampling_generator())]
        assert not any(bool(u[2]) for u in used)
    with pytest.raises(ValueError, match='non-negative'):
        make_loss()(z, y, -w)
    # every weight 0: a zero loss that keeps the graph
    zg = z.clone().requires_grad_(True)
    out = make_loss()(zg, y, torch.zeros(4))
    assert out.item() == 0.0 and out.requires_grad


def test_sampled_loss_is_one_of_the_hand_values():
    """beta = 1: group 2 (one positive, RoI 1) keeps one of its three
    "others" (RoIs 0, 2, 3), group 1 (two positives) both of its others."""
    z, y = torch.tensor(Z, dtype=torch.float64), torch.tensor(Y)
    loss = make_loss(beta=1.0)
    options = {o: hand_loss(others={2: [o]}) for o in (0, 2, 3)}
    seen = set()
    for step in range(30):
        loss.sample_step.fill_(step)
        v = loss(z, y).item()
        match = [o for o, h in options.items() if abs(v - h) < 1e-12]
        assert len(match) == 1
        seen.add(match[0])
    assert seen == {0, 2, 3}  # every candidate is drawn at some step


# --- sampling -------------------------------------------------------------
def batch(n_bg=150, n0=5, n1=30):
    labels = torch.tensor([0] * n0 + [1] * n1 + [3] * n_bg)
    logits = torch.randn(labels.numel(), 9, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(1))
    return logits, labels


def used_masks(loss, logits, labels, weight=None):
    valid = torch.ones_like(labels, dtype=torch.bool) if weight is None \
        else weight > 0
    return [(u.clone(), n) for _, u, n in loss.group_terms(
        logits, labels, valid, loss.sampling_generator())]


def test_sampling_counts():
    logits, labels = batch()
    loss = make_loss()  # beta = 8
    (u0, n0), (u1, n1), (u2, n2) = used_masks(loss, logits, labels)
    assert n0 == 185 and bool(u0.all())  # the background group: all RoIs
    # group 1: its 5 positives and 8 x 5 = 40 of the 180 others
    assert n1 == 45 and int(u1.sum()) == 45 and bool(u1[:5].all())
    # group 2: 30 positives, 240 > 155 others -> every RoI
    assert n2 == 185 and bool(u2.all())
    # group 3 (no positive in the batch) and group 4 (no class): nothing
    assert len(used_masks(loss, logits, labels)) == 3
    # beta = 2.5: floor(2.5 x 5) = 12 others for group 1, 75 for group 2
    (_, _), (_, m1), (_, m2) = used_masks(make_loss(beta=2.5), logits, labels)
    assert (m1, m2) == (5 + 12, 30 + 75)


def test_sampling_is_reproducible_and_advances_in_training():
    logits, labels = batch()
    a, b = make_loss(seed=7), make_loss(seed=7)
    first = used_masks(a, logits, labels)[1][0]
    assert torch.equal(first, used_masks(b, logits, labels)[1][0])
    # eval mode does not advance the stream
    a(logits, labels)
    assert int(a.sample_step) == 0
    assert torch.equal(first, used_masks(a, logits, labels)[1][0])
    # training calls do
    a.train()
    a(logits, labels)
    assert int(a.sample_step) == 1
    second = used_masks(a, logits, labels)[1][0]
    assert not torch.equal(first, second)
    # another seed draws another sample
    assert not torch.equal(
        first, used_masks(make_loss(seed=8), logits, labels)[1][0])
    # resuming from the state dict continues the same stream
    for _ in range(3):
        a(logits, labels)
    resumed = make_loss(seed=7)
    resumed.load_state_dict(a.state_dict())
    assert int(resumed.sample_step) == 4
    assert torch.equal(
        used_masks(a, logits, labels)[1][0],
        used_masks(resumed, logits, labels)[1][0])


def test_seed_none_follows_the_run_seed():
    logits, labels = batch()
    torch.manual_seed(123)
    x = used_masks(make_loss(seed=None), logits, labels)[1][0]
    torch.rand(5)  # consuming the global stream changes nothing
    y = used_masks(make_loss(seed=None), logits, labels)[1][0]
    torch.manual_seed(124)
    z = used_masks(make_loss(seed=None), logits, labels)[1][0]
    assert torch.equal(x, y) and not torch.equal(x, z)


# --- gradient -------------------------------------------------------------
def test_gradcheck():
    logits, labels = batch(n_bg=20, n0=3, n1=4)
    w = torch.rand(labels.numel(), dtype=torch.float64,
                   generator=torch.Generator().manual_seed(2)) + 0.5
    loss = make_loss(beta=2.0)  # eval mode: a fixed sample
    x = logits.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: loss(t, labels, w), (x, ))
    assert torch.autograd.gradcheck(
        lambda t: loss(t, labels, w, reduction_override='none'), (x, ))
    assert torch.autograd.gradcheck(loss.get_activation, (x, ))


def test_gradient_of_unused_columns_is_zero():
    z = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    make_loss(beta=None)(z, torch.tensor(Y)).backward()
    # class 2 has no RoI: its group (3) and the empty group 4 get nothing
    assert torch.all(z.grad[:, [2, 7, 8]] == 0)
    assert torch.all(z.grad[:, [0, 1, 3, 4, 5, 6]].abs().sum(0) > 0)


# --- test-time merge and accuracy ---------------------------------------
def softmax(v):
    e = [math.exp(x) for x in v]
    return [x / sum(e) for x in e]


def test_activation_merge_by_hand():
    counts = [5, 50, 7, 5000]  # groups 1, 2, 1, 4; group 3 empty
    loss = BalancedGroupSoftmaxLoss(4, instance_count=counts)
    # columns: 0..3 classes, 4 bg, 5 o_0, 6..9 others of groups 1..4
    z = [0.5, -1.0, 1.5, 0.2, 0.3, 1.1, -0.4, 0.9, 2.0, 0.0]
    out = loss.get_activation(torch.tensor([z], dtype=torch.float64))[0]
    p_bg, p_fg = softmax([z[4], z[5]])
    g1 = softmax([z[6], z[0], z[2]])  # others dropped, not renormalised
    g2 = softmax([z[7], z[1]])
    g4 = softmax([z[9], z[3]])
    expect = [g1[1] * p_fg, g2[1] * p_fg, g1[2] * p_fg, g4[1] * p_fg, p_bg]
    assert out.tolist() == pytest.approx(expect, rel=1e-12)
    # by design the scores do not sum to one (here: 1.401...)
    assert out.sum().item() == pytest.approx(sum(expect), rel=1e-12)
    assert abs(out.sum().item() - 1.0) > 0.1


def test_accuracy_by_hand():
    loss = make_loss()
    z = torch.zeros(4, 9)
    z[0, [0, 4]] = 3.0   # fg predicted, class 0 (label 0): right
    z[1, [2, 4]] = 3.0   # fg predicted, class 2 (label 1): wrong class
    z[2, 3] = 3.0        # bg predicted (label bg): right
    z[3, 3] = 3.0        # bg predicted (label 0): wrong
    z[3, 0] = 3.0        # ... but its best class is right
    acc = loss.get_accuracy(z, torch.tensor([0, 1, 3, 0]))
    assert acc['acc_objectness'].item() == pytest.approx(75.0)
    assert acc['acc_classes'].item() == pytest.approx(200.0 / 3)


# --- bad input and empty batch --------------------------------------------
def test_errors():
    with pytest.raises(ValueError, match='bins'):
        BalancedGroupSoftmaxLoss(3, bins=(100, 10), instance_count=COUNTS)
    with pytest.raises(ValueError, match='bins'):
        BalancedGroupSoftmaxLoss(3, bins=(), instance_count=COUNTS)
    with pytest.raises(ValueError, match='beta'):
        BalancedGroupSoftmaxLoss(3, beta=0, instance_count=COUNTS)
    with pytest.raises(ValueError, match='seed'):
        BalancedGroupSoftmaxLoss(3, seed=-1, instance_count=COUNTS)
    with pytest.raises(ValueError, match='instance_count'):
        BalancedGroupSoftmaxLoss(3, instance_count=[1, 2])
    with pytest.raises(ValueError, match='not both'):
        BalancedGroupSoftmaxLoss(3, instance_count=COUNTS, ann_file='x.json')
    with pytest.raises(FileNotFoundError, match='missing.json'):
        BalancedGroupSoftmaxLoss(3, ann_file='missing.json')
    with pytest.raises(ValueError, match='use_sigmoid'):
        BalancedGroupSoftmaxLoss(3, use_sigmoid=True)
    loss = make_loss()
    with pytest.raises(ValueError, match=r'expected \[N, 9\]'):
        loss(torch.zeros(2, 4), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r'outside the valid range'):
        loss(torch.zeros(2, 9), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match='labels must be integers'):
        loss(torch.zeros(2, 9), torch.tensor([0.0, 1.5]))
    with pytest.raises(ValueError, match='weight has shape'):
        loss(torch.zeros(2, 9), torch.tensor([0, 3]), torch.ones(3))
    with pytest.raises(ValueError, match='reduction_override'):
        loss(torch.zeros(2, 9), torch.tensor([0, 3]),
             reduction_override='avg')
    with pytest.raises(ValueError, match='reduction must be'):
        BalancedGroupSoftmaxLoss(3, reduction='avg', instance_count=COUNTS)
    with pytest.raises(ValueError, match='num_classes must be'):
        BalancedGroupSoftmaxLoss(0)
    with pytest.raises(ValueError, match='num_classes=5'):
        loss.get_cls_channels(5)
    bad = BalancedGroupSoftmaxLoss(3, bins=(10, ), instance_count=COUNTS)
    bad.load_state_dict(make_loss().state_dict())  # groups up to 3
    with pytest.raises(ValueError, match='other bins'):
        bad.get_activation(torch.zeros(1, 3 + 1 + 3))


def test_empty_batch_keeps_the_graph():
    loss = make_loss().train()
    z = torch.zeros(0, 9, requires_grad=True)
    out = loss(z, torch.zeros(0, dtype=torch.long))
    assert out.item() == 0.0 and out.requires_grad
    out.backward()
    assert z.grad.shape == (0, 9)
    for red, shape in (('none', (0, )), ('sum', ())):
        out = loss(z, torch.zeros(0, dtype=torch.long),
                   reduction_override=red)
        assert out.shape == shape and out.grad_fn is not None
    assert int(loss.sample_step) == 0  # nothing drawn


# --- config smoke test ----------------------------------------------------
def test_synthetic_config_with_bags_head(tmp_path):
    """The synthetic baseline with BAGS as the stock Shared2FCBBoxHead's
    loss_cls: builds, trains one loss step, predicts with the merge."""
    import os.path as osp
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config, ConfigDict
    register_all_modules()
    root = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))
    cfg = Config.fromfile(osp.join(
        root, 'configs', 'baselines',
        'mask-rcnn_r18_fpn_softmax_400it_synthetic-lvis.py'))
    c = cfg.model.roi_head.bbox_head.num_classes
    counts = [3 * j for j in range(c)]  # 0 .. 297: groups 1, 2, 3 used
    path = tmp_path / 'train.json'
    path.write_text(json.dumps(dict(
        images=[dict(id=1)], annotations=[],
        categories=[dict(id=j + 1, name=f'c{j}', image_count=1,
                         instance_count=n, frequency='r')
                    for j, n in enumerate(counts)])))
    # the loss names no file: TrainCategoryInfoHook gives it the training
    # dataset's when training starts
    cfg.model.roi_head.bbox_head.loss_cls = dict(
        type='BalancedGroupSoftmaxLoss', num_classes=c, seed=0)
    cfg.train_dataloader.dataset.ann_file = str(path)
    model = MODELS.build(cfg.model)
    head = model.roi_head.bbox_head
    from longtail_plugin.engine.hooks.category_info_hook import (
        TrainCategoryInfoHook, modules_needing_category_info)
    assert [p for p, _ in modules_needing_category_info(model)] == \
        ['roi_head.bbox_head.loss_cls']
    TrainCategoryInfoHook().before_train(SimpleNamespace(
        model=model, cfg=cfg, logger=SimpleNamespace(info=lambda msg: None)))
    assert head.loss_cls.group_sizes() == [4, 30, 66, 0]
    assert type(head).__name__ == 'Shared2FCBBoxHead'
    assert head.fc_cls.out_features == c + 1 + 5
    g = torch.Generator().manual_seed(0)
    n = 64
    feats = torch.randn(n, 128, 7, 7, generator=g)
    cls_score, bbox_pred = head(feats)
    xy = torch.rand(n, 2, generator=g) * 100
    rois = torch.cat([torch.zeros(n, 1), xy, xy + 20], dim=1)
    labels = torch.randint(0, c + 1, (n, ), generator=g)
    labels[n // 2:] = c
    losses = head.loss(cls_score, bbox_pred, rois, labels,
                       torch.ones(n), torch.zeros(n, 4), torch.ones(n, 4))
    assert set(losses) == {'loss_cls', 'acc_objectness', 'acc_classes',
                           'loss_bbox'}
    assert torch.isfinite(losses['loss_cls']) and losses['loss_cls'] > 0
    (losses['loss_cls'] + losses['loss_bbox']).backward()
    assert head.fc_cls.weight.grad.abs().sum() > 0
    # test time: the merged scores (C + 1 columns) feed MMDetection's NMS
    head.eval()
    with torch.no_grad():
        cls_score, bbox_pred = head(feats[:8])
        result = head.predict_by_feat(
            rois=(rois[:8], ), cls_scores=(cls_score, ),
            bbox_preds=(bbox_pred, ),
            batch_img_metas=[dict(img_shape=(160, 160),
                                  scale_factor=(1., 1.))],
            rcnn_test_cfg=ConfigDict(score_thr=0.0, nms=dict(
                type='nms', iou_threshold=0.5), max_per_img=20))[0]
    assert len(result.scores) > 0
    assert int(result.labels.max()) < c
