"""ImageLevelPaste (CLIS batch augment): exact pasted pixels and the new
box / label / mask / paste_source of hand-made batches, the overlap rule,
skipping, both mask types, the no-op cases, seeding, and a run inside
DetDataPreprocessor on a mixed batch from real MMDetection pipelines."""
import copy
import json
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from mmdet.registry import DATASETS, MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks, PolygonMasks

import longtail_plugin  # noqa: F401  (registers the modules)
import longtail_plugin.models.data_preprocessors  # noqa: F401
from longtail_plugin.models.data_preprocessors import ImageLevelPaste
from tests.lvis_cases import tiny_lvis_gt, write_json

S = 32  # every hand-made image is S x S


def sample(boxes, labels, image_level=False, masks='bitmap',
           img_shape=(S, S), box_type=torch.Tensor):
    s = DetDataSample()
    meta = dict(img_shape=img_shape, img_path=f'img{len(boxes)}.png')
    if image_level:
        meta['image_level'] = True
    s.set_metainfo(meta)
    gt = InstanceData()
    b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    gt.bboxes = HorizontalBoxes(b) if box_type is HorizontalBoxes else b
    gt.labels = torch.tensor(labels, dtype=torch.long)
    if masks == 'bitmap':
        m = np.zeros((len(boxes), S, S), np.uint8)
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            m[k, int(y1):int(y2), int(x1):int(x2)] = 1
        gt.masks = BitmapMasks(m, S, S)
    elif masks == 'polygon':
        gt.masks = PolygonMasks(
            [[np.array([x1, y1, x2, y1, x2, y2, x1, y2], float)]
             for x1, y1, x2, y2 in boxes], S, S)
    s.gt_instances = gt
    return s


def batch_inputs(n):
    """Image k holds k * 1000 + the pixel's position, channel c adds
    c * 100000: every pixel of the batch has its own value."""
    pos = torch.arange(S * S, dtype=torch.float32).reshape(S, S)
    return torch.stack([
        torch.stack([k * 1000 + c * 100000 + pos for c in range(3)])
        for k in range(n)])


def pasted_box(s):
    return [int(v) for v in s.gt_instances.bboxes[-1].tolist()]


def test_exact_copy_and_new_fields():
    # detection image 0 has an object on its left half; image 1 is an
    # image-level sample with region 8 wide, 6 tall at (4, 4), label 5
    samples = [sample([[0, 0, 16, 32]], [2]),
               sample([[4, 4, 12, 10], [4, 4, 12, 10]], [5, 1],
                      image_level=True)]
    inputs = batch_inputs(2)
    before = inputs.clone()
    aug = ImageLevelPaste(scale_range=(1.0, 1.0), seed=0)
    out, samples = aug(inputs, samples)
    assert torch.equal(inputs, before)  # the input batch is not modified
    det, img = samples
    x1, y1, x2, y2 = pasted_box(det)
    assert (x2 - x1, y2 - y1) == (8, 6)
    assert x1 >= 16 and x2 <= S and y1 >= 0 and y2 <= S  # no overlap
    assert torch.equal(out[0, :, y1:y2, x1:x2], before[1, :, 4:10, 4:12])
    rest = torch.ones(S, S, dtype=torch.bool)
    rest[y1:y2, x1:x2] = False
    assert torch.equal(out[0][:, rest], before[0][:, rest])
    assert torch.equal(out[1], before[1])
    # appended instance: box, first label of the source, mask, source index
    assert det.gt_instances.labels.tolist() == [2, 5]
    assert det.gt_instances.paste_source.tolist() == [-1, 1]
    assert det.gt_instances.paste_source.dtype == torch.long
    mask = det.gt_instances.masks
    assert isinstance(mask, BitmapMasks) and len(mask) == 2
    expect = np.zeros((S, S), np.uint8)
    expect[y1:y2, x1:x2] = 1
    assert (mask.masks[1] == expect).all()
    assert mask.masks[0][:, :16].all() and not mask.masks[0][:, 16:].any()
    # the source keeps its instances and gets the field (all -1)
    assert img.gt_instances.paste_source.tolist() == [-1, -1]
    assert img.gt_instances.labels.tolist() == [5, 1]


