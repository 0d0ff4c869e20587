"""RefineMask heads (mask head, SFM stage, RoI heads) on small channels."""
import copy

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks, PolygonMasks

import longtail_plugin  # noqa: F401  (registers the modules)
from longtail_plugin.models.roi_heads.refine_mask import (boundary_band,
                                                        merge_stage_logits)
from longtail_plugin.models.roi_heads.refine_mask.refine_mask_head import \
    union_of_masks

C = 16  # channels of the fake FPN
NUM_CLASSES = 3
IMG = 128


def mask_head_cfg(**kw):
    cfg = dict(
        type='RefineMaskHead',
        in_channels=C,
        conv_out_channels=C,
        semantic_channels=C,
        stage_channels=(16, 8, 8),
        stage_num_classes=(NUM_CLASSES, ) * 4)
    cfg.update(kw)
    return cfg


def roi_head_cfg(mask_head=None, **kw):
    cfg = dict(
        type='RefineMaskRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=C,
            featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='Shared2FCBBoxHead',
            in_channels=C,
            fc_out_channels=32,
            roi_feat_size=7,
            num_classes=NUM_CLASSES,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0),
            loss_bbox=dict(type='L1Loss', loss_weight=2.0)),
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=C,
            featmap_strides=[4, 8, 16, 32]),
        mask_head=mask_head or mask_head_cfg(),
        train_cfg=ConfigDict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=32,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=True),
            mask_size=28,
            pos_weight=-1,
            debug=False),
        test_cfg=ConfigDict(
            score_thr=0.0,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=20,
            mask_thr_binary=0.5))
    cfg.update(kw)
    return cfg


def _ellipse(box, h=IMG, w=IMG):
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 -
                                                                 y0) / 2
    return (((xx - cx) / rx)**2 + ((yy - cy) / ry)**2 <= 1).astype(np.uint8)


