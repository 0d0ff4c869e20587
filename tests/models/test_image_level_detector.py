"""ImageLevelTwoStageDetector + ImageLevelRoIHead on a tiny Mask R-CNN:
the same loss keys for mixed, detection-only and image-level-only batches,
no RPN loss from image-level samples, no mask target for pasted instances,
and the proposal sources 'rpn' / 'given'."""
import copy

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks

import longtail_plugin  # noqa: F401  (registers the modules)
from image_level_cases import SIZE, make_sample, rect_masks, tiny_mask_rcnn_cfg
from longtail_plugin.models.detectors import ImageLevelTwoStageDetector
from longtail_plugin.models.roi_heads import (ImageLabelRoIHead,
                                              ImageLevelRoIHead)
from longtail_plugin.models.utils import is_image_level, split_image_level

KEYS = {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'acc', 'loss_bbox',
        'loss_mask', 'loss_image_label'}


def build(**roi_kw) -> ImageLevelTwoStageDetector:
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(tiny_mask_rcnn_cfg(**roi_kw))
    model.init_weights()
    model.train()
    return model


def det_sample(shift: float = 0.0, paste_source=None, masks=None):
    boxes = [[8 + shift, 8, 36 + shift, 40], [30, 20, 60, 50]]
    return make_sample(boxes, [0, 2], masks=masks, paste_source=paste_source)


def img_sample(box=(4, 4, 60, 60), labels=(1, )):
    return make_sample([list(box)] * len(labels), list(labels),
                       image_level=True)


def inputs(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, SIZE, SIZE, generator=g)


def run(model, samples, seed: int = 0, images=None) -> dict:
    torch.manual_seed(seed)
    images = inputs(len(samples)) if images is None else images
    return model.loss(images, samples)


def total(losses: dict) -> torch.Tensor:
    out = 0
    for k, v in losses.items():
        if 'loss' in k:
            out = out + (sum(x.sum() for x in v) if isinstance(v, list)
                         else v.sum())
    return out


def value(v) -> float:
    return float(sum(x.sum() for x in v)) if isinstance(v, list) \
        else float(v.sum())


def test_flag_helpers():
    samples = [det_sample(), img_sample(), det_sample(), img_sample()]
    assert [is_image_level(s) for s in samples] == [False, True, False, True]
    assert split_image_level(samples) == ([0, 2], [1, 3])
    assert split_image_level([]) == ([], [])


@pytest.mark.parametrize('kind', ['mixed', 'det', 'img'])
def test_same_keys_finite_backward(kind):
    model = build()
    samples = dict(mixed=[det_sample(), img_sample(), det_sample()],
                   det=[det_sample(), det_sample()],
                   img=[img_sample(), img_sample(labels=(0, 2))])[kind]
    losses = run(model, samples)
    assert set(losses) == KEYS
    for k, v in losses.items():
        assert np.isfinite(value(v)), k
    total(losses).backward()
    rpn_grads = [p.grad for p in model.rpn_head.parameters()]
    assert all(g is not None for g in rpn_grads)
    head_grads = [p.grad for p in model.roi_head.parameters()]
    assert all(g is not None for g in head_grads)  # every param in graph
    rpn_norm = sum(float(g.abs().sum()) for g in rpn_grads)
    if kind == 'img':
        assert value(losses['loss_rpn_cls']) == 0.0
        assert value(losses['loss_rpn_bbox']) == 0.0
        for k in ('loss_cls', 'loss_bbox', 'loss_mask', 'acc'):
            assert value(losses[k]) == 0.0
        assert value(losses['loss_image_label']) > 0
        assert rpn_norm == 0.0
        # the image-label loss reaches the backbone
        assert float(model.backbone.conv1.weight.grad.abs().sum()) > 0
    else:
        assert rpn_norm > 0
        assert value(losses['loss_cls']) > 0
        assert value(losses['loss_mask']) > 0
    if kind == 'det':
        assert value(losses['loss_image_label']) == 0.0


def test_image_level_samples_give_no_rpn_loss():
    model = build()
    base = [det_sample(), img_sample(), det_sample()]
    ref = run(model, copy.deepcopy(base))
    moved = copy.deepcopy(base)
    moved[1] = img_sample(box=(20, 10, 44, 30), labels=(2, ))
    out = run(model, moved)
    for k in ('loss_rpn_cls', 'loss_rpn_bbox'):
        assert value(out[k]) == value(ref[k])
    # and the RPN loss equals the one of the detection samples alone
    # (backbone BN in eval mode: no batch statistics)
    alone = run(model, [base[0], base[2]], images=inputs(3)[[0, 2]])
    for k in ('loss_rpn_cls', 'loss_rpn_bbox'):
        assert value(alone[k]) == pytest.approx(value(ref[k]), rel=1e-6)
    # control: moving a detection box does change the RPN loss
    shifted = copy.deepcopy(base)
    shifted[0] = det_sample(shift=12.0)
    out = run(model, shifted)
    assert value(out['loss_rpn_bbox']) != value(ref['loss_rpn_bbox'])


