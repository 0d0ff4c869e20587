"""Tests of CLISBBoxHead (CLIS task-specialised box head; design ours)."""
import json
import math

import pytest
import torch
from mmengine.config import ConfigDict

from mmdet.registry import MODELS

import longtail_plugin.models  # noqa: F401  (registers the modules)
from longtail_plugin.models.roi_heads import CLISBBoxHead

C = 3  # foreground classes; label 3 = background


def build_head(**kwargs) -> CLISBBoxHead:
    cfg = dict(
        type='CLISBBoxHead', in_channels=8, roi_feat_size=7,
        fc_out_channels=32, num_classes=C)
    cfg.update(kwargs)
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def targets(n_rois=6):
    """Hand-made training targets: labels, weights, box targets/weights."""
    labels = torch.tensor([0, 1, 2, C, C, 1])[:n_rois]
    label_weights = torch.ones(n_rois)
    pos = labels < C
    bbox_targets = torch.randn(n_rois, 4) * pos[:, None]
    bbox_weights = pos[:, None].float().expand(n_rois, 4).clone()
    rois = torch.zeros(n_rois, 5)
    return rois, labels, label_weights, bbox_targets, bbox_weights


def grads(loss, params):
    """Gradients of ``loss`` w.r.t. ``params`` (zeros where unused)."""
    gs = torch.autograd.grad(loss, params, retain_graph=True,
                             allow_unused=True)
    return [torch.zeros_like(p) if g is None else g
            for p, g in zip(params, gs)]


def params_of(*modules):
    return [p for m in modules for p in m.parameters()]


def losses_of(head, x):
    cls_score, bbox_pred, obj, _ = head.forward_all(x)
    rois, labels, lw, bt, bw = targets(x.size(0))
    return head.loss(cls_score, bbox_pred, rois, labels, lw, bt, bw,
                     objectness=obj)


# --- branch separation -------------------------------------------------------
def test_decoupled_branches_do_not_share_gradients():
    head = build_head(decouple=True)
    assert len(head.shared_fcs) == 0
    assert len(head.cls_fcs) == 2 and len(head.reg_fcs) == 2
    x = torch.randn(6, 8, 7, 7)
    losses = losses_of(head, x)
    loc = losses['loss_bbox'] + losses['loss_objectness']
    cls_side = params_of(head.cls_fcs, head.fc_cls)
    loc_side = params_of(head.reg_fcs, head.fc_reg, head.fc_obj)
    # localisation loss: exactly zero on the classification side ...
    assert all(torch.equal(g, torch.zeros_like(g))
               for g in grads(loc, cls_side))
    # ... but not on its own side
    assert all(g.abs().sum() > 0 for g in grads(loc, loc_side))
    # classification loss: exactly zero on the localisation side
    assert all(torch.equal(g, torch.zeros_like(g))
               for g in grads(losses['loss_cls'], loc_side))
    assert all(g.abs().sum() > 0
               for g in grads(losses['loss_cls'], cls_side))


def test_coupled_trunk_receives_both_losses():
    head = build_head(decouple=False)
    assert len(head.shared_fcs) == 2
    assert len(head.cls_fcs) == 0 and len(head.reg_fcs) == 0
    assert head.cls_trunk is head.loc_trunk is head.shared_fcs
    x = torch.randn(6, 8, 7, 7)
    losses = losses_of(head, x)
    loc = losses['loss_bbox'] + losses['loss_objectness']
    trunk = params_of(head.shared_fcs)
    assert all(g.abs().sum() > 0 for g in grads(loc, trunk))
    assert all(g.abs().sum() > 0 for g in grads(losses['loss_cls'], trunk))
    # the predictors stay task-specific
    assert all(torch.equal(g, torch.zeros_like(g))
               for g in grads(loc, params_of(head.fc_cls)))
    assert all(torch.equal(g, torch.zeros_like(g))
               for g in grads(losses['loss_cls'],
                              params_of(head.fc_reg, head.fc_obj)))


def test_forward_shapes_and_mmdet_interface():
    head = build_head()
    x = torch.randn(5, 8, 7, 7)
    cls_score, bbox_pred, obj, feat = head.forward_all(x)
    assert cls_score.shape == (5, C + 1)
    assert bbox_pred.shape == (5, 4 * C)
    assert obj.shape == (5, 1)
    assert feat.shape == (5, 32)
    cls2, box2 = head(x)
    assert torch.equal(cls2, cls_score) and torch.equal(box2, bbox_pred)
    img_score, img_feat = head.forward_image(x)
    # siamese: the image branch computes exactly the instance classifier
    assert torch.equal(img_score, cls_score)
    assert torch.equal(img_feat, feat)
    # empty input
    out = head.forward_all(torch.zeros(0, 8, 7, 7))
    assert [t.shape[0] for t in out] == [0, 0, 0, 0]