def test_scaled_paste_of_a_uniform_region():
    samples = [sample([], []), sample([[2, 2, 14, 10]], [3],
                                      image_level=True)]
    inputs = torch.zeros(2, 3, S, S)
    inputs[1, :, 2:10, 2:14] = torch.tensor([1.5, -2.0, 0.25])[:, None, None]
    out, samples = ImageLevelPaste(scale_range=(0.5, 0.5), seed=1)(
        inputs, samples)
    x1, y1, x2, y2 = pasted_box(samples[0])
    assert (x2 - x1, y2 - y1) == (6, 4)  # 12 x 8 source at scale 0.5
    patch = out[0, :, y1:y2, x1:x2]
    assert torch.allclose(patch, torch.tensor(
        [1.5, -2.0, 0.25])[:, None, None].expand_as(patch))
    assert out[0].abs().sum() == pytest.approx(6 * 4 * 3.75)
    assert samples[0].gt_instances.paste_source.tolist() == [1]


def test_size_is_capped_by_the_target_valid_area():
    # a 28 x 20 source into a detection image whose valid area is 10 x 16
    samples = [sample([], [], img_shape=(10, 16)),
               sample([[2, 6, 30, 26]], [0], image_level=True)]
    out, samples = ImageLevelPaste(scale_range=(1.0, 1.0), seed=0)(
        batch_inputs(2), samples)
    x1, y1, x2, y2 = pasted_box(samples[0])
    # scale min(1, 10 / 20, 16 / 28) = 0.5 -> 14 x 10, inside 16 x 10
    assert (x2 - x1, y2 - y1) == (14, 10)
    assert 0 <= x1 and x2 <= 16 and 0 <= y1 and y2 <= 10
    assert torch.equal(out[0, :, 10:], batch_inputs(1)[0, :, 10:])


@pytest.mark.parametrize('seed', range(12))
def test_never_overlaps_existing_or_earlier_pasted_boxes(seed):
    existing = [[0, 0, 14, 14], [20, 18, 32, 32]]
    samples = [sample(existing, [0, 1])] + [
        sample([[0, 0, 6, 6]], [k], image_level=True) for k in range(4)]
    _, samples = ImageLevelPaste(scale_range=(0.5, 1.0), seed=seed)(
        batch_inputs(5), samples)
    boxes = samples[0].gt_instances.bboxes
    source = samples[0].gt_instances.paste_source.tolist()
    assert source[:2] == [-1, -1] and len(source) > 2
    assert all(s in (1, 2, 3, 4) for s in source[2:])
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            lt = torch.maximum(boxes[a, :2], boxes[b, :2])
            rb = torch.minimum(boxes[a, 2:], boxes[b, 2:])
            assert (rb - lt).clamp(min=0).prod() == 0, (a, b)
    labels = samples[0].gt_instances.labels.tolist()
    assert labels[2:] == [s - 1 for s in source[2:]]


def test_no_free_place_skips_and_max_overlap_allows():
    def batch():
        return [sample([[0, 0, 32, 32]], [0]),
                sample([[0, 0, 8, 8]], [4], image_level=True)]

    inputs = batch_inputs(2)
    out, samples = ImageLevelPaste(seed=0, max_tries=25)(inputs, batch())
    assert torch.equal(out, inputs)
    assert samples[0].gt_instances.paste_source.tolist() == [-1]
    assert len(samples[0].gt_instances.masks) == 1
    # an 8 x 8 patch hides at most 64 / 1024 of the whole-image box
    out, samples = ImageLevelPaste(seed=0, max_overlap=64 / 1024,
                                   scale_range=(1.0, 1.0))(inputs, batch())
    assert samples[0].gt_instances.paste_source.tolist() == [-1, 1]
    assert not torch.equal(out, inputs)
    out, samples = ImageLevelPaste(seed=0, max_overlap=0.06,
                                   scale_range=(1.0, 1.0))(inputs, batch())
    assert samples[0].gt_instances.paste_source.tolist() == [-1]


def test_polygon_masks_and_horizontal_boxes():
    samples = [sample([[0, 0, 10, 10]], [1], masks='polygon',
                      box_type=HorizontalBoxes),
               sample([[3, 5, 9, 8]], [7], image_level=True,
                      masks='polygon', box_type=HorizontalBoxes)]
    _, samples = ImageLevelPaste(scale_range=(1.0, 1.0), seed=2)(
        batch_inputs(2), samples)
    gt = samples[0].gt_instances
    assert isinstance(gt.bboxes, HorizontalBoxes)
    x1, y1, x2, y2 = [int(v) for v in gt.bboxes.tensor[-1].tolist()]
    assert (x2 - x1, y2 - y1) == (6, 3)
    assert isinstance(gt.masks, PolygonMasks) and len(gt.masks) == 2
    assert gt.masks.masks[1][0].tolist() == [x1, y1, x2, y1, x2, y2, x1, y2]
    assert (gt.masks.height, gt.masks.width) == (S, S)
    assert gt.labels.tolist() == [1, 7]


