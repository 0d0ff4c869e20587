"""ImageLevelDataset and LoadImageLevelAnnotations (CLIS data path): the
JSON format, the errors of malformed files, a real MMDetection pipeline, and
a ConcatDataset with a LVIS-format detection set drawn by MultiSourceSampler
(everything built through the registries, as a config does)."""
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from mmdet.registry import DATASETS, TRANSFORMS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks, PolygonMasks

import longtail_plugin  # noqa: F401  (registers the modules)
from longtail_plugin.datasets import (ImageLevelDataset,
                                      LoadImageLevelAnnotations,
                                      LVISFormatDataset)
from tests.lvis_cases import tiny_lvis_gt, write_json

# the tiny LVIS set's categories, in that file's order (id order); the
# label of a category is its position in the list, in both data sets
CATS = [dict(id=1, name='rare_thing'), dict(id=2, name='common_thing'),
        dict(id=3, name='frequent_thing')]
META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
             'flip', 'flip_direction', 'image_level')


def images():
    return [
        dict(id=5, file_name='a.png', height=32, width=48,
             pos_category_ids=[2], bbox=[4, 8, 10, 6]),
        dict(id=7, file_name='sub/b.png', height=20, width=30,
             pos_category_ids=[1]),
        dict(id=9, file_name='c.png', height=16, width=16,
             pos_category_ids=[3, 1], bbox=[0.5, 1.5, 15.5, 14.5]),
    ]


def write_image_level(path, imgs=None, cats=CATS) -> str:
    return write_json(dict(categories=cats,
                           images=images() if imgs is None else imgs), path)


def build(ann_file, prefix='', pipeline=()):
    return ImageLevelDataset(ann_file=ann_file, data_prefix=dict(img=prefix),
                             pipeline=list(pipeline))


def test_records_become_one_instance_per_label(tmp_path):
    ds = build(write_image_level(tmp_path / 'il.json'), prefix='imgs')
    assert len(ds) == 3
    assert ds.metainfo['classes'] == ('rare_thing', 'common_thing',
                                      'frequent_thing')
    given, whole, multi = (ds.get_data_info(k) for k in range(3))
    # given box: x, y, w, h -> x1, y1, x2, y2
    assert given['img_id'] == 5
    assert given['img_path'] == osp.join('imgs', 'a.png')
    assert (given['height'], given['width']) == (32, 48)
    assert given['image_level'] is True
    assert given['instances'] == [
        dict(bbox=[4.0, 8.0, 14.0, 14.0], bbox_label=1, ignore_flag=0)]
    # no box: the whole image
    assert whole['img_path'] == osp.join('imgs', 'sub', 'b.png')
    assert whole['instances'] == [
        dict(bbox=[0.0, 0.0, 30.0, 20.0], bbox_label=0, ignore_flag=0)]
    # two labels: two instances on the same region, in the file's order
    assert multi['instances'] == [
        dict(bbox=[0.5, 1.5, 16.0, 16.0], bbox_label=2, ignore_flag=0),
        dict(bbox=[0.5, 1.5, 16.0, 16.0], bbox_label=0, ignore_flag=0)]
    assert ds.get_cat_ids(2) == [2, 0]


def test_labels_follow_the_file_order_in_both_data_sets(tmp_path):
    """Files whose categories are NOT in id order: MMDetection's LVIS
    loader labels them in the file's order, and so do both of ours, names
    included (the k-th name is label k's)."""
    gt = tiny_lvis_gt()
    order = [3, 1, 2]
    by_id = {c['id']: c for c in gt['categories']}
    gt['categories'] = [by_id[i] for i in order]
    lvis = LVISFormatDataset(
        ann_file=write_json(gt, tmp_path / 'det.json'),
        data_prefix=dict(img=''), pipeline=[])
    cats = [dict(id=i, name=by_id[i]['name']) for i in order]
    imgs = [dict(id=k, file_name=f'{k}.png', height=10, width=10,
                 pos_category_ids=[c]) for k, c in enumerate(order)]
    ds = build(write_image_level(tmp_path / 'il.json', imgs, cats))
    assert lvis.cat2label == ds.cat2label == {3: 0, 1: 1, 2: 2}
    names = tuple(by_id[i]['name'] for i in order)
    assert lvis.metainfo['classes'] == ds.metainfo['classes'] == names
    assert [ds.get_data_info(k)['instances'][0]['bbox_label']
            for k in range(3)] == [0, 1, 2]
    # each LVIS instance's label names its category
    for k in range(len(lvis)):
        info = lvis.get_data_info(k)
        cats_here = [a['category_id'] for a in gt['annotations']
                     if a['image_id'] == info['img_id']]
        for cat, inst in zip(cats_here, info['instances']):
            assert names[inst['bbox_label']] == by_id[cat]['name']