# --- siamese weights ---------------------------------------------------------
@pytest.mark.parametrize('decouple', [True, False])
def test_siamese_image_branch_is_the_instance_classifier(decouple):
    head = build_head(decouple=decouple, siamese=True)
    trunk, classifier = head.image_branch()
    assert trunk is head.cls_trunk and classifier is head.fc_cls
    inst = params_of(head.cls_trunk, head.fc_cls)
    img = params_of(trunk, classifier)
    assert len(img) == len(inst) == 2 * 2 + 2
    assert all(a is b for a, b in zip(img, inst))
    keys = list(head.state_dict())
    assert not any('img' in k for k in keys)
    assert len(keys) == len(set(keys))
    # one tensor: an image-level loss moves the instance classifier
    score, _ = head.forward_image(torch.randn(2, 8, 7, 7))
    g = grads(score.square().sum(), [head.fc_cls.weight,
                                     head.cls_trunk[0].weight])
    assert all(t.abs().sum() > 0 for t in g)


def test_non_siamese_image_branch_has_its_own_weights():
    head = build_head(siamese=False)
    trunk, classifier = head.image_branch()
    assert trunk is head.img_cls_fcs and classifier is head.fc_img_cls
    inst = params_of(head.cls_fcs, head.fc_cls)
    img = params_of(trunk, classifier)
    assert [p.shape for p in img] == [p.shape for p in inst]
    assert not any(a is b for a in img for b in inst)
    keys = set(head.state_dict())
    assert {'img_cls_fcs.0.weight', 'img_cls_fcs.1.weight',
            'fc_img_cls.weight', 'fc_img_cls.bias'} <= keys
    x = torch.randn(2, 8, 7, 7)
    score, _ = head.forward_image(x)
    assert not torch.equal(score, head.forward_all(x)[0])
    g = grads(score.sum(), inst)
    assert all(torch.equal(t, torch.zeros_like(t)) for t in g)


# --- objectness loss ---------------------------------------------------------
def bce(z, t):
    return math.log1p(math.exp(-z)) if t else math.log1p(math.exp(z))


def test_objectness_loss_by_hand():
    head = build_head(loss_objectness=dict(
        type='CrossEntropyLoss', use_sigmoid=True, loss_weight=2.0))
    z = [0.7, -1.2, 0.3, 2.0]
    labels = torch.tensor([0, C, 2, C])
    weights = torch.tensor([1.0, 1.0, 0.0, 0.5])
    out = head.objectness_loss(torch.tensor(z)[:, None], labels, weights)
    # targets 1, 0, 1, 0; avg_factor = #(weights > 0) = 3
    hand = 2.0 * (bce(0.7, 1) + bce(-1.2, 0) + 0.5 * bce(2.0, 0)) / 3
    assert out.item() == pytest.approx(hand, rel=1e-6)
    empty = head.objectness_loss(
        torch.zeros(0, 1, requires_grad=True), labels[:0], weights[:0])
    assert empty.item() == 0.0 and empty.requires_grad


def test_loss_keys_and_objectness_from_loss():
    head = build_head()
    x = torch.randn(6, 8, 7, 7)
    cls_score, bbox_pred, obj, _ = head.forward_all(x)
    rois, labels, lw, bt, bw = targets()
    losses = head.loss(cls_score, bbox_pred, rois, labels, lw, bt, bw,
                       objectness=obj)
    assert set(losses) == {'loss_cls', 'acc', 'loss_bbox', 'loss_objectness'}
    t = (labels < C).float()
    hand = torch.nn.functional.binary_cross_entropy_with_logits(
        obj[:, 0], t)
    assert losses['loss_objectness'].item() == pytest.approx(hand.item(),
                                                             rel=1e-6)
    with pytest.raises(ValueError, match='CLISRoIHead'):
        head.loss(cls_score, bbox_pred, rois, labels, lw, bt, bw)


# --- score modes -------------------------------------------------------------
Z = [2.0, 0.5, -1.0, 0.3]  # C = 3 classes + background logit
OBJ = 0.8


def hand_scores(mode, lam=0.25):
    e = [math.exp(v) for v in Z]
    p = [v / sum(e) for v in e]
    o = 1 / (1 + math.exp(-OBJ))
    if mode == 'cls':
        fg = p[:C]
    elif mode == 'product':
        fg = [v * o for v in p[:C]]
    else:
        fg = [v**(1 - lam) * o**lam for v in p[:C]]
    return fg + [p[C]]