@pytest.mark.parametrize('image_level', [False, True])
def test_single_kind_batch_only_gets_the_field(image_level):
    samples = [sample([[0, 0, 4, 4]], [0], image_level=image_level),
               sample([], [], image_level=image_level)]
    inputs = batch_inputs(2)
    out, samples = ImageLevelPaste(seed=0)(inputs, samples)
    assert out is inputs
    assert samples[0].gt_instances.paste_source.tolist() == [-1]
    assert samples[1].gt_instances.paste_source.tolist() == []
    assert len(samples[0].gt_instances) == 1


def test_num_targets_and_prob():
    def batch():
        return [sample([], []) for _ in range(3)] + [
            sample([[0, 0, 4, 4]], [9], image_level=True)]

    _, samples = ImageLevelPaste(num_targets=2, seed=0)(batch_inputs(4),
                                                        batch())
    counts = [len(s.gt_instances) for s in samples[:3]]
    assert sorted(counts) == [0, 1, 1]
    _, samples = ImageLevelPaste(num_targets=5, seed=0)(batch_inputs(4),
                                                        batch())
    assert [len(s.gt_instances) for s in samples[:3]] == [1, 1, 1]
    out, samples = ImageLevelPaste(prob=0.0, seed=0)(batch_inputs(4),
                                                     batch())
    assert [len(s.gt_instances) for s in samples[:3]] == [0, 0, 0]
    assert torch.equal(out, batch_inputs(4))


def _run(aug, seed_global=None):
    samples = [sample([[0, 0, 10, 10]], [0]), sample([], []),
               sample([[1, 1, 9, 7]], [3], image_level=True),
               sample([[5, 5, 20, 12]], [4], image_level=True)]
    if seed_global is not None:
        torch.manual_seed(seed_global)
    out, samples = aug(batch_inputs(4), samples)
    return out, [(s.gt_instances.bboxes.tolist(),
                  s.gt_instances.paste_source.tolist()) for s in samples]


def test_reproducible_under_a_seed():
    a = _run(ImageLevelPaste(seed=11))
    b = _run(ImageLevelPaste(seed=11))
    assert torch.equal(a[0], b[0]) and a[1] == b[1]
    # the augment's generator advances: two calls differ over seeds
    aug = ImageLevelPaste(seed=11)
    first, later = _run(aug), [_run(aug) for _ in range(3)]
    assert any(r[1] != first[1] for r in later)
    # without a seed: the global torch RNG
    g1 = _run(ImageLevelPaste(), seed_global=4)
    g2 = _run(ImageLevelPaste(), seed_global=4)
    assert torch.equal(g1[0], g2[0]) and g1[1] == g2[1]
    runs = {str(_run(ImageLevelPaste(seed=s))[1]) for s in range(6)}
    assert len(runs) > 1


@pytest.mark.parametrize('kwargs,message', [
    (dict(num_targets=0), 'num_targets'),
    (dict(scale_range=(0.8, 0.5)), 'scale_range'),
    (dict(max_overlap=1.5), 'max_overlap'),
    (dict(max_tries=0), 'max_tries'),
    (dict(prob=2.0), 'prob'),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=f'ImageLevelPaste: {message}'):
        ImageLevelPaste(**kwargs)


def test_unknown_instance_field_is_named():
    det = sample([], [])
    det.gt_instances.scores = torch.zeros(0)
    with pytest.raises(ValueError, match=r"field\(s\) \['scores'\]"):
        ImageLevelPaste(seed=0)(batch_inputs(2), [
            det, sample([[0, 0, 4, 4]], [0], image_level=True)])


# ---------------------------------------------------------------- pipelines
META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
             'flip', 'flip_direction', 'image_level')


