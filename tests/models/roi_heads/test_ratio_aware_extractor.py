"""Ratio-aware mask-proposal assignment (issue 16 item 4): the level mapping
on hand-made boxes and ratios, the ground-truth ratios, and the mask branch
of RatioAwareRoIHead in training (ratios from the matched ground truth) and
at inference (no ratio: MMDetection's mapping)."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

import mmdet
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks, PolygonMasks

import longtail_plugin  # noqa: F401  (registers the modules)
from longtail_plugin.models.roi_heads import (RatioAwareRoIExtractor,
                                              RatioAwareRoIHead,
                                              mask_box_area_ratios,
                                              ratio_aware_levels)

MASK_RCNN = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs',
                     '_base_', 'models', 'mask-rcnn_r50_fpn.py')


def rois(*boxes):
    return torch.tensor([[0., *b] for b in boxes])


def extractor(**kw):
    cfg = dict(type='RatioAwareRoIExtractor',
               roi_layer=dict(type='RoIAlign', output_size=7,
                              sampling_ratio=0),
               out_channels=4, featmap_strides=[4, 8, 16, 32])
    cfg.update(kw)
    return MODELS.build(cfg)


# (box, ratio, level) with finest_scale 56, 4 levels, gamma 1, min 1/16:
# level = floor(log2(sqrt(w h) sqrt(r) / 56)), clamped to [0, 3]
HAND = [
    ((0, 0, 300, 300), 1.0, 2),     # 300 / 56 = 5.36 -> 2.42
    ((0, 0, 300, 300), 0.25, 1),    # 150 / 56 = 2.68 -> 1.42
    ((0, 0, 300, 300), 0.5, 1),     # 212.1 / 56 = 3.79 -> 1.92
    ((0, 0, 300, 300), 1 / 16, 0),  # 75 / 56 = 1.34 -> 0.42
    ((0, 0, 1000, 250), 1.0, 3),    # 500 / 56 = 8.93 -> 3.16
    ((0, 0, 1000, 250), 0.25, 2),   # 250 / 56 = 4.46 -> 2.16
    ((0, 0, 1000, 250), 0.03, 1),   # r -> 1/16: 125 / 56 = 2.23 -> 1.16
    ((0, 0, 2000, 2000), 0.25, 3),  # 1000 / 56 = 17.9 -> 4.16, clamped
    ((10, 10, 50, 50), 1.0, 0),     # 40 / 56 -> -0.49, clamped
]


def test_level_mapping_hand_computed():
    r = rois(*[b for b, _, _ in HAND])
    ratios = torch.tensor([q for _, q, _ in HAND])
    want = [lvl for _, _, lvl in HAND]
    assert ratio_aware_levels(r, 4, 56, ratios).tolist() == want
    ext = extractor()
    ext._ratios = ratios
    assert ext.map_roi_levels(r, 4).tolist() == want


def test_gamma_and_defaults():
    r = rois((0, 0, 300, 300), (0, 0, 300, 300))
    q = torch.tensor([0.25, 1 / 16])
    # gamma 0.5: sqrt(300^2 * r^0.5): 212.1 -> 1.92 (1); 150 -> 1.42 (1)
    assert ratio_aware_levels(r, 4, 56, q, gamma=0.5).tolist() == [1, 1]
    # gamma 0: the ratio is ignored
    assert ratio_aware_levels(r, 4, 56, q, gamma=0.0).tolist() == [2, 2]
    # min_ratio 1/4 bounds the shift to one level
    assert ratio_aware_levels(r, 4, 56, q, min_ratio=0.25).tolist() == [1, 1]
    # no ratio (inference): MMDetection's rule, exactly
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    boxes = rois(*[b for b, _, _ in HAND])
    plain = SingleRoIExtractor.map_roi_levels(extractor(), boxes, 4)
    assert extractor().map_roi_levels(boxes, 4).tolist() == plain.tolist()
    # a constant default ratio, e.g. 1/4: one level finer than plain
    assert extractor(default_ratio=0.25).map_roi_levels(
        rois((0, 0, 300, 300)), 4).tolist() == [1]


def test_forward_pools_the_chosen_level_and_checks_inputs():
    torch.manual_seed(0)
    ext = extractor()
    feats = tuple(torch.randn(1, 4, 512 // s, 512 // s)
                  for s in (4, 8, 16, 32))
    r = rois((0, 0, 300, 300), (0, 0, 300, 300))
    out = ext(feats, r, ratios=torch.tensor([1.0, 0.25]))
    assert ext._ratios is None  # nothing kept after the call
    assert torch.allclose(out[0], ext.roi_layers[2](feats[2], r[:1])[0])
    assert torch.allclose(out[1], ext.roi_layers[1](feats[1], r[1:])[0])
    assert not torch.allclose(out[0], out[1])
    with pytest.raises(ValueError, match='one value per RoI'):
        ext(feats, r, ratios=torch.tensor([1.0]))
    with pytest.raises(ValueError, match='min_ratio must be in'):
        extractor(min_ratio=0.0)
    with pytest.raises(ValueError, match='default_ratio must be in'):
        extractor(default_ratio=0.01)
    with pytest.raises(ValueError, match='gamma must be'):
        extractor(gamma=-1.0)


def test_mask_box_area_ratios_bitmap_polygon_tensor():
    m = np.zeros((2, 40, 40), dtype=np.uint8)
    m[0, 0:20, 0:10] = 1           # fills its box [0, 0, 10, 20]
    m[1, 0:5, 0:10] = 1            # 50 px in a 10 x 20 box: 0.25
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 10., 20.],
                                           [0., 0., 10., 20.]]),
                      masks=BitmapMasks(m, 40, 40))
    assert mask_box_area_ratios(gt).tolist() == [1.0, 0.25]
    gt.masks = torch.from_numpy(m)
    assert mask_box_area_ratios(gt).tolist() == [1.0, 0.25]
    # a right triangle is half its box
    tri = [np.array([0., 0., 10., 0., 0., 20.])]
    gt.masks = PolygonMasks([tri, tri], 40, 40)
    assert mask_box_area_ratios(gt).tolist() == [0.5, 0.5]


def roi_head(finest_scale=8, **kw):
    cfg = Config.fromfile(MASK_RCNN)
    head = cfg.model.roi_head
    head.type = 'RatioAwareRoIHead'
    head.update(kw)
    head.bbox_roi_extractor.out_channels = 8
    head.bbox_head.update(in_channels=8, fc_out_channels=16, num_classes=3)
    head.mask_roi_extractor.update(type='RatioAwareRoIExtractor',
                                   out_channels=8, finest_scale=finest_scale)
    head.mask_head.update(in_channels=8, conv_out_channels=8, num_convs=1,
                          num_classes=3)
    head.train_cfg = cfg.model.train_cfg.rcnn
    head.test_cfg = cfg.model.test_cfg.rcnn
    return MODELS.build(head)


def sample(size=128):
    """A filled square (ratio 1) and a thin diagonal bar (ratio ~0.1)."""
    masks = np.zeros((2, size, size), dtype=np.uint8)
    masks[0, 10:50, 10:50] = 1
    for i in range(60, 120):
        masks[1, i, max(60, i - 3):min(120, i + 3)] = 1
    gt = InstanceData(
        bboxes=torch.tensor([[10., 10., 50., 50.], [60., 60., 120., 120.]]),
        labels=torch.tensor([0, 2]),
        masks=BitmapMasks(masks, size, size))
    ds = DetDataSample(metainfo=dict(
        img_shape=(size, size), ori_shape=(size, size),
        batch_input_shape=(size, size), pad_shape=(size, size),
        scale_factor=(1.0, 1.0)))
    ds.gt_instances = gt
    return ds


def test_head_needs_the_ratio_aware_extractor():
    cfg = Config.fromfile(MASK_RCNN)
    head = cfg.model.roi_head
    head.type = 'RatioAwareRoIHead'
    with pytest.raises(ValueError, match="'RatioAwareRoIExtractor'.*"
                       "'SingleRoIExtractor'"):
        MODELS.build(head)
    with pytest.raises(ValueError, match="test_ratio must be one of"):
        roi_head(test_ratio='gt')


def spy_levels(head):
    """Record (rois, ratios, levels) of every mask-extractor call."""
    ext = head.mask_roi_extractor
    seen = []
    orig = ext.map_roi_levels

    def spy(r, n):
        lv = orig(r, n)
        seen.append((r.clone(), None if ext._ratios is None else
                     ext._ratios.clone(), lv))
        return lv

    ext.map_roi_levels = spy
    return seen


def test_mask_branch_train_uses_gt_ratios_and_inference_plain():
    torch.manual_seed(0)
    head = roi_head()
    assert isinstance(head, RatioAwareRoIHead)
    assert isinstance(head.mask_roi_extractor, RatioAwareRoIExtractor)
    seen = spy_levels(head)
    feats = tuple(torch.randn(1, 8, 128 // s, 128 // s, requires_grad=True)
                  for s in (4, 8, 16, 32))
    ds = sample()
    proposals = InstanceData(bboxes=ds.gt_instances.bboxes.clone(),
                             scores=torch.ones(2))
    losses = head.loss(feats, [proposals], [ds])
    assert torch.isfinite(losses['loss_mask'])
    losses['loss_mask'].backward()
    assert head.mask_head.conv_logits.weight.grad.abs().sum() > 0

    rs, ratios, lv = seen[-1]
    gt_ratio = mask_box_area_ratios(ds.gt_instances)
    assert gt_ratio[0] == 1.0 and 0.05 < gt_ratio[1] < 0.15
    thin = (rs[:, 1:] == ds.gt_instances.bboxes[1]).all(1)
    square = (rs[:, 1:] == ds.gt_instances.bboxes[0]).all(1)
    assert thin.any() and square.any() and (thin | square).all()
    # each positive carries its ground truth's ratio ...
    assert torch.equal(ratios[thin], gt_ratio[1].expand(int(thin.sum())))
    assert torch.equal(ratios[square], torch.ones(int(square.sum())))
    # ... which moves the thin bar from level 2 (box 60 x 60, 60 / 8 = 7.5)
    # to level 1 (60 * sqrt(r) / 8 in [2, 4)); the square stays at level 2
    assert lv[square].tolist() == [2] * int(square.sum())
    assert lv[thin].tolist() == [1] * int(thin.sum())

    # inference: no ground truth, no ratio -> box-scale mapping
    seen.clear()
    head.eval()
    head.test_cfg.score_thr = 0.0  # keep every detection of the random head
    with torch.no_grad():
        res = head.predict(feats, [InstanceData(
            bboxes=ds.gt_instances.bboxes.clone(), scores=torch.ones(2))],
            [ds], rescale=False)
    assert len(res[0]) > 0 and res[0].masks.shape[1:] == (128, 128)
    assert seen
    for r_, q, lv in seen:
        assert q is None
        assert lv.tolist() == ratio_aware_levels(r_, 4, 8).tolist()


def test_inference_with_predicted_mask_ratios():
    """test_ratio='predicted_mask': a first pass at the box-scale level, a
    second at the level of the predicted mask's ratio. With the mask logits
    forced to -5 (probability 0.007 < 0.5 everywhere) the predicted ratio
    is 0, clamped to 1/16: boxes 40 x 40 and 60 x 60 (finest scale 8) go
    from level 2 (5 -> 2.32, 7.5 -> 2.91) to level 0 (1.25 -> 0.32,
    1.875 -> 0.91)."""
    torch.manual_seed(0)
    head = roi_head(test_ratio='predicted_mask')
    head.test_cfg.score_thr = 0.0
    with torch.no_grad():
        head.mask_head.conv_logits.weight.zero_()
        head.mask_head.conv_logits.bias.fill_(-5.0)
    seen = spy_levels(head)
    head.eval()
    ds = sample()
    feats = tuple(torch.randn(1, 8, 128 // s, 128 // s)
                  for s in (4, 8, 16, 32))
    det = InstanceData(bboxes=ds.gt_instances.bboxes.clone(),
                       labels=torch.tensor([0, 2]), scores=torch.ones(2))
    with torch.no_grad():
        ratios = head.predicted_mask_ratios(feats, [det])
        assert ratios.tolist() == [0.0, 0.0]
        seen.clear()
        res = head.predict_mask(feats, [ds.metainfo], [det.clone()])
    assert len(res[0]) == 2
    (r1, q1, lv1), (r2, q2, lv2) = seen
    assert q1 is None and lv1.tolist() == [2, 2]
    assert q2.tolist() == [0.0, 0.0] and lv2.tolist() == [0, 0]
    assert head._test_ratios is None