@pytest.mark.parametrize('mode', ['cls', 'product', 'geometric'])
def test_score_modes_by_hand(mode):
    head = build_head(score_mode=mode, objectness_weight=0.25)
    cls_score = torch.tensor([Z])
    obj = torch.tensor([[OBJ]])
    roi = torch.tensor([[0.0, 10.0, 10.0, 30.0, 40.0]])
    meta = dict(img_shape=(64, 64))
    # raw (no NMS): every class's box and its fused score
    raw = head.predict_by_feat((roi, ), (cls_score, ),
                               (torch.zeros(1, 4 * C), ), [meta],
                               rcnn_test_cfg=None, objectness=(obj, ))[0]
    assert raw.scores.shape == (1, C + 1)
    assert raw.scores[0].tolist() == pytest.approx(hand_scores(mode),
                                                   rel=1e-6)
    # with NMS: one detection per class, sorted by the fused score
    cfg = ConfigDict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                     max_per_img=10)
    res = head.predict_by_feat((roi, ), (cls_score, ),
                               (torch.zeros(1, 4 * C), ), [meta],
                               rcnn_test_cfg=cfg, objectness=(obj, ))[0]
    expected = sorted(hand_scores(mode)[:C], reverse=True)
    assert res.scores.tolist() == pytest.approx(expected, rel=1e-6)
    assert res.labels.tolist() == [0, 1, 2]
    assert res.bboxes[0].tolist() == pytest.approx([10, 10, 30, 40])


def test_score_mode_needs_objectness_and_valid_args():
    head = build_head(score_mode='product')
    with pytest.raises(ValueError, match='objectness'):
        head.fuse_scores(torch.rand(2, C + 1), None)
    with pytest.raises(ValueError, match='score_mode'):
        build_head(score_mode='mean')
    with pytest.raises(ValueError, match='objectness_weight'):
        build_head(score_mode='geometric', objectness_weight=1.5)
    with pytest.raises(ValueError, match='num_cls_fcs'):
        build_head(num_cls_fcs=1)
    with pytest.raises(ValueError, match='num_fcs'):
        build_head(num_fcs=0)


# --- classification losses ---------------------------------------------------
@pytest.fixture
def lvis_ann_file(tmp_path):
    data = dict(
        images=[dict(id=i, height=32, width=32, file_name=f'{i}.jpg')
                for i in range(100)],
        annotations=[],
        categories=[
            dict(id=1, name='a', image_count=1, instance_count=1,
                 frequency='r'),
            dict(id=2, name='b', image_count=20, instance_count=30,
                 frequency='c'),
            dict(id=3, name='c', image_count=80, instance_count=90,
                 frequency='f'),
        ])
    path = tmp_path / 'lvis_tiny.json'
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize('loss_name', ['ce', 'eqlv2', 'eql'])
@pytest.mark.parametrize('siamese', [True, False])
def test_with_softmax_and_eql_family_losses(loss_name, siamese,
                                            lvis_ann_file):
    loss_cls = dict(
        ce=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        eqlv2=dict(type='EqualizationLossV2', num_classes=C),
        eql=dict(type='EqualizationLoss', num_classes=C, lambda_=0.05,
                 ann_file=lvis_ann_file))[loss_name]
    width = dict(ce=C + 1, eqlv2=C + 1, eql=C)[loss_name]
    head = build_head(loss_cls=loss_cls, siamese=siamese,
                      score_mode='product')
    head.train()
    assert head.fc_cls.out_features == width
    x = torch.randn(6, 8, 7, 7)
    cls_score, bbox_pred, obj, _ = head.forward_all(x)
    assert cls_score.shape == (6, width)
    img_score, _ = head.forward_image(x)
    assert img_score.shape == (6, width)
    rois, labels, lw, bt, bw = targets()
    losses = head.loss(cls_score, bbox_pred, rois, labels, lw, bt, bw,
                       objectness=obj)
    assert {'loss_cls', 'loss_bbox', 'loss_objectness'} <= set(losses)
    if loss_name == 'ce':
        assert 'acc' in losses
    else:  # the custom accuracy of the EQL family
        assert 'acc_classes' in losses
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    total.backward()
    assert head.fc_cls.weight.grad.abs().sum() > 0
    assert head.fc_obj.weight.grad.abs().sum() > 0
    # test-time scores: the loss's activation, fused with the objectness
    head.eval()
    with torch.no_grad():
        cls_score, bbox_pred, obj, _ = head.forward_all(x[:2])
        rois = torch.tensor([[0., 0., 0., 20., 20.], [0., 5., 5., 30., 30.]])
        raw = head.predict_by_feat((rois, ), (cls_score, ), (bbox_pred, ),
                                   [dict(img_shape=(64, 64))],
                                   objectness=(obj, ))[0]
        act = head.loss_cls.get_activation(cls_score) \
            if head.custom_cls_channels else cls_score.softmax(-1)
    assert raw.scores.shape == (2, C + 1)
    expected = torch.cat([act[:, :C] * obj.sigmoid(), act[:, C:]], 1)
    assert torch.allclose(raw.scores, expected, atol=1e-7)