def _datasets(tmp_path):
    for k in (1, 2):
        mmcv.imwrite(np.full((100, 100, 3), 40 * k, np.uint8),
                     osp.join(str(tmp_path), 'det', 'val2017', f'{k}.jpg'))
    il = [dict(id=5, file_name='a.png', height=32, width=48,
               pos_category_ids=[2], bbox=[4, 8, 10, 6]),
          dict(id=6, file_name='b.png', height=40, width=40,
               pos_category_ids=[3, 1], bbox=[5, 5, 10, 10])]
    rng = np.random.default_rng(0)
    for img in il:
        mmcv.imwrite(rng.integers(0, 256, (img['height'], img['width'], 3),
                                  dtype=np.uint8),
                     osp.join(str(tmp_path), 'il', img['file_name']))
    cats = [dict(id=c['id'], name=c['name'])
            for c in tiny_lvis_gt()['categories']]
    with open(tmp_path / 'il.json', 'w') as f:
        json.dump(dict(categories=cats, images=il), f)
    tail = [dict(type='Resize', scale=(64, 64), keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackDetInputs', meta_keys=META_KEYS)]
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = DATASETS.build(dict(
            type='LVISFormatDataset',
            ann_file=write_json(tiny_lvis_gt(), tmp_path / 'det.json'),
            data_prefix=dict(img=str(tmp_path / 'det')),
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='LoadAnnotations', with_mask=True)] + tail))
        img = DATASETS.build(dict(
            type='ImageLevelDataset', ann_file=str(tmp_path / 'il.json'),
            data_prefix=dict(img=str(tmp_path / 'il')),
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='LoadImageLevelAnnotations')] + tail))
    return det, img


def test_inside_det_data_preprocessor_on_a_real_mixed_batch(tmp_path):
    det, img = _datasets(tmp_path)
    torch.manual_seed(0)
    data = pseudo_collate([det[0], img[0], det[1], img[1]])
    common = dict(mean=[120., 110., 100.], std=[50., 60., 70.],
                  bgr_to_rgb=True, pad_size_divisor=32, pad_mask=True)
    reference = MODELS.build(dict(type='DetDataPreprocessor', **common))(
        copy.deepcopy(data), training=True)
    pre = MODELS.build(dict(
        type='DetDataPreprocessor', **common,
        batch_augments=[dict(type='ImageLevelPaste', seed=0, max_tries=50,
                             scale_range=(1.0, 1.0))]))
    out = pre(data, training=True)
    inputs, samples = out['inputs'], out['data_samples']
    ref_inputs = reference['inputs']
    assert inputs.shape == ref_inputs.shape == (4, 3, 64, 64)
    for k, s in enumerate(samples):
        gt = s.gt_instances
        assert gt.paste_source.dtype == torch.long
        assert len(gt.paste_source) == len(gt.labels) == len(gt.masks)
        assert gt.masks.masks.shape[1:] == (64, 64)  # padded + pasted
        assert s.metainfo.get('image_level', False) == (k in (1, 3))
    # both sources pasted (scale 1, no overlap) into the detection images
    pasted = [(k, n) for k in (0, 2)
              for n, src in enumerate(samples[k].gt_instances.paste_source)
              if src >= 0]
    assert sorted(int(samples[k].gt_instances.paste_source[n])
                  for k, n in pasted) == [1, 3]
    for k, n in pasted:
        gt = samples[k].gt_instances
        j = int(gt.paste_source[n])
        x1, y1, x2, y2 = [int(v) for v in gt.bboxes[n].tolist()]
        sx1, sy1, sx2, sy2 = samples[j].gt_instances.bboxes[0].tolist()
        sx1, sy1 = int(np.floor(sx1)), int(np.floor(sy1))
        sx2, sy2 = int(np.ceil(sx2)), int(np.ceil(sy2))
        assert (x2 - x1, y2 - y1) == (sx2 - sx1, sy2 - sy1)
        assert torch.equal(inputs[k, :, y1:y2, x1:x2],
                           ref_inputs[j, :, sy1:sy2, sx1:sx2])
        assert int(gt.labels[n]) == int(samples[j].gt_instances.labels[0])
        assert gt.masks.masks[n, y1:y2, x1:x2].all()
        assert gt.masks.masks[n].sum() == (x2 - x1) * (y2 - y1)
    # image-level samples are unchanged
    for j in (1, 3):
        assert torch.equal(inputs[j], ref_inputs[j])
        assert (samples[j].gt_instances.paste_source == -1).all()
    # not training: MMDetection runs no batch augment, so no field
    test_out = pre(copy.deepcopy(data), training=False)
    assert 'paste_source' not in test_out['data_samples'][0].gt_instances
