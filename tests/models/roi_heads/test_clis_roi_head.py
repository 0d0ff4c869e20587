"""Tests of CLISRoIHead (CLIS image-level and contrastive losses; design
ours) on hand-made features, proposals and data samples, and once through
ImageLevelTwoStageDetector."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox2roi
from mmdet.structures.mask import BitmapMasks

import longtail_plugin.models  # noqa: F401  (registers the modules)
from longtail_plugin.models.roi_heads import CLISRoIHead

C = 3  # classes; label 3 = background
CH = 8  # feature channels
IMG = 64
KEYS = {
    'loss_cls', 'acc', 'loss_bbox', 'loss_objectness', 'loss_mask',
    'loss_image_cls', 'loss_contrastive'
}


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def train_cfg():
    return ConfigDict(
        assigner=dict(
            type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
            min_pos_iou=0.5, match_low_quality=True, ignore_iof_thr=-1),
        sampler=dict(
            type='RandomSampler', num=16, pos_fraction=0.25, neg_pos_ub=-1,
            add_gt_as_proposals=True),
        mask_size=14, pos_weight=-1, debug=False)


def rcnn_test_cfg():
    return ConfigDict(
        score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=10, mask_thr_binary=0.5)


def roi_head_cfg(bbox_head=None, **kw):
    head = dict(
        type='CLISBBoxHead', in_channels=CH, roi_feat_size=7,
        fc_out_channels=32, num_classes=C)
    head.update(bbox_head or {})
    cfg = dict(
        type='CLISRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=CH, featmap_strides=[4]),
        bbox_head=head,
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=CH, featmap_strides=[4]),
        mask_head=dict(
            type='FCNMaskHead', num_convs=1, in_channels=CH,
            conv_out_channels=CH, num_classes=C),
        proj_hidden=16, proj_dim=8,
        train_cfg=train_cfg(), test_cfg=rcnn_test_cfg())
    cfg.update(kw)
    return cfg


def build(**kw) -> CLISRoIHead:
    torch.manual_seed(0)
    head = MODELS.build(roi_head_cfg(**kw))
    head.init_weights()
    return head


def rect_masks(boxes):
    m = np.zeros((len(boxes), IMG, IMG), dtype=np.uint8)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        m[k, int(y0):int(y1), int(x0):int(x1)] = 1
    return BitmapMasks(m, IMG, IMG)


def sample(boxes, labels, paste_source=None, image_level=False):
    meta = dict(img_shape=(IMG, IMG), pad_shape=(IMG, IMG),
                batch_input_shape=(IMG, IMG), ori_shape=(IMG, IMG),
                scale_factor=(1.0, 1.0))
    if image_level:
        meta['image_level'] = True
    s = DetDataSample(metainfo=meta)
    gt = InstanceData(
        # tensors, as DetDataPreprocessor(boxtype2tensor=True) leaves them
        bboxes=torch.tensor(boxes, dtype=torch.float32),
        labels=torch.tensor(labels, dtype=torch.long),
        masks=rect_masks(boxes))
    if paste_source is not None:
        gt.paste_source = torch.tensor(paste_source, dtype=torch.long)
    s.gt_instances = gt
    s.ignored_instances = InstanceData(
        bboxes=torch.zeros(0, 4),
        labels=torch.zeros(0, dtype=torch.long))
    return s


# boxes of the mixed batch [det0, det1, img2, img3]
P0 = [30., 30., 50., 54.]  # pasted into det0 from img3
P1 = [4., 34., 28., 60.]  # pasted into det1 from img2
P2 = [36., 6., 58., 30.]  # a second copy of img3 (into det1): not paired
R2 = [6., 8., 40., 44.]  # region of img2
R3 = [16., 4., 60., 52.]  # region of img3 (two labels: two rows)


def mixed_batch():
    return [
        sample([[4., 4., 24., 28.], P0], [0, 2], paste_source=[-1, 3]),
        sample([[30., 4., 60., 26.], P1, P2], [1, 1, 2],
               paste_source=[-1, 2, 3]),
        sample([R2], [1], paste_source=[-1], image_level=True),
        sample([R3, R3], [2, 0], paste_source=[-1, -1], image_level=True),
    ]


def proposals(samples, seed=0):
    """RPN-like proposals (jittered gt + random boxes) for detection
    samples; the region boxes for image-level ones (proposals 'given')."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for s in samples:
        gt = s.gt_instances.bboxes
        if s.metainfo.get('image_level', False):
            out.append(InstanceData(bboxes=gt.clone()))
            continue
        jitter = gt + torch.randn(gt.shape, generator=g)
        xy = torch.rand(12, 2, generator=g) * (IMG - 20)
        wh = 8 + torch.rand(12, 2, generator=g) * 12
        rand = torch.cat([xy, xy + wh], 1)
        out.append(InstanceData(bboxes=torch.cat([jitter, rand])))
    return out


