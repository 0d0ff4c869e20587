"""Thin shapes of the synthetic set (``thin_shapes``) and the mask/box area
ratio statistics (:mod:`longtail_benchmark.synthetic.stats`).

Small sets only (96x96 images, a few dozen of them).
"""
import hashlib
import importlib.util
import json
import os.path as osp
from collections import defaultdict

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from shapely import affinity
from shapely.geometry import Polygon

from longtail_benchmark import synthetic as sl
from longtail_benchmark.synthetic.drawing import _near_diagonal, _secondary
from longtail_benchmark.synthetic.stats import (format_ratio_summary,
                                                mask_box_ratios,
                                                ratio_summary,
                                                thinnest_categories)
from longtail_plugin.utils.category_info import frequency_group

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# the set whose hashes were recorded with the generator before thin_shapes
HASHED = dict(seed=0, num_classes=12, num_train_images=24, num_val_images=20,
              image_size=(96, 96), image_level_per_class=1,
              val_min_instances=2)
# sha256 of train / val / image-level files, computed with the code before
# the option existed (default and head_instances=3)
BEFORE = {
    1.0: ('f5c7ff4d9d99f2841212f9622b1e78d1b73ecd8731cf8960a7f694d81b65da96',
          '7a644cbe05b6b0fd732a2080b04d6fba71edf82fa76a82528ecf642d9730f30f',
          '4b90937245b4e7ca958ead302e2d736dbb8d0369dfbc953e3c636ad30f617bcf'),
    3.0: ('314eea93fd1c0235ed78d76b0c2ccc59f6f17abf11209d5d1e0631de95a8615c',
          'a77e6a1da7011ca8d72367400708a6d43218b3a993badae552a50f95d980b278',
          '46a00af84d64e201ef48f47c371c4679d4302d3d761e78faf8168b6180bdffd2'),
}
THIN = dict(seed=1, num_classes=21, num_train_images=40, num_val_images=30,
            image_size=(96, 96), image_level=False, val_min_instances=2,
            image_format='png', thin_shapes=True)


