"""ImageLabelRoIHead (Detic-style image-label loss): the largest-proposal
choice, the BCE by hand, the normalisation over labels and samples, and the
``loss_image_label`` key in every batch."""
import math

import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi

import longtail_plugin  # noqa: F401  (registers the modules)
from image_level_cases import (NUM_CLASSES, SIZE, make_sample,
                               tiny_mask_rcnn_cfg)
from longtail_plugin.models.roi_heads import ImageLabelRoIHead
from longtail_plugin.models.roi_heads.image_label_roi_head import (
    image_label_bce, image_label_ce, largest_box_index)


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def head(**kw) -> ImageLabelRoIHead:
    torch.manual_seed(0)
    cfg = tiny_mask_rcnn_cfg(**kw)
    roi = cfg['roi_head']
    roi.update(train_cfg=cfg['train_cfg']['rcnn'],
               test_cfg=cfg['test_cfg']['rcnn'])
    h = MODELS.build(roi)
    h.init_weights()
    return h.train()


def feats(n: int):
    g = torch.Generator().manual_seed(3)
    return tuple(
        torch.randn(n, 16, SIZE // s, SIZE // s, generator=g,
                    requires_grad=True) for s in (4, 8, 16, 32, 64))


def test_largest_box_index_by_hand():
    boxes = torch.tensor([
        [0.0, 0.0, 10.0, 10.0],   # 100
        [5.0, 5.0, 30.0, 20.0],   # 25 x 15 = 375
        [0.0, 0.0, 19.0, 19.0],   # 361
        [40.0, 40.0, 30.0, 60.0],  # degenerate (x2 < x1): 0
    ])
    assert largest_box_index(boxes) == 1
    # ties: the first one
    tie = torch.tensor([[0.0, 0.0, 15.0, 25.0], [0.0, 0.0, 25.0, 15.0]])
    assert largest_box_index(tie) == 0
    with pytest.raises(ValueError, match='no box'):
        largest_box_index(torch.zeros(0, 4))


def test_bce_by_hand():
    z = torch.tensor([2.0, -1.0, 0.5])
    # label 0: BCE(2, 1) + BCE(-1, 0) + BCE(0.5, 0)
    one = softplus(-2) + softplus(-1) + softplus(0.5)
    assert one == pytest.approx(1.4142666827413022, abs=1e-12)
    assert image_label_bce(z, torch.tensor([0])).item() == \
        pytest.approx(1.4142667, abs=1e-6)
    # labels {0, 2}: one one-hot target per label, averaged over labels;
    # label 2: BCE(2, 0) + BCE(-1, 0) + BCE(0.5, 1)
    two = softplus(2) + softplus(-1) + softplus(-0.5)
    assert two == pytest.approx(2.914266682741302, abs=1e-12)
    got = image_label_bce(z, torch.tensor([2, 0, 2])).item()  # repeats once
    assert got == pytest.approx(2.1642667, abs=1e-6)
    with pytest.raises(ValueError, match='out of range'):
        image_label_bce(z, torch.tensor([3]))
    with pytest.raises(ValueError, match='at least one label'):
        image_label_bce(z, torch.tensor([], dtype=torch.long))


def test_ce_by_hand():
    z = torch.tensor([2.0, -1.0, 0.5])
    lse = math.log(math.exp(2.0) + math.exp(-1.0) + math.exp(0.5))
    assert lse == pytest.approx(2.241311296657157, abs=1e-12)
    assert image_label_ce(z, torch.tensor([0])).item() == \
        pytest.approx(lse - 2.0, abs=1e-6)
    # labels {0, 2} (repeats count once): mean of the two terms
    got = image_label_ce(z, torch.tensor([2, 0, 2])).item()
    assert got == pytest.approx(((lse - 2.0) + (lse - 0.5)) / 2, abs=1e-6)
    z64 = z.double().requires_grad_()
    image_label_ce(z64, torch.tensor([1])).backward()
    p = torch.softmax(z.double(), 0)
    assert torch.allclose(z64.grad, p - torch.tensor([0., 1., 0.]).double())
    with pytest.raises(ValueError, match='out of range'):
        image_label_ce(z, torch.tensor([3]))
    with pytest.raises(ValueError, match='at least one label'):
        image_label_ce(z, torch.tensor([], dtype=torch.long))


def test_ce_form_on_the_largest_proposal_uses_every_column():
    h = head(loss_form='ce')
    x = feats(1)
    samples = [make_sample([[0, 0, 64, 64]], [1], image_level=True)]
    props = [InstanceData(bboxes=torch.tensor(
        [[2, 2, 20, 20], [10, 8, 50, 40]], dtype=torch.float32))]
    out = h.image_level_loss(x, props, samples, [], [0])
    with torch.no_grad():
        roi = bbox2roi([torch.tensor([[10.0, 8.0, 50.0, 40.0]])])
        z = h.bbox_head(h.bbox_roi_extractor(x[:4], roi))[0][0]
    assert z.numel() == NUM_CLASSES + 1   # background column included
    want = 0.1 * -torch.log_softmax(z, 0)[1].item()
    assert out['loss_image_label'].item() == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match='loss_form'):
        head(loss_form='focal')
    # the background column is a BCE-form option: not silently ignored
    with pytest.raises(ValueError, match='background_column=True'):
        head(background_column=True)