def test_labels_and_metainfo_match_the_lvis_format_dataset(tmp_path):
    """Same categories -> same label of each category id and one metainfo
    (so ConcatDataset needs no ignore_keys)."""
    lvis = LVISFormatDataset(
        ann_file=write_json(tiny_lvis_gt(), tmp_path / 'det.json'),
        data_prefix=dict(img=''), pipeline=[])
    imgs = [dict(id=k, file_name=f'{k}.png', height=10, width=10,
                 pos_category_ids=[c]) for k, c in enumerate((1, 2, 3))]
    ds = build(write_image_level(tmp_path / 'il.json', imgs))
    assert ds.cat2label == lvis.cat2label == {1: 0, 2: 1, 3: 2}
    assert ds.metainfo == lvis.metainfo
    # the label of category c in both sets' instances
    lvis_label = {}
    gt = tiny_lvis_gt()
    for k in range(len(lvis)):
        info = lvis.get_data_info(k)
        cats = [a['category_id'] for a in gt['annotations']
                if a['image_id'] == info['img_id']]
        for cat, inst in zip(cats, info['instances']):
            lvis_label[cat] = inst['bbox_label']
    for k, c in enumerate((1, 2, 3)):
        assert ds.get_data_info(k)['instances'][0]['bbox_label'] == \
            lvis_label[c]


def _edit(field, value):
    def apply(imgs):
        if value is KeyError:
            del imgs[1][field]
        else:
            imgs[1][field] = value
        return imgs
    return apply


MALFORMED = [
    (_edit('pos_category_ids', KeyError), r"missing key\(s\) "
     r"\['pos_category_ids'\]"),
    (_edit('file_name', KeyError), r"missing key\(s\) \['file_name'\]"),
    (_edit('pos_category_ids', [1, 99]), r'unknown category id\(s\) \[99\]'),
    (_edit('pos_category_ids', []), 'non-empty list'),
    (_edit('bbox', [25, 0, 10, 5]), 'outside the 30x20 image'),
    (_edit('bbox', [0, 15, 10, 6]), 'outside the 30x20 image'),
    (_edit('bbox', [-1, 0, 10, 5]), 'outside the 30x20 image'),
    (_edit('bbox', [2, 2, 0, 5]), 'non-positive width or height'),
    (_edit('bbox', [2, 2, 5]), r'must be \[x, y, w, h\]'),
    (_edit('height', 0), 'positive integers'),
]


@pytest.mark.parametrize('edit,message', MALFORMED)
def test_malformed_record_names_file_and_image(tmp_path, edit, message):
    ann = write_image_level(tmp_path / 'bad_il.json', edit(images()))
    with pytest.raises(ValueError, match=message) as err:
        build(ann)
    assert 'bad_il.json' in str(err.value)
    assert 'image #1 (id=7)' in str(err.value)


def test_invalid_json_names_file_and_line(tmp_path):
    path = tmp_path / 'broken.json'
    path.write_text('{"categories": [],\n "images": [\n  {"id": 1,,}]}')
    with pytest.raises(ValueError, match=r'broken\.json: invalid JSON at '
                       r'line 3'):
        build(str(path))


def test_bad_categories_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r'cats\.json: category #1: '
                       'duplicate category id 3'):
        build(write_image_level(tmp_path / 'cats.json',
                                cats=[CATS[2], dict(id=3, name='x')]))
    with pytest.raises(ValueError, match=r'empty\.json: "images" is empty'):
        build(write_image_level(tmp_path / 'empty.json', imgs=[]))
    with pytest.raises(FileNotFoundError, match='missing_il.json'):
        build(str(tmp_path / 'missing_il.json'))