def _ellipse_masks():
    m = rect_masks([[8, 8, 36, 40], [30, 20, 60, 50]]).masks.copy()
    yy, xx = np.mgrid[:SIZE, :SIZE]
    m[0] = ((xx - 22) / 14.0) ** 2 + ((yy - 24) / 16.0) ** 2 <= 1
    return m


@pytest.mark.parametrize('with_share', [False, True])
def test_pasted_instances_get_no_mask_target(with_share):
    kw = {}
    if with_share:  # the mask head on the bbox RoI features (7 x 7 pool)
        kw = dict(mask_roi_extractor=None)
    model = build(**kw)
    assert model.roi_head.share_roi_extractor == with_share
    m = _ellipse_masks()
    other = m.copy()
    other[1] = 0
    other[1, 20:35, 30:45] = 1  # not the rectangle any more

    def batch(masks, source):
        return [det_sample(masks=BitmapMasks(masks, SIZE, SIZE),
                           paste_source=source), img_sample()]

    ref = run(model, batch(m, [-1, 1]))['loss_mask']
    out = run(model, batch(other, [-1, 1]))['loss_mask']
    assert float(out) == float(ref) > 0
    # control: as an original instance its mask is supervised
    ref = run(model, batch(m, [-1, -1]))['loss_mask']
    out = run(model, batch(other, [-1, -1]))['loss_mask']
    assert float(out) != float(ref)
    # every instance pasted: no mask target at all, a zero with graph
    out = run(model, batch(m, [1, 1]))
    assert float(out['loss_mask']) == 0.0 and out['loss_mask'].requires_grad
    assert float(out['loss_cls']) > 0  # the box branch still trains


def test_given_proposals_use_the_region_boxes():
    model = build()
    # an instance attribute switches the source of this model only
    model.roi_head.image_level_proposals = 'given'
    samples = [det_sample(), img_sample(box=(10, 12, 42, 50), labels=(1, ))]
    seen = {}
    orig = model.roi_head.image_level_loss

    def spy(x, rpn_results_list, *args):
        seen['boxes'] = rpn_results_list[1].bboxes.clone()
        return orig(x, rpn_results_list, *args)

    model.roi_head.image_level_loss = spy
    run(model, samples)
    assert seen['boxes'].tolist() == [[10.0, 12.0, 42.0, 50.0]]
    model.roi_head.image_level_proposals = 'rpn'
    run(model, samples)
    assert seen['boxes'].shape[0] > 1  # the RPN's proposals
    model.roi_head.image_level_proposals = 'nope'
    with pytest.raises(ValueError, match='image_level_proposals'):
        run(model, samples)


def test_errors_name_the_config_key():
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(
            tiny_mask_rcnn_cfg(roi_head_type='StandardRoIHead'))
    model.train()
    # detection-only batches train as TwoStageDetector
    assert 'loss_image_label' not in run(model, [det_sample()])
    with pytest.raises(TypeError, match='roi_head.type'):
        run(model, [det_sample(), img_sample()])


class _Bare(ImageLevelRoIHead):
    """Not registered: the abstract image_level_loss."""


def test_base_head_is_abstract_and_lists_its_keys():
    cfg = tiny_mask_rcnn_cfg()
    roi = dict(cfg['roi_head'])
    roi.pop('type')
    head = _Bare(**roi, train_cfg=cfg['train_cfg']['rcnn'])
    assert head.image_level_proposals == 'given'
    assert head.detection_loss_keys() == ['loss_cls', 'loss_bbox', 'acc',
                                          'loss_mask']
    x = tuple(torch.randn(1, 16, SIZE // s, SIZE // s) for s in (4, 8, 16,
                                                                  32, 64))
    props = InstanceData(bboxes=torch.tensor([[4.0, 4.0, 60.0, 60.0]]))
    with pytest.raises(NotImplementedError, match='_Bare'):
        head.loss(x, [props], [img_sample()])
    zeros = head.detection_loss(x[:0], [], [])
    assert set(zeros) == set(head.detection_loss_keys())
    assert all(float(v) == 0.0 and v.requires_grad for v in zeros.values())
    assert isinstance(build().roi_head, ImageLabelRoIHead)