def features(batch, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, CH, IMG // 4, IMG // 4, generator=g), )


class Recorder(torch.nn.Module):
    """Wraps the head's contrastive loss and keeps its inputs."""

    def __init__(self, loss):
        super().__init__()
        self.loss = loss
        self.calls = []

    def forward(self, query, key):
        self.calls.append((query, key))
        return self.loss(query, key)


def region_feats(head, x, rois):
    return head.bbox_roi_extractor(x, torch.tensor(rois))


# --- losses of a mixed batch -------------------------------------------------
def test_contrastive_pairs_pasted_instance_with_its_source():
    head = build(contrastive_weight=0.5)
    assert head.image_level_proposals == 'given'
    recorder = Recorder(head.contrastive_loss)
    head.contrastive_loss = recorder  # this instance only
    x = features(4)
    samples = mixed_batch()
    losses = head.loss(x, proposals(samples), samples)
    assert len(recorder.calls) == 1
    query, key = recorder.calls[0]
    # pairs in batch order: (det0's P0, img3's region), (det1's P1, img2's
    # region); det1's P2 is a second copy of img3 and is left out
    bh = head.bbox_head
    inst = bh.forward_all(region_feats(head, x, [[0.] + P0, [1.] + P1]))[3]
    src = bh.forward_image(region_feats(head, x, [[3.] + R3, [2.] + R2]))[1]
    exp_q = head.proj_instance(inst)
    exp_k = head.proj_image(src)
    assert query.shape == key.shape == (2, 8)
    assert torch.allclose(query, exp_q, atol=1e-5)
    assert torch.allclose(key, exp_k, atol=1e-5)
    # the pairs are identifiable: swapped sources or the second copy differ
    assert not torch.allclose(key, exp_k.flip(0), atol=1e-3)
    wrong = head.proj_instance(bh.forward_all(
        region_feats(head, x, [[0.] + P0, [1.] + P2]))[3])
    assert not torch.allclose(query, wrong, atol=1e-3)
    # InfoNCE by hand (tau 0.1, symmetric) times contrastive_weight
    q, k = F.normalize(exp_q, dim=1), F.normalize(exp_k, dim=1)
    logits = q @ k.t() / 0.1
    t = torch.arange(2)
    hand = 0.5 * (F.cross_entropy(logits, t) + F.cross_entropy(logits.t(), t))
    assert losses['loss_contrastive'].item() == pytest.approx(
        0.5 * hand.item(), rel=1e-5)
    # separate projections by default
    assert head.proj_image is not head.proj_instance


def test_image_cls_loss_by_hand():
    head = build(image_loss_weight=2.0)
    x = features(4)
    samples = mixed_batch()
    losses = head.loss(x, proposals(samples), samples)
    assert set(losses) == KEYS
    logits, _ = head.bbox_head.forward_image(
        region_feats(head, x, [[2.] + R2, [3.] + R3, [3.] + R3]))
    hand = F.cross_entropy(logits, torch.tensor([1, 2, 0]))
    assert losses['loss_image_cls'].item() == pytest.approx(
        2.0 * hand.item(), rel=1e-5)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    for name in ('proj_instance.0.weight', 'proj_image.0.weight',
                 'bbox_head.fc_obj.weight', 'bbox_head.cls_fcs.0.weight',
                 'mask_head.conv_logits.weight'):
        p = dict(head.named_parameters())[name]
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('kind', ['mixed', 'detection', 'image'])
def test_same_keys_for_every_batch_mix(kind):
    head = build()
    samples = mixed_batch()
    if kind == 'detection':
        samples = [s for s in samples
                   if not s.metainfo.get('image_level', False)]
        for s in samples:  # nothing pasted without a source
            s.gt_instances.paste_source[:] = -1
    elif kind == 'image':
        samples = [s for s in samples if s.metainfo.get('image_level')]
    x = features(len(samples))
    losses = head.loss(x, proposals(samples), samples)
    assert set(losses) == KEYS
    for key, value in losses.items():
        assert torch.is_tensor(value) and value.numel() == 1, key
        if key != 'acc':
            assert value.requires_grad, key
    if kind == 'detection':
        assert losses['loss_image_cls'].item() == 0.0
        assert losses['loss_contrastive'].item() == 0.0
    if kind == 'image':
        for key in ('loss_cls', 'loss_bbox', 'loss_objectness', 'loss_mask',
                    'loss_contrastive'):
            assert losses[key].item() == 0.0, key
        assert losses['loss_image_cls'].item() > 0
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    # every parameter takes part (distributed training)
    assert all(p.grad is not None for p in head.parameters())


def test_same_keys_with_a_custom_accuracy_loss():
    head = build(bbox_head=dict(
        loss_cls=dict(type='EqualizationLossV2', num_classes=C)))
    keys = []
    for idx in ([0, 1, 2, 3], [2, 3]):
        samples = [mixed_batch()[i] for i in idx]
        losses = head.loss(features(len(idx)), proposals(samples), samples)
        keys.append(set(losses))
    assert keys[0] == keys[1] == (KEYS - {'acc'}) | {
        'acc_objectness', 'acc_classes'}


def test_detection_only_without_paste_field_and_ablations():
    head = build(contrastive_weight=None,
                 bbox_head=dict(decouple=False, siamese=False))
    assert head.contrastive_loss is None
    assert not hasattr(head, 'proj_instance')
    samples = mixed_batch()
    for s in samples:
        del s.gt_instances.paste_source
    x = features(4)
    losses = head.loss(x, proposals(samples), samples)
    assert set(losses) == KEYS
    assert losses['loss_contrastive'].item() == 0.0
    assert losses['loss_image_cls'].item() > 0


def test_shared_projection():
    head = build(share_projection=True)
    assert head.proj_image is head.proj_instance
    keys = [k for k in head.state_dict() if k.startswith('proj')]
    assert keys and all(k.startswith('proj_instance') for k in keys)


def test_bad_inputs_and_config():
    head = build()
    samples = mixed_batch()
    samples[0].gt_instances.paste_source[1] = 1  # a detection sample
    with pytest.raises(ValueError, match='paste_source=1'):
        head.loss(features(4), proposals(samples), samples)
    with pytest.raises(ValueError, match="'CLISBBoxHead'"):
        build(bbox_head=dict(type='Shared2FCBBoxHead'))
    with pytest.raises(ValueError, match='contrastive_weight'):
        build(contrastive_weight=-1.0)


# --- inference ---------------------------------------------------------------
def test_predict_uses_score_mode():
    head = build(bbox_head=dict(score_mode='product'))
    head.eval()
    samples = mixed_batch()[:2]
    x = features(2)
    props = proposals(samples)
    with torch.no_grad():
        raw = head.predict_bbox(x, [s.metainfo for s in samples], props,
                                rcnn_test_cfg=None)
        rois = bbox2roi([p.bboxes for p in props])
        cls, _, obj, _ = head.bbox_head.forward_all(
            head.bbox_roi_extractor(x, rois))
        p = cls.softmax(-1)
        expected = torch.cat([p[:, :C] * obj.sigmoid(), p[:, C:]], 1)
        assert torch.allclose(
            torch.cat([r.scores for r in raw]), expected, atol=1e-6)
        results = head.predict(x, proposals(samples), samples)
    assert len(results) == 2
    for r in results:
        assert {'bboxes', 'scores', 'labels', 'masks'} <= set(r.keys())
        assert len(r) > 0


# --- through the detector ----------------------------------------------------
def detector_cfg():
    return dict(
        type='ImageLevelTwoStageDetector',
        data_preprocessor=dict(
            type='DetDataPreprocessor', mean=[0., 0., 0.], std=[1., 1., 1.],
            pad_mask=True, pad_size_divisor=32),
        backbone=dict(
            type='ResNet', depth=18, base_channels=8, num_stages=1,
            out_indices=(0, ), strides=(1, ), dilations=(1, ),
            norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False),
        neck=None,
        rpn_head=dict(
            type='RPNHead', in_channels=CH, feat_channels=CH,
            anchor_generator=dict(
                type='AnchorGenerator', scales=[4], ratios=[1.0],
                strides=[4]),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                target_stds=[1.0, 1.0, 1.0, 1.0]),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True,
                          loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        roi_head={
            k: v
            for k, v in roi_head_cfg().items()
            if k not in ('train_cfg', 'test_cfg')
        },
        train_cfg=dict(
            rpn=dict(
                assigner=dict(
                    type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                    min_pos_iou=0.3, match_low_quality=True,
                    ignore_iof_thr=-1),
                sampler=dict(
                    type='RandomSampler', num=32, pos_fraction=0.5,
                    neg_pos_ub=-1, add_gt_as_proposals=False),
                allowed_border=-1, pos_weight=-1, debug=False),
            rpn_proposal=dict(
                nms_pre=100, max_per_img=20,
                nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
            rcnn=train_cfg()),
        test_cfg=dict(
            rpn=dict(
                nms_pre=100, max_per_img=20,
                nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
            rcnn=rcnn_test_cfg()))


def test_detector_returns_the_same_keys_for_every_mix():
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(ConfigDict(detector_cfg()))
    model.init_weights()
    model.train()
    # the ResNet stem has stride 4 and the single stage stride 1: C2, 8 ch
    assert model.backbone.stem_channels == 8
    inputs = torch.randn(4, 3, IMG, IMG)
    expected = KEYS | {'loss_rpn_cls', 'loss_rpn_bbox'}
    batches = dict(mixed=[0, 1, 2, 3], detection=[0, 1], image=[2, 3])
    for kind, idx in batches.items():
        samples = [mixed_batch()[i] for i in idx]
        if kind == 'detection':
            for s in samples:
                s.gt_instances.paste_source[:] = -1
        losses = model.loss(inputs[idx], samples)
        assert set(losses) == expected, kind
        total, log_vars = model.parse_losses(losses)
        assert set(log_vars) == expected | {'loss'}, kind
        assert total.requires_grad, kind
        total.backward()
        model.zero_grad()