def _expected(h, x, j, box, labels, columns):
    """The loss term of sample j by hand: its box's logits from the
    extractor and the bbox head, then the one-hot BCE sums."""
    with torch.no_grad():
        roi = bbox2roi([torch.tensor([box])])
        roi[:, 0] = j
        z = h.bbox_head(h.bbox_roi_extractor(x[:4], roi))[0][0].tolist()
    z = z[:columns]
    terms = []
    for lab in sorted(set(labels)):
        terms.append(sum(softplus(-v) if c == lab else softplus(v)
                         for c, v in enumerate(z)))
    return sum(terms) / len(terms)


def test_loss_on_the_largest_proposal_by_hand():
    assert head().loss_form == 'ce'   # the default, for softmax heads
    h = head(loss_form='bce')
    assert h.image_level_proposals == 'rpn'
    assert h.image_loss_weight == 0.1
    x = feats(3)
    samples = [make_sample([[0, 0, 64, 64]], [1], image_level=True),
               make_sample([[0, 0, 64, 64]] * 2, [0, 2], image_level=True),
               make_sample([[0, 0, 64, 64]], [2], image_level=True)]
    p0 = [[2, 2, 20, 20], [10, 8, 50, 40], [0, 0, 30, 30]]  # 1 is largest
    p1 = [[4, 4, 60, 30], [20, 20, 40, 40]]                  # 0 is largest
    props = [InstanceData(bboxes=torch.tensor(p, dtype=torch.float32))
             for p in (p0, p1)] + [InstanceData(bboxes=torch.zeros(0, 4))]
    out = h.image_level_loss(x, props, samples, [], [0, 1, 2])
    assert set(out) == {'loss_image_label'}
    want = 0.1 * (_expected(h, x, 0, p0[1], [1], NUM_CLASSES) +
                  _expected(h, x, 1, p1[0], [0, 2], NUM_CLASSES)) / 3
    assert out['loss_image_label'].item() == pytest.approx(want, rel=1e-5)
    out['loss_image_label'].backward()
    assert x[0].grad is not None and float(x[0].grad.abs().sum()) > 0
    # dropping a smaller proposal changes nothing, the largest does
    props[0] = InstanceData(bboxes=torch.tensor([p0[1]], dtype=torch.float32))
    same = h.image_level_loss(x, props, samples, [], [0, 1, 2])
    assert same['loss_image_label'].item() == pytest.approx(want, rel=1e-6)
    props[0] = InstanceData(bboxes=torch.tensor([p0[0]], dtype=torch.float32))
    moved = h.image_level_loss(x, props, samples, [], [0, 1, 2])
    assert moved['loss_image_label'].item() != pytest.approx(want, rel=1e-6)


def test_background_column_and_weight():
    h = head(image_loss_weight=0.5, background_column=True, loss_form='bce')
    x = feats(1)
    samples = [make_sample([[0, 0, 64, 64]], [1], image_level=True)]
    box = [6, 6, 40, 50]
    props = [InstanceData(bboxes=torch.tensor([box], dtype=torch.float32))]
    out = h.image_level_loss(x, props, samples, [], [0])
    want = 0.5 * _expected(h, x, 0, box, [1], NUM_CLASSES + 1)
    assert out['loss_image_label'].item() == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match='background_column=True'):
        h.label_logits(torch.zeros(2, NUM_CLASSES + 3))
    with pytest.raises(ValueError, match='image_loss_weight'):
        head(image_loss_weight=-1.0)


def test_key_present_in_every_batch():
    h = head()
    x = feats(2)
    det = make_sample([[8, 8, 36, 40], [30, 20, 60, 50]], [0, 2])
    props = [InstanceData(bboxes=torch.tensor([[8., 8., 36., 40.],
                                               [0., 0., 20., 20.]]))
             for _ in range(2)]
    losses = h.loss(x, props, [det, det])
    assert 'loss_image_label' in losses
    zero = losses['loss_image_label']
    assert zero.item() == 0.0 and zero.requires_grad
    assert {'loss_cls', 'loss_bbox', 'acc', 'loss_mask'} <= set(losses)
    # image-level only: the detection keys are zeros with graph
    img = make_sample([[0, 0, 64, 64]], [1], image_level=True)
    props = [InstanceData(bboxes=torch.tensor([[2., 2., 50., 60.]]))] * 2
    losses = h.loss(x, props, [img, img])
    assert set(losses) == {'loss_cls', 'loss_bbox', 'acc', 'loss_mask',
                           'loss_image_label'}
    assert losses['loss_cls'].item() == 0.0
    assert losses['loss_image_label'].item() > 0


def test_dict_returning_cls_loss_keeps_its_keys_in_empty_batches():
    # SeesawLoss returns {loss_cls_classes, loss_cls_objectness} and logs
    # two accuracies: an image-level-only batch repeats those keys as zeros
    h = head(bbox_head=dict(
        tiny_mask_rcnn_cfg()['roi_head']['bbox_head'],
        loss_cls=dict(type='SeesawLoss', num_classes=NUM_CLASSES)))
    x = feats(2)
    det = make_sample([[8, 8, 36, 40]], [0])
    img = make_sample([[0, 0, 64, 64]], [1], image_level=True)

    def props():
        return [InstanceData(bboxes=torch.tensor([[8., 8., 36., 40.],
                                                  [0., 0., 20., 20.]]))
                for _ in range(2)]

    mixed = h.loss(x, props(), [det, img])
    assert {'loss_cls_classes', 'acc_classes', 'acc_objectness'} <= set(mixed)
    only_img = h.loss(x, props(), [img, img])
    assert set(mixed) <= set(only_img)
    assert all(float(only_img[k]) == 0.0 for k in mixed
               if k != 'loss_image_label')