def _sha(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def _box_ratio(geom):
    x0, y0, x1, y1 = geom.bounds
    return geom.area / ((x1 - x0) * (y1 - y0))


@pytest.fixture(scope='module')
def thin_set(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('thin'))
    return root, sl.make_synthetic_lvis(root, **THIN)


# ------------------------------------------------------------ option off
@pytest.mark.parametrize('head_instances', [1.0, 3.0])
def test_option_off_is_byte_identical_to_before(tmp_path, head_instances):
    for thin in ({}, {'thin_shapes': False}):
        out = tmp_path / f'set{len(thin)}'
        s = sl.make_synthetic_lvis(str(out), head_instances=head_instances,
                                   **thin, **HASHED)
        got = tuple(_sha(s[k])
                    for k in ('train_ann', 'val_ann', 'image_level_ann'))
        assert got == BEFORE[head_instances]
        assert 'thin_shapes' not in s['params']


# ---------------------------------------------------------------- shapes
def test_thin_shapes_are_thin_at_every_angle():
    assert not set(sl.THIN_SHAPES) & set(sl.SHAPES)
    assert sl.shape_names() == list(sl.SHAPES)
    assert sl.shape_names(True) == list(sl.SHAPES) + list(sl.THIN_SHAPES)
    assert len(sl.THIN_SHAPES) * 3 >= len(sl.shape_names(True))
    assert sl.DIAGONAL_SHAPES <= set(sl.THIN_SHAPES)
    for name, pts in sl.THIN_SHAPES.items():
        assert '_' not in name  # category names are colour_texture_shape
        poly = Polygon(pts)
        assert poly.is_valid and not poly.interiors, name
        assert np.hypot(pts[:, 0], pts[:, 1]).max() <= 1.0 + 1e-9, name
        for deg in np.linspace(0, 360, 73):
            rad = np.deg2rad(deg)
            if name in sl.DIAGONAL_SHAPES:
                rad = _near_diagonal(rad)
            rot = affinity.rotate(poly, rad, origin=(0, 0), use_radians=True)
            assert _box_ratio(rot) < 0.25, (name, deg)
    # a rod drawn at any angle would fill its box when axis-aligned
    rod = Polygon(sl.THIN_SHAPES['rod'])
    assert _box_ratio(rod) > 0.9


def test_near_diagonal_angle():
    q = np.pi / 2
    for k in range(4):
        assert _near_diagonal(k * q) == pytest.approx(k * q + np.pi / 8)
        assert _near_diagonal(k * q + np.pi / 4) == pytest.approx(
            k * q + np.pi / 4)
        assert _near_diagonal(k * q + q - 1e-9) == pytest.approx(
            k * q + 3 * np.pi / 8)


def test_thin_categories_in_every_frequency_group():
    for seed in range(3):
        params = sl.writer._normalise_params(
            seed, 100, 1200, 240, (160, 160), True, 10, 2, 5, 5, 10, 0.02,
            'jpg', 3.0, True)
        plan = sl.plan_set(params)
        counts = sl.plan_train_image_counts(100, 1200, 5)
        groups = defaultdict(list)
        for spec, n in zip(plan.specs, counts):
            groups[frequency_group(int(n))].append(
                spec.shape in sl.THIN_SHAPES)
        assert set(groups) == {'r', 'c', 'f'}
        for g, thin in groups.items():  # a third, up to one category
            assert abs(sum(thin) - len(thin) / 3) <= 1, (seed, g)
        # tail categories are still one attribute away from a head one
        by_name = {s.name: s for s in plan.specs}
        for spec in plan.specs:
            if spec.parent is None:
                continue
            diff = [a for a, x, y in zip(('shape', 'colour', 'texture'),
                                         spec.key, by_name[spec.parent].key)
                    if x != y]
            assert diff == [spec.changed]
            assert by_name[spec.parent].parent is None


# ------------------------------------------------------------ thin set
def test_thin_set_ratio_distribution(thin_set):
    root, summary = thin_set
    assert summary['params']['thin_shapes'] is True
    s = ratio_summary(summary['train_ann'])
    thin_shapes = [k for k in s['by_shape'] if k in sl.THIN_SHAPES]
    assert len(thin_shapes) >= 4
    for k in thin_shapes:
        # occlusion can cut a thin object, so a few may be fuller
        assert s['by_shape'][k]['p50'] < 0.26, k
        assert s['by_shape'][k]['below_0.3'] > 0.85, k
    for k in set(s['by_shape']) - set(sl.THIN_SHAPES) - {'bar', 'elbow'}:
        assert s['by_shape'][k]['p50'] > 0.33, k
    assert s['overall']['below_0.3'] > 0.2
    # the recorded parameters
    with open(osp.join(root, sl.MARKER)) as f:
        assert json.load(f)['params']['thin_shapes'] is True
    with open(osp.join(root, 'meta.json')) as f:
        assert json.load(f)['params']['thin_shapes'] is True
    with open(summary['train_ann']) as f:
        info = json.load(f)['info']
    assert info['generator_params']['thin_shapes'] is True


def test_thin_masks_are_exact(thin_set):
    import cv2
    root, summary = thin_set
    with open(summary['train_ann']) as f:
        data = json.load(f)
    names = {c['id']: c['name'] for c in data['categories']}
    by_image = defaultdict(list)
    for a in data['annotations']:
        by_image[a['image_id']].append(a)
    inside, outside, checked = [], [], 0
    for img in data['images']:
        rgb = cv2.imread(osp.join(root, 'train2017', img['file_name']))
        rgb = rgb[..., ::-1].astype(float)
        anns = by_image[img['id']]
        masks = []
        for a in anns:
            rle = mask_utils.merge(mask_utils.frPyObjects(
                a['segmentation'], 96, 96))
            m = mask_utils.decode(rle).astype(bool)
            # area and box fields are those of the rasterised polygons
            assert m.sum() == a['area'] > 0
            assert a['bbox'] == [float(v) for v in mask_utils.toBbox(rle)]
            masks.append(m)
        union = np.any(masks, 0)
        for a, m in zip(anns, masks):
            name = names[a['category_id']]
            if name.rsplit('_', 1)[-1] not in sl.THIN_SHAPES:
                continue
            checked += 1
            primary = np.array(sl.COLOURS[name.split('_')[0]], float)
            d = _secondary(primary) - primary
            px = rgb[m]
            t = np.clip((px - primary) @ d / (d @ d), 0, 1)
            dist = np.linalg.norm(px - (primary + t[:, None] * d), axis=1)
            inside.append(np.mean(dist < 40))
            grown = cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8))
            ring = grown.astype(bool) & ~union
            px = rgb[ring]
            t = np.clip((px - primary) @ d / (d @ d), 0, 1)
            dist = np.linalg.norm(px - (primary + t[:, None] * d), axis=1)
            outside.append(np.mean(dist < 40))
    assert checked >= 20
    # every pixel of a thin mask has the object's colours (png: no jpeg
    # blur), and the one-pixel ring around it is not the object
    assert min(inside) > 0.97
    assert np.mean(outside) < 0.2