def test_load_annotations_alone():
    results = dict(
        ori_shape=(6, 8), img_path='x.png',
        instances=[dict(bbox=[1.5, 1.0, 4.0, 3.25], bbox_label=2,
                        ignore_flag=0),
                   dict(bbox=[1.5, 1.0, 4.0, 3.25], bbox_label=0,
                        ignore_flag=0)])
    out = TRANSFORMS.build(dict(type='LoadImageLevelAnnotations'))(
        dict(results))
    assert isinstance(out['gt_bboxes'], HorizontalBoxes)
    assert out['gt_bboxes'].tensor.tolist() == [[1.5, 1.0, 4.0, 3.25]] * 2
    assert out['gt_bboxes_labels'].dtype == np.int64
    assert out['gt_bboxes_labels'].tolist() == [2, 0]
    assert out['gt_ignore_flags'].dtype == bool
    assert not out['gt_ignore_flags'].any()
    assert out['image_level'] is True
    assert isinstance(out['gt_masks'], BitmapMasks)
    # rows floor(1.0)..ceil(3.25)-1 = 1..3, columns 1..3
    expect = np.zeros((6, 8), np.uint8)
    expect[1:4, 1:4] = 1
    assert (out['gt_masks'].masks == expect).all()
    poly = LoadImageLevelAnnotations(poly2mask=False)(dict(results))
    assert isinstance(poly['gt_masks'], PolygonMasks)
    assert poly['gt_masks'].masks[0][0].tolist() == [
        1.5, 1.0, 4.0, 1.0, 4.0, 3.25, 1.5, 3.25]
    no_mask = LoadImageLevelAnnotations(with_mask=False)(dict(results))
    assert 'gt_masks' not in no_mask
    with pytest.raises(KeyError, match='LoadImageFromFile'):
        LoadImageLevelAnnotations()(
            {k: v for k, v in results.items() if k != 'ori_shape'})
    with pytest.raises(ValueError, match='x.png has no instances'):
        LoadImageLevelAnnotations()(dict(results, instances=[]))


def image_level_pipeline(scale=(64, 64), flip=1.0):
    return [
        dict(type='LoadImageFromFile'),
        dict(type='LoadImageLevelAnnotations'),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(type='RandomFlip', prob=flip),
        dict(type='PackDetInputs', meta_keys=META_KEYS),
    ]


def detection_pipeline(scale=(64, 64)):
    return [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs', meta_keys=META_KEYS),
    ]