BOXES = [
    [[8., 10., 70., 60.], [60., 50., 120., 124.]],
    [[20., 20., 100., 90.], [4., 80., 50., 120.]],
]
LABELS = [[0, 2], [1, 0]]


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    # the CI box has 2 cores shared with other jobs: one thread is ~10x
    # faster than two contending ones for these tiny tensors
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_inputs(seed=0, batch=2, mask_signal=0.0):
    """Random P2..P5 (2 images) and GT; ``mask_signal`` adds the union of the
    GT masks to 4 channels, as a trained backbone's features would carry."""
    g = torch.Generator().manual_seed(seed)
    x = tuple(
        torch.randn(batch, C, IMG // s, IMG // s, generator=g)
        for s in (4, 8, 16, 32))
    if mask_signal:
        union = torch.stack([
            torch.from_numpy(
                np.stack([_ellipse(b) for b in BOXES[i]]).any(0)).float()
            for i in range(batch)
        ])[:, None]
        for f in x:
            u = torch.nn.functional.interpolate(
                union, size=f.shape[-2:], mode='bilinear',
                align_corners=False)
            f[:, :4] += mask_signal * (u[:, 0:1] - 0.5)
    samples = []
    for i in range(batch):
        boxes = torch.tensor(BOXES[i])
        masks = BitmapMasks(
            np.stack([_ellipse(b) for b in BOXES[i]]), IMG, IMG)
        s = DetDataSample(
            metainfo=dict(
                img_shape=(IMG, IMG),
                ori_shape=(IMG, IMG),
                pad_shape=(IMG, IMG),
                batch_input_shape=(IMG, IMG),
                scale_factor=(1.0, 1.0)))
        s.gt_instances = InstanceData(
            bboxes=boxes, labels=torch.tensor(LABELS[i]), masks=masks)
        samples.append(s)
    return x, samples


def proposals(seed=0, batch=2):
    g = torch.Generator().manual_seed(seed + 100)
    out = []
    for i in range(batch):
        gt = torch.tensor(BOXES[i])
        jitter = gt.repeat(4, 1) + torch.randn(8, 4, generator=g) * 4
        out.append(InstanceData(bboxes=jitter.clamp(0, IMG)))
    return out


def rois_and_labels():
    boxes = [torch.tensor(b) for b in BOXES]
    rois = torch.cat(
        [torch.cat([torch.full((2, 1), float(i)), b], 1)
         for i, b in enumerate(boxes)])
    labels = torch.tensor([l for ls in LABELS for l in ls])
    return rois, labels


# ---------------------------------------------------------------------------
# modules and shapes
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('simple', [False, True])
def test_stage_shapes(simple):
    torch.manual_seed(0)
    if simple:
        head = MODELS.build(
            dict(
                type='SimpleRefineMaskHead',
                num_classes=NUM_CLASSES,
                in_channels=C,
                conv_out_channels=C,
                semantic_channels=8,
                stage_channels=(16, 8, 8)))
        assert head.stage_num_classes == [NUM_CLASSES] * 3 + [1]
        assert head.stage_loss_weights == [0.5, 0.75, 0.75, 1.0]
    else:
        head = MODELS.build(mask_head_cfg())
    head.init_weights()
    x, _ = make_inputs()
    rois, labels = rois_and_labels()
    feats = torch.randn(len(rois), C, 14, 14)
    preds, sem = head(feats, x[0], rois, labels)
    assert [tuple(p.shape) for p in preds] == [(4, 1, s, s)
                                               for s in (14, 28, 56, 112)]
    if simple:
        assert sem is None and head.loss_semantic is None
        assert head.stages[-1].upsample is False
    else:
        assert tuple(sem.shape) == (2, 1, IMG // 4, IMG // 4)
    assert all(torch.isfinite(p).all() for p in preds)
    merged = head.merge_predictions(preds)
    assert tuple(merged.shape) == (4, 1, 112, 112)
    # empty RoI set
    preds0, _ = head(feats[:0], x[0], rois[:0], labels[:0])
    assert [tuple(p.shape) for p in preds0] == [(0, 1, s, s)
                                                for s in (14, 28, 56, 112)]


def test_sfm_and_mbf_modules():
    mbf = MODELS.build(dict(type='MultiBranchFusion', channels=8,
                            global_context=True))
    assert tuple(mbf(torch.randn(3, 8, 14, 14)).shape) == (3, 8, 14, 14)
    sfm = MODELS.build(
        dict(
            type='SFMStage',
            in_channels=8,
            out_channels=6,
            semantic_in_channels=5,
            num_classes=NUM_CLASSES,
            roi_size=14))
    sem = sfm.prepare_semantic(torch.randn(2, 5, 32, 32))
    rois, labels = rois_and_labels()
    out, logits = sfm(
        torch.randn(4, 8, 14, 14), sem, rois, labels,
        torch.rand(2, 1, 32, 32))
    assert tuple(out.shape) == (4, 6, 28, 28)
    assert tuple(logits.shape) == (4, 1, 14, 14)
    # the logits are those of the RoI's class
    full = sfm.instance_logits(torch.ones(1, 8, 14, 14))
    one, lg = sfm(
        torch.ones(1, 8, 14, 14), sem, rois[:1], torch.tensor([2]),
        torch.rand(2, 1, 32, 32))
    assert torch.allclose(lg[0, 0], full[0, 2], atol=1e-5)


def test_merge_rule_hand_made():
    coarse = torch.full((1, 1, 8, 8), -5.0)
    coarse[..., 2:6, 2:6] = 5.0  # 4x4 square
    fine = torch.full((1, 1, 16, 16), 7.0)
    merged = merge_stage_logits(coarse, fine, width=1)[0, 0]
    band = boundary_band(coarse >= 0, 1)[0, 0]
    # band: rows/cols 1..6 minus the centre 3..4 (hand check)
    expected_band = torch.zeros(8, 8, dtype=torch.bool)
    expected_band[1:7, 1:7] = True
    expected_band[3:5, 3:5] = False
    assert torch.equal(band, expected_band)
    expected = torch.empty(16, 16)
    for r in range(16):
        for c in range(16):
            cr, cc = r // 2, c // 2
            if expected_band[cr, cc]:
                expected[r, c] = 7.0  # finer logits inside the band
            elif 3 <= cr <= 4 and 3 <= cc <= 4:
                expected[r, c] = 5.0  # upsampled coarse (inside)
            else:
                expected[r, c] = -5.0  # upsampled coarse (outside)
    assert torch.equal(merged, expected)
    # the 14x14 output is dropped at inference
    head = MODELS.build(mask_head_cfg())
    preds = [
        torch.randn(1, 1, 14, 14),
        torch.nn.functional.interpolate(coarse, size=(28, 28)),
        torch.randn(1, 1, 56, 56),
        torch.randn(1, 1, 112, 112)
    ]
    a = head.merge_predictions(preds)
    preds[0] = torch.randn(1, 1, 14, 14) * 100
    assert torch.equal(a, head.merge_predictions(preds))


# ---------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------
def test_semantic_target_padding_and_union():
    head = MODELS.build(mask_head_cfg())
    m = np.zeros((2, 100, 96), np.uint8)
    m[0, 0:40, 0:40] = 1
    m[1, 60:100, 56:96] = 1  # touches the image's bottom-right corner
    gt = [InstanceData(masks=BitmapMasks(m, 100, 96))]
    sem_pred = torch.zeros(1, 1, 32, 32)  # padded batch 128 x 128
    tgt = head.get_semantic_targets(
        gt, sem_pred, [dict(batch_input_shape=(128, 128))])
    assert tuple(tgt.shape) == (1, 1, 32, 32)
    assert tgt[0, 0, :10, :10].all() and tgt[0, 0, 15:25, 14:24].all()
    assert tgt.sum() == 200  # 10x10 + 10x10 at stride 4
    assert not tgt[0, 0, 25:].any() and not tgt[0, 0, :, 24:].any()
    # polygons give the same union
    poly = PolygonMasks([[np.array([0, 0, 40, 0, 40, 40, 0, 40.])],
                         [np.array([56, 60, 96, 60, 96, 100, 56, 100.])]],
                        100, 96)
    assert (union_of_masks(poly) != m.any(0)).mean() < 0.02
    with pytest.raises(ValueError):
        head.get_semantic_targets(gt, sem_pred,
                                  [dict(batch_input_shape=(64, 64))])


def test_stage_targets_bitmap_and_polygon():
    head = MODELS.build(mask_head_cfg())

    class Res:  # the fields get_targets reads
        pos_priors = torch.tensor([[10., 10., 50., 50.], [0., 0., 64., 64.]])
        pos_assigned_gt_inds = torch.tensor([0, 0])

    bm = np.zeros((1, 64, 64), np.uint8)
    bm[0, 20:40, 20:40] = 1
    poly = PolygonMasks([[np.array([20, 20, 40, 20, 40, 40, 20, 40.])]], 64,
                        64)
    t_bm = head.get_targets([Res], [InstanceData(masks=BitmapMasks(
        bm, 64, 64))])
    t_pl = head.get_targets([Res], [InstanceData(masks=poly)])
    for s, a, b in zip((14, 28, 56, 112), t_bm, t_pl):
        assert tuple(a.shape) == (2, s, s) == tuple(b.shape)
        assert (a != b).float().mean() < 0.06
    # RoI [0, 64] at 112: the square [20, 40) covers 35 of 112 px per side
    assert abs(t_bm[3][1].sum().item() - 35 * 35) < 2 * 35 * 2


# ---------------------------------------------------------------------------
# RoI head: training, inference
# ---------------------------------------------------------------------------
def build_roi_head(**kw):
    head = MODELS.build(roi_head_cfg(**kw))
    head.init_weights()
    return head


def test_roi_head_training_loss_falls():
    torch.manual_seed(0)
    cfg = roi_head_cfg()
    cfg['train_cfg']['sampler']['num'] = 8  # <= 4 positive RoIs per image
    head = MODELS.build(cfg)
    head.init_weights()
    head.train()
    x, samples = make_inputs(mask_signal=3.0)
    opt = torch.optim.SGD(head.parameters(), lr=0.02, momentum=0.9)
    hist = []
    # 40 SGD steps (lr 0.02, as the configs); over seeds 0-4 the ratio
    # last-5 / first-5 ranged 0.47-0.75
    for step in range(40):
        losses = head.loss(x, proposals(step), samples)
        assert {'loss_instance', 'loss_semantic', 'bce_112'} <= set(losses)
        total = sum(v for k, v in losses.items() if 'loss' in k)
        opt.zero_grad()
        total.backward()
        opt.step()
        hist.append(losses['loss_instance'].item())
    assert np.isfinite(hist).all()
    assert np.mean(hist[-5:]) < 0.8 * np.mean(hist[:5]), hist


def test_nonfinite_loss_raises():
    head = build_roi_head()
    x, samples = make_inputs()
    with torch.no_grad():
        head.mask_head.final_logits.weight.fill_(float('nan'))
    with pytest.raises(FloatingPointError, match='stage 3'):
        head.loss(x, proposals(), samples)
    head.mask_head.check_finite = False
    losses = head.loss(x, proposals(), samples)
    assert not torch.isfinite(losses['loss_instance'])


def _det_results(batch=2):
    out = []
    for i in range(batch):
        out.append(
            InstanceData(
                bboxes=torch.tensor(BOXES[i]) + 1.5,
                labels=torch.tensor(LABELS[i]),
                scores=torch.tensor([0.9, 0.8])))
    return out


def test_batched_inference_equals_one_by_one_and_chunks():
    torch.manual_seed(0)
    head = build_roi_head(mask_chunk_size=3)
    head.eval()
    x, samples = make_inputs()
    metas = [s.metainfo for s in samples]
    with torch.no_grad():
        batched = head.predict_mask(x, metas, _det_results())
        single = [
            head.predict_mask(
                tuple(f[i:i + 1] for f in x), [metas[i]],
                [_det_results()[i]])[0] for i in range(2)
        ]
        head.mask_chunk_size = None
        unchunked = head.predict_mask(x, metas, _det_results())
    for b, s, u in zip(batched, single, unchunked):
        assert b.masks.shape == (2, IMG, IMG) and b.masks.dtype == torch.bool
        assert torch.equal(b.masks, s.masks)
        assert torch.equal(b.masks, u.masks)
    # full predict path (bbox + mask) and tensor-mode forward run
    with torch.no_grad():
        res = head.predict(x, proposals(), samples, rescale=True)
        out = head.forward(x, proposals())
    assert res[0].masks.shape[1:] == (IMG, IMG)
    assert tuple(out[-1].shape[1:]) == (1, 112, 112)


def test_bf16_autocast_cpu_finite():
    torch.manual_seed(0)
    head = build_roi_head()
    x, samples = make_inputs()
    metas = [s.metainfo for s in samples]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = head.loss(x, proposals(), samples)
        assert torch.isfinite(losses['loss_instance'])
        xb = tuple(f.bfloat16() for f in x)
        head.eval()
        with torch.no_grad():
            res = head.predict_mask(xb, metas, _det_results())
            rois, labels = rois_and_labels()
            logits = head._refine_mask_logits(head.mask_head,
                                              head.mask_roi_extractor, xb,
                                              rois, labels)
    assert torch.isfinite(logits.float()).all()
    assert res[0].masks.shape == (2, IMG, IMG)


def test_cascade_roi_head_loss_and_predict():
    torch.manual_seed(0)
    base = roi_head_cfg()
    rcnn = base['train_cfg']
    cfg = dict(
        type='RefineMaskCascadeRoIHead',
        num_stages=2,
        stage_loss_weights=[1, 0.5],
        bbox_roi_extractor=base['bbox_roi_extractor'],
        bbox_head=[
            dict(base['bbox_head'], reg_class_agnostic=True),
            dict(base['bbox_head'], reg_class_agnostic=True)
        ],
        mask_roi_extractor=base['mask_roi_extractor'],
        mask_head=mask_head_cfg(stage_channels=(8, 8, 4)),
        train_cfg=[rcnn, rcnn],
        test_cfg=base['test_cfg'])
    head = MODELS.build(cfg)
    head.init_weights()
    x, samples = make_inputs()
    losses = head.loss(x, proposals(), samples)
    assert {'s0.loss_instance', 's1.loss_semantic'} <= set(losses)
    head.eval()
    with torch.no_grad():
        res = head.predict_mask(x, [s.metainfo for s in samples],
                                _det_results())
    assert res[1].masks.shape == (2, IMG, IMG)


def test_configs_build_roi_heads():
    import glob
    import os.path as osp

    from mmengine.config import Config
    root = osp.join(osp.dirname(__file__), '..', '..', '..')
    files = sorted(glob.glob(osp.join(root, 'configs', 'refinemask', '*.py')))
    assert len(files) >= 10
    for f in files:
        cfg = Config.fromfile(f)
        assert cfg.custom_imports.imports == ['longtail_plugin']
        rh = cfg.model.roi_head
        rh.train_cfg = cfg.model.train_cfg.rcnn
        rh.test_cfg = cfg.model.test_cfg.rcnn
        head = MODELS.build(rh)
        mh = head.mask_head[-1] if isinstance(head.mask_head,
                                              torch.nn.ModuleList) else \
            head.mask_head
        assert mh.stage_sup_size == [14, 28, 56, 112]
        if 'lvis' in f:
            assert mh.stage_num_classes[-1] == 1
        if 'lvis-v1' in f:  # real LVIS: the LVIS test protocol
            assert rh.test_cfg.max_per_img == 300


def test_simple_variant_in_roi_head():
    torch.manual_seed(0)
    head = build_roi_head(
        mask_head=dict(
            type='SimpleRefineMaskHead',
            num_classes=NUM_CLASSES,
            in_channels=C,
            conv_out_channels=C,
            semantic_channels=8,
            stage_channels=(8, 8, 4)))
    x, samples = make_inputs()
    losses = head.loss(x, proposals(), samples)
    assert 'loss_semantic' not in losses and 'loss_instance' in losses
    losses['loss_instance'].backward()
    head.eval()
    with torch.no_grad():
        res = head.predict_mask(x, [s.metainfo for s in samples],
                                _det_results())
    assert res[0].masks.shape == (2, IMG, IMG)


def test_fusion_identity_global_term_and_semantic_in_only():
    """The authors' faster head: the RoI mean enters the branch sum as is,
    and the semantic features are reduced by one 1x1 conv before the
    RoIAlign (none after)."""
    torch.manual_seed(0)
    mbf = MODELS.build(dict(type='MultiBranchFusion', channels=4,
                            global_context='identity'))
    mbf.init_weights()
    assert mbf.global_conv is None
    x = torch.randn(2, 4, 6, 6)
    branch_sum = sum(b(x) for b in mbf.branches)
    expected = mbf.merge(branch_sum + x.mean(dim=(2, 3), keepdim=True))
    assert torch.allclose(mbf(x), expected, atol=1e-6)
    no_global = MODELS.build(dict(type='MultiBranchFusion', channels=4))
    no_global.load_state_dict(mbf.state_dict())
    assert not torch.allclose(no_global(x), mbf(x))
    with pytest.raises(ValueError, match='global_context'):
        MODELS.build(dict(type='MultiBranchFusion', channels=4,
                          global_context='avg'))

    sfm = MODELS.build(
        dict(type='SFMStage', in_channels=8, out_channels=6,
             semantic_in_channels=5, num_classes=NUM_CLASSES, roi_size=14,
             semantic_transform='in'))
    assert sfm.semantic_out is None
    assert sfm.semantic_in.conv.in_channels == 5
    assert sfm.fuse_in.conv.in_channels == 8 + 8 + 2  # instance, sem, masks
    sem = sfm.prepare_semantic(torch.randn(2, 5, 32, 32))
    assert sem.shape[1] == 8
    rois, labels = rois_and_labels()
    out, _ = sfm(torch.randn(4, 8, 14, 14), sem, rois, labels,
                 torch.rand(2, 1, 32, 32))
    assert tuple(out.shape) == (4, 6, 28, 28)
    with pytest.raises(ValueError, match='semantic_transform'):
        MODELS.build(dict(type='SFMStage', in_channels=8, out_channels=6,
                          semantic_in_channels=5, num_classes=3, roi_size=14,
                          semantic_transform='out'))