def test_thin_option_validated_and_reused(tmp_path):
    tiny = dict(num_classes=6, num_train_images=12, num_val_images=10,
                image_level=False, image_size=(96, 96))
    out = tmp_path / 'set'
    for bad in ('yes', 1, None):
        for call in (sl.make_synthetic_lvis, sl.ensure_synthetic_lvis):
            with pytest.raises(ValueError, match='thin_shapes'):
                call(str(out), thin_shapes=bad, **tiny)
    assert not out.exists()
    # more categories fit with the larger vocabulary
    n = len(sl.shape_names(True)) * len(sl.COLOURS) * len(sl.TEXTURES)
    with pytest.raises(ValueError, match=f'num_classes.*{n}'):
        sl.make_synthetic_lvis(str(out), **{**tiny, 'num_classes': n + 1,
                                            'thin_shapes': True})
    a = sl.ensure_synthetic_lvis(str(out), thin_shapes=True, **tiny)
    b = sl.ensure_synthetic_lvis(str(out), thin_shapes=True, **tiny)
    assert not a['reused'] and b['reused']
    c = sl.ensure_synthetic_lvis(str(out), **tiny)  # another set: rebuilt
    assert not c['reused'] and 'thin_shapes' not in c['params']


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(ROOT, 'tools', f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_thin_shapes_and_stats(tmp_path, capsys):
    out = tmp_path / 'set'
    s = _tool('make_synthetic_lvis').main([
        '--out', str(out), '--num-classes', '6', '--num-train-images', '12',
        '--num-val-images', '10', '--no-image-level', '--image-size', '96',
        '96', '--thin-shapes', '--stats', '--quiet'])
    assert s['params']['thin_shapes'] is True
    text = capsys.readouterr().out
    assert 'mask/box area ratio (raster)' in text and '-- by shape' in text
    js = tmp_path / 'r.json'
    r = _tool('mask_box_ratio').main([s['val_ann'], '--json', str(js)])
    assert json.loads(js.read_text())['overall']['n'] == r['overall']['n']
    with pytest.raises(SystemExit, match='mask_box_ratio'):
        _tool('mask_box_ratio').main([str(tmp_path / 'missing.json')])


# ---------------------------------------------------------------- stats
def _rect(x0, y0, x1, y1):
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def _hand_file():
    """Six instances with hand-computed ratios (integer, axis-aligned
    polygons: rasterised exactly by pycocotools)."""
    cats = [
        {'id': 1, 'name': 'red_plain_square', 'frequency': 'f'},
        {'id': 2, 'name': 'blue_plain_corner', 'frequency': 'r'},
        {'id': 3, 'name': 'green_plain_pair', 'frequency': 'r'},
    ]
    segs = [
        (1, [_rect(0, 0, 10, 10)]),  # 100 / 100 = 1.0
        (1, [_rect(2, 2, 12, 6)]),  # 40 / 40 = 1.0
        # L: 10x2 foot + 2x8 stem = 36 in a 10x10 box
        (2, [[0, 0, 10, 0, 10, 2, 2, 2, 2, 10, 0, 10]]),
        # L: 20x2 + 2x18 = 76 in a 20x20 box = 0.19
        (2, [[0, 0, 20, 0, 20, 2, 2, 2, 2, 20, 0, 20]]),
        # two 4x4 parts at opposite corners of a 10x10 box: 32 / 100
        (3, [_rect(0, 0, 4, 4), _rect(6, 6, 10, 10)]),
        # two 2x2 parts in a 10x2 box: 8 / 20 = 0.4
        (3, [_rect(0, 0, 2, 2), _rect(8, 0, 10, 2)]),
    ]
    anns = [{'id': i + 1, 'image_id': 1, 'category_id': c,
             'segmentation': s} for i, (c, s) in enumerate(segs)]
    return {'images': [{'id': 1, 'height': 32, 'width': 32}],
            'annotations': anns, 'categories': cats}


@pytest.mark.parametrize('mode', ['raster', 'polygon'])
def test_ratios_of_a_hand_made_file(tmp_path, mode):
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(_hand_file()))
    d = mask_box_ratios(str(path), mode)
    np.testing.assert_allclose(d['ratio'], [1, 1, .36, .19, .32, .4])
    np.testing.assert_array_equal(d['category_id'], [1, 1, 2, 2, 3, 3])

    s = ratio_summary(str(path), mode)
    r = np.array([1, 1, .36, .19, .32, .4])
    assert s['overall']['n'] == 6
    assert s['overall']['p50'] == pytest.approx((.36 + .4) / 2)
    assert s['overall']['mean'] == pytest.approx(r.mean())
    assert s['overall']['below_0.2'] == pytest.approx(1 / 6)
    assert s['overall']['below_0.3'] == pytest.approx(1 / 6)
    assert s['by_shape']['corner']['p50'] == pytest.approx((.36 + .19) / 2)
    assert s['by_shape']['corner']['below_0.3'] == pytest.approx(0.5)
    assert s['by_shape']['pair']['p50'] == pytest.approx(.36)
    assert s['by_frequency']['r']['n'] == 4
    assert s['by_frequency']['r']['p25'] == pytest.approx(
        np.percentile([.36, .19, .32, .4], 25))
    assert s['by_frequency']['f']['p5'] == pytest.approx(1.0)
    # category medians: square 1.0, corner 0.275, pair 0.36
    assert s['thin_categories'] == {
        'all': {'categories': 3, 'thin': 1},
        'f': {'categories': 1, 'thin': 0},
        'r': {'categories': 2, 'thin': 1}}
    assert thinnest_categories(s, 2) == ['blue_plain_corner',
                                         'green_plain_pair']
    assert thinnest_categories(s, 3, min_instances=3) == []
    text = format_ratio_summary(s, thinnest=1)
    assert 'blue_plain_corner' in text and 'green_plain_pair' not in text
    assert 'all 1/3, f 0/1, r 1/2' in text


def test_ratio_rejects_rle_and_bad_mode():
    data = _hand_file()
    data['annotations'][0]['segmentation'] = {'size': [32, 32],
                                              'counts': 'abc'}
    with pytest.raises(ValueError, match='polygon'):
        mask_box_ratios(data)
    with pytest.raises(ValueError, match='mode'):
        mask_box_ratios(_hand_file(), mode='exact')


def test_runner_names_the_thin_variant():
    from longtail_benchmark.runner import data_roots
    cfg = osp.join(ROOT, 'configs', 'lvis_traveler',
                   'mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-'
                   'densehead-thin.py')
    assert data_roots([cfg])[cfg] == (
        'data/synthetic_lvis_densehead_thin',
        (('head_instances', 3.0), ('thin_shapes', True)))