def write_images(root, imgs):
    """A PNG per record: left half red, right half blue (BGR)."""
    for img in imgs:
        arr = np.zeros((img['height'], img['width'], 3), np.uint8)
        arr[:, :img['width'] // 2] = (0, 0, 255)
        arr[:, img['width'] // 2:] = (255, 0, 0)
        mmcv.imwrite(arr, osp.join(str(root), img['file_name']))


def write_lvis_images(root):
    for k in (1, 2):
        mmcv.imwrite(np.full((100, 100, 3), 40 * k, np.uint8),
                     osp.join(str(root), 'val2017', f'{k}.jpg'))


def build_in_mmdet_scope(cfg: dict):
    """What a runner does: the data set, and the transforms of its
    pipeline, are looked up in MMDetection's registries."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DATASETS.build(cfg)


def test_real_pipeline_gives_an_image_level_sample(tmp_path):
    write_images(tmp_path, images())
    ds = build_in_mmdet_scope(dict(
        type='ImageLevelDataset',
        ann_file=write_image_level(tmp_path / 'il.json'),
        data_prefix=dict(img=str(tmp_path)),
        pipeline=image_level_pipeline()))
    out = ds[0]
    sample = out['data_samples']
    assert isinstance(sample, DetDataSample)
    assert sample.metainfo['image_level'] is True
    # 48x32 -> keep ratio into 64x64: 64x43 (scale 4/3, height rounded)
    assert tuple(out['inputs'].shape) == (3, 43, 64)
    assert sample.img_shape == (43, 64) and sample.flip
    sx, sy = 64 / 48, 43 / 32
    x1, y1, x2, y2 = 4 * sx, 8 * sy, 14 * sx, 14 * sy
    expect = torch.tensor([[64 - x2, y1, 64 - x1, y2]])
    assert torch.allclose(sample.gt_instances.bboxes.tensor, expect,
                          atol=1e-4)
    assert sample.gt_instances.labels.tolist() == [1]
    assert sample.gt_instances.labels.dtype == torch.int64
    masks = sample.gt_instances.masks
    assert isinstance(masks, BitmapMasks) and masks.masks.shape == (1, 43, 64)
    rows = np.where(masks.masks[0].any(1))[0]
    cols = np.where(masks.masks[0].any(0))[0]
    # the mask is the box rectangle (to the pixel: nearest resize)
    assert abs(rows[0] - y1) <= 1 and abs(rows[-1] + 1 - y2) <= 1
    assert abs(cols[0] - (64 - x2)) <= 1 and abs(cols[-1] + 1 - (64 - x1)) <= 1
    assert masks.masks[0].sum() == (rows[-1] - rows[0] + 1) * (
        cols[-1] - cols[0] + 1)
    # flipped: the red (BGR 0, 0, 255) half is now on the right
    assert out['inputs'][:, 0, -1].tolist() == [0, 0, 255]
    assert out['inputs'][:, 0, 0].tolist() == [255, 0, 0]
    # the multi-label record: two instances on one box
    multi = ds[2]['data_samples']
    assert multi.gt_instances.labels.tolist() == [2, 0]
    assert len(multi.gt_instances.masks) == 2
    # detection samples through the same meta_keys carry no flag
    write_lvis_images(tmp_path)
    det = build_in_mmdet_scope(dict(
        type='LVISFormatDataset',
        ann_file=write_json(tiny_lvis_gt(), tmp_path / 'det.json'),
        data_prefix=dict(img=str(tmp_path)),
        pipeline=detection_pipeline()))[0]['data_samples']
    assert 'image_level' not in det.metainfo


def test_concat_with_multi_source_sampler_mixes_both_kinds(tmp_path):
    write_images(tmp_path / 'il', images())
    write_lvis_images(tmp_path / 'det')
    dataloader = dict(
        batch_size=4, num_workers=0,
        sampler=dict(type='MultiSourceSampler', batch_size=4,
                     source_ratio=[3, 1], seed=0),
        batch_sampler=None,
        collate_fn=dict(type='pseudo_collate'),
        dataset=dict(
            type='ConcatDataset',
            datasets=[
                dict(type='LVISFormatDataset',
                     ann_file=write_json(tiny_lvis_gt(),
                                         tmp_path / 'det.json'),
                     data_prefix=dict(img=str(tmp_path / 'det')),
                     pipeline=detection_pipeline()),
                dict(type='ImageLevelDataset',
                     ann_file=write_image_level(tmp_path / 'il.json'),
                     data_prefix=dict(img=str(tmp_path / 'il')),
                     pipeline=image_level_pipeline(flip=0.5)),
            ]))
    with DefaultScope.overwrite_default_scope('mmdet'):
        loader = Runner.build_dataloader(dataloader, seed=0)
    meta = loader.dataset.metainfo
    assert isinstance(meta, dict)  # one metainfo: the sources agree
    assert meta['classes'] == ('rare_thing', 'common_thing',
                               'frequent_thing')
    seen_img_ids = set()
    for _, batch in zip(range(3), loader):
        samples = batch['data_samples']
        assert len(samples) == len(batch['inputs']) == 4
        kinds = [s.metainfo.get('image_level', False) for s in samples]
        # MultiSourceSampler: 3 detection samples then 1 image-level one
        assert kinds == [False, False, False, True]
        assert all('masks' in s.gt_instances for s in samples)
        seen_img_ids.add(samples[-1].img_id)
    assert seen_img_ids == {5, 7, 9}  # all image-level records drawn
