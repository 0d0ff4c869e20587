"""Tests of the synthetic long-tailed LVIS v1 generator.

Small sets (12 categories, 40 training images) for everything but one test,
which generates the default size and checks the long-tail statistics.
"""
import filecmp
import importlib.util
import json
import os
import os.path as osp
from collections import defaultdict

import numpy as np
import pycocotools.mask as mask_utils
import pytest

from longtail_benchmark import synthetic as sl
from longtail_benchmark.synthetic.drawing import _secondary
from longtail_plugin.utils.category_info import frequency_group

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL = dict(num_classes=12, num_train_images=40, num_val_images=30,
             image_level_per_class=2)
ANN_FILES = ('lvis_v1_train.json', 'lvis_v1_val.json',
             'lvis_v1_train_image_level.json')
RANGES = {'r': (1, 10), 'c': (11, 100), 'f': (101, 10**9)}


def _load(root, name='lvis_v1_train.json'):
    with open(osp.join(root, 'annotations', name)) as f:
        return json.load(f)


def _decode(ann, h, w):
    rle = mask_utils.merge(mask_utils.frPyObjects(ann['segmentation'], h, w))
    return mask_utils.decode(rle).astype(bool)


def _image_stats(data):
    """category id -> (set of image ids, instance count)."""
    imgs, inst = defaultdict(set), defaultdict(int)
    for a in data['annotations']:
        imgs[a['category_id']].add(a['image_id'])
        inst[a['category_id']] += 1
    return imgs, inst


def _attrs(name):
    colour, texture, shape = name.split('_')
    return shape, colour, texture


def _check_federated_fields(data):
    present = defaultdict(set)
    for a in data['annotations']:
        present[a['image_id']].add(a['category_id'])
    cat_ids = {c['id'] for c in data['categories']}
    for img in data['images']:
        neg = set(img['neg_category_ids'])
        assert neg <= cat_ids
        assert not neg & present[img['id']], img['id']
        assert len(neg) == len(img['neg_category_ids'])
        assert set(img['not_exhaustive_category_ids']) <= present[img['id']]
    return present


@pytest.fixture(scope='module')
def small(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('small'))
    summary = sl.make_synthetic_lvis(root, seed=3, **SMALL)
    return root, summary


# ---------------------------------------------------------------- planning
def test_plan_default_groups():
    counts = sl.plan_train_image_counts(100, 1200, max_objects=5)
    assert len(counts) == 100
    assert np.all(np.diff(counts) <= 0)
    groups = [frequency_group(int(c)) for c in counts]
    assert (groups.count('r'), groups.count('c'), groups.count('f')) == (28,
                                                                         38,
                                                                         34)
    assert counts.max() <= 1200 and counts.min() >= 1
    assert 1200 * 2 <= counts.sum() <= 1200 * 5
    # steep: the head has more than 100x the images of the tail
    assert counts[0] / counts[-1] > 100


@pytest.mark.parametrize('k,n', [(12, 40), (3, 100), (30, 150), (100, 60),
                                 (200, 2000)])
def test_plan_feasible_for_any_size(k, n):
    counts = sl.plan_train_image_counts(k, n, max_objects=5)
    assert len(counts) == k
    assert counts.min() >= 1 and counts.max() <= n
    assert n <= counts.sum() <= n * min(5, k)


def test_category_specs_confusable():
    rng = np.random.default_rng(0)
    specs = sl.build_category_specs(100, 34, rng)
    names = [s.name for s in specs]
    assert len(set(names)) == 100
    heads = {s.name: s for s in specs[:34]}
    for s in specs[:34]:
        assert s.parent is None
        assert s.shape in sl.SHAPES and s.colour in sl.COLOURS
        assert s.texture in sl.TEXTURES
    for s in specs[34:]:
        parent = heads[s.parent]
        diff = [a for a, x, y in zip(('shape', 'colour', 'texture'), s.key,
                                     parent.key) if x != y]
        assert diff == [s.changed]
    with pytest.raises(ValueError):
        sl.build_category_specs(10**4, 10, rng)


def test_shapes_are_simple_polygons():
    from shapely.geometry import Polygon
    for name, pts in sl.SHAPES.items():
        poly = Polygon(pts)
        assert poly.is_valid and not poly.interiors, name
        assert np.abs(pts).max() <= 1.0 + 1e-6, name
    # thin and concave shapes are there
    assert {'ring', 'star', 'bar', 'cross', 'elbow'} <= set(sl.SHAPES)
    ring = Polygon(sl.SHAPES['ring'])
    assert ring.area < 0.7 * ring.convex_hull.area


def test_val_too_small_raises(tmp_path):
    with pytest.raises(ValueError, match='validation images'):
        sl.make_synthetic_lvis(str(tmp_path), num_classes=12,
                               num_train_images=20, num_val_images=5,
                               image_level=False)


# ---------------------------------------------------------------- small set
def test_layout_and_fields(small):
    root, summary = small
    for name in ANN_FILES:
        assert osp.isfile(osp.join(root, 'annotations', name))
    train, val = _load(root), _load(root, 'lvis_v1_val.json')
    il = _load(root, 'lvis_v1_train_image_level.json')
    assert summary['num_train_images'] == len(train['images']) == 40
    assert summary['num_val_images'] == len(val['images']) == 30
    assert len(il['images']) == 12 * 2
    for data, folder in ((train, 'train2017'), (val, 'val2017'),
                         (il, 'train_image_level')):
        assert set(data) >= {'info', 'licenses', 'categories', 'images',
                             'annotations'}
        for img in data['images']:
            for key in ('id', 'width', 'height', 'file_name', 'coco_url',
                        'neg_category_ids', 'not_exhaustive_category_ids',
                        'license', 'date_captured', 'flickr_url'):
                assert key in img
            assert img['coco_url'] == ('http://images.cocodataset.org/'
                                       f"{folder}/{img['file_name']}")
            assert osp.isfile(osp.join(root, folder, img['file_name']))
            assert (img['height'], img['width']) == (160, 160)
        for ann in data['annotations']:
            assert set(ann) >= {'id', 'image_id', 'category_id',
                                'segmentation', 'area', 'bbox'}
            for poly in ann['segmentation']:
                assert len(poly) >= 6 and len(poly) % 2 == 0
    ids = [img['id'] for d in (train, val, il) for img in d['images']]
    assert len(ids) == len(set(ids))
    # val and the image-level set use train's categories (frequencies)
    assert val['categories'] == train['categories'] == il['categories']
    cats = train['categories']
    assert [c['id'] for c in cats] == list(range(1, 13))
    imgs, inst = _image_stats(train)
    for c in cats:
        assert set(c) >= {'id', 'name', 'synset', 'frequency', 'image_count',
                          'instance_count', 'def', 'synonyms'}
        assert c['image_count'] == len(imgs[c['id']]) >= 1
        assert c['instance_count'] == inst[c['id']]
        assert c['frequency'] == frequency_group(c['image_count'])
    # every image 2..5 objects; image-level: one object, one label
    per_image = defaultdict(int)
    for a in train['annotations'] + val['annotations']:
        per_image[a['image_id']] += 1
    assert set(per_image.values()) <= {2, 3, 4, 5}
    assert len(per_image) == 70
    il_imgs, _ = _image_stats(il)
    assert len(il['annotations']) == len(il['images'])
    for img in il['images']:
        assert len(img['pos_category_ids']) == 1
    assert all(len(v) == 2 for v in il_imgs.values())


def test_val_instances_and_federated_fields(small):
    root, _ = small
    val = _load(root, 'lvis_v1_val.json')
    _, inst = _image_stats(val)
    assert all(inst[c['id']] >= 5 for c in val['categories'])
    for name in ANN_FILES:
        _check_federated_fields(_load(root, name))


def test_bbox_and_area_match_mask(small):
    root, _ = small
    for name in ANN_FILES[:2]:
        data = _load(root, name)
        for ann in data['annotations']:
            m = _decode(ann, 160, 160)
            assert m.sum() == ann['area'] > 0
            ys, xs = np.nonzero(m)
            x, y = xs.min(), ys.min()
            bbox = [x, y, xs.max() + 1 - x, ys.max() + 1 - y]
            assert ann['bbox'] == [float(v) for v in bbox]


def _colour_distance(pixels, name):
    """Distance of RGB pixels to the segment primary -> texture colour."""
    primary = np.array(sl.COLOURS[name.split('_')[0]], float)
    secondary = _secondary(primary)
    d = secondary - primary
    t = np.clip((pixels - primary) @ d / (d @ d), 0, 1)
    return np.linalg.norm(pixels - (primary + t[:, None] * d), axis=1)


def test_masks_are_exact(small):
    import cv2
    root, _ = small
    data = _load(root)
    names = {c['id']: c['name'] for c in data['categories']}
    by_image = defaultdict(list)
    for a in data['annotations']:
        by_image[a['image_id']].append(a)
    inside, ring = [], []
    for img in data['images'][:10]:
        rgb = cv2.imread(osp.join(root, 'train2017',
                                  img['file_name']))[..., ::-1].astype(float)
        anns = by_image[img['id']]
        masks = [_decode(a, 160, 160) for a in anns]
        union = np.any(masks, 0)
        for a, m in zip(anns, masks):
            dist = _colour_distance(rgb[m], names[a['category_id']])
            inside.append(np.mean(dist < 40))
            # just outside the mask (and not on another object): background
            grown = cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8))
            out = grown.astype(bool) & ~union
            if out.sum() > 10:
                dist = _colour_distance(rgb[out], names[a['category_id']])
                ring.append(np.mean(dist < 40))
    assert np.mean(inside) > 0.97 and min(inside) > 0.9
    assert np.mean(ring) < 0.3


def test_deterministic(small, tmp_path):
    root, _ = small
    again = str(tmp_path / 'again')
    sl.make_synthetic_lvis(again, seed=3, **SMALL)
    for name in ANN_FILES:
        assert filecmp.cmp(osp.join(root, 'annotations', name),
                           osp.join(again, 'annotations', name),
                           shallow=False), name
    names = sorted(os.listdir(osp.join(root, 'train2017')))
    assert names == sorted(os.listdir(osp.join(again, 'train2017')))
    for n in names[:5]:
        assert filecmp.cmp(osp.join(root, 'train2017', n),
                           osp.join(again, 'train2017', n), shallow=False)
    other = str(tmp_path / 'other')
    sl.make_synthetic_lvis(other, seed=4, **SMALL)
    for name in ANN_FILES:
        assert not filecmp.cmp(osp.join(root, 'annotations', name),
                               osp.join(other, 'annotations', name),
                               shallow=False), name


def test_lvis_api_reads_it(small):
    from lvis import LVIS
    root, _ = small
    for name in ANN_FILES:
        api = LVIS(osp.join(root, 'annotations', name))
        assert len(api.get_cat_ids()) == 12
        img_id = api.get_img_ids()[0]
        anns = api.load_anns(api.get_ann_ids(img_ids=[img_id]))
        assert anns and all(a['image_id'] == img_id for a in anns)
        assert {c['frequency'] for c in api.load_cats(None)} <= {'r', 'c',
                                                                  'f'}
        mask = api.ann_to_mask(anns[0])
        assert mask.sum() == anns[0]['area']


def test_mmdet_lvisv1dataset_reads_it(small):
    from mmdet.datasets import LVISV1Dataset
    root, _ = small
    for name, n in (('lvis_v1_train.json', 40), ('lvis_v1_val.json', 30),
                    ('lvis_v1_train_image_level.json', 24)):
        ds = LVISV1Dataset(
            ann_file=f'annotations/{name}',
            data_root=root,
            data_prefix=dict(img=''),
            pipeline=[],
            test_mode=False)
        assert len(ds) == n
        item = ds[0]
        assert osp.isfile(item['img_path'])
        assert item['instances'] and 'mask' in item['instances'][0]
    classes = sl.load_class_names(osp.join(root, 'annotations', name))
    ds = LVISV1Dataset(ann_file=osp.join(root, 'annotations', name),
                       data_prefix=dict(img=root + '/'), pipeline=[],
                       metainfo=dict(classes=classes))
    assert ds.metainfo['classes'] == classes
    assert osp.isfile(ds[0]['img_path'])


def test_ensure_reuses_and_regenerates(tmp_path):
    root = str(tmp_path / 'set')
    kw = dict(num_classes=12, num_train_images=30, num_val_images=20,
              image_level=False)
    first = sl.ensure_synthetic_lvis(root, **kw)
    assert not first['reused']
    assert not osp.exists(osp.join(root, 'annotations', ANN_FILES[2]))
    train_json = osp.join(root, 'annotations', 'lvis_v1_train.json')
    mtime = os.stat(train_json).st_mtime_ns
    second = sl.ensure_synthetic_lvis(root, **kw)
    assert second['reused']
    assert os.stat(train_json).st_mtime_ns == mtime
    assert second['train_ann'] == first['train_ann']
    assert second['frequency_counts'] == first['frequency_counts']
    # a missing image or a changed parameter regenerates
    os.remove(osp.join(root, 'val2017', sorted(os.listdir(
        osp.join(root, 'val2017')))[0]))
    assert not sl.ensure_synthetic_lvis(root, **kw)['reused']
    kw['image_level'] = True
    kw['image_level_per_class'] = 1
    third = sl.ensure_synthetic_lvis(root, **kw)
    assert not third['reused'] and osp.isfile(third['image_level_ann'])
    assert len(os.listdir(osp.join(root, 'train_image_level'))) == 12
    with pytest.raises(TypeError):
        sl.ensure_synthetic_lvis(root, num_clases=3)


def _cli():
    spec = importlib.util.spec_from_file_location(
        'make_synthetic_lvis', osp.join(ROOT, 'tools',
                                        'make_synthetic_lvis.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


def test_cli(tmp_path, capsys):
    cli = _cli()
    out = str(tmp_path / 'cli')
    summary = cli.main([
        '--out', out, '--seed', '1', '--num-classes', '10',
        '--num-train-images', '30', '--num-val-images', '20', '--image-size',
        '96', '128', '--no-image-level', '--quiet'
    ])
    text = capsys.readouterr().out
    assert 'r/c/f' in text and 'time:' in text
    assert summary['num_train_images'] == 30 and not summary['image_level_ann']
    img = _load(out)['images'][0]
    assert (img['height'], img['width']) == (96, 128)
    assert cli.main(['--out', out, '--seed', '1', '--num-classes', '10',
                     '--num-train-images', '30', '--num-val-images', '20',
                     '--image-size', '96', '128', '--no-image-level',
                     '--quiet', '--reuse'])['reused']


# ---------------------------------------------------------------- default
def test_default_size_long_tail(tmp_path):
    """The default set: LVIS group proportions, ranges, val, federation."""
    # default sizes; the image-level companion set is tested on a small set
    summary = sl.make_synthetic_lvis(str(tmp_path), seed=0, image_level=False)
    root = summary['data_root']
    train, val = _load(root), _load(root, 'lvis_v1_val.json')
    cats = train['categories']
    assert len(cats) == 100 and len(train['images']) == 1200
    assert len(val['images']) == 240
    imgs, inst = _image_stats(train)
    groups = defaultdict(list)
    for c in cats:
        n = len(imgs[c['id']])
        assert c['image_count'] == n and c['instance_count'] == inst[c['id']]
        assert c['frequency'] == frequency_group(n)
        lo, hi = RANGES[c['frequency']]
        assert lo <= n <= hi
        groups[c['frequency']].append(c)
    share = {g: len(groups[g]) / len(cats) for g in 'rcf'}
    for g, target in zip('rcf', (0.28, 0.38, 0.34)):
        assert abs(share[g] - target) <= 0.03, share
    assert summary['frequency_counts'] == {g: len(groups[g]) for g in 'rcf'}
    # tail categories differ from some frequent category in one attribute
    heads = [_attrs(c['name']) for c in groups['f']]
    for c in groups['r'] + groups['c']:
        a = _attrs(c['name'])
        assert any(sum(x == y for x, y in zip(a, h)) == 2 for h in heads)
    assert len({_attrs(c['name'])[0] for c in cats}) >= 10  # shapes
    # validation: >= 5 instances of every category, train frequencies
    _, val_inst = _image_stats(val)
    assert min(val_inst[c['id']] for c in cats) >= 5
    assert val['categories'] == cats
    # federated negatives: never present; every category has some in val
    for data in (train, val):
        _check_federated_fields(data)
    neg_cats = {c for img in val['images'] for c in img['neg_category_ids']}
    assert len(neg_cats) == 100
    # occlusion and sizes: multi-part visible masks, small and medium objects
    per_image = defaultdict(int)
    for a in train['annotations'] + val['annotations']:
        per_image[a['image_id']] += 1
        assert a['area'] > 0 and min(a['bbox'][2:]) >= 1
    assert len(per_image) == 1440 and set(per_image.values()) <= {2, 3, 4, 5}
    areas = np.array([a['area'] for a in train['annotations']])
    assert (areas < 32**2).mean() > 0.2 and (areas > 32**2).mean() > 0.2
    assert summary['occluded_instances'] > 0.05 * len(areas)
    assert any(len(a['segmentation']) > 1 for a in train['annotations'])
    assert sum(len(img['not_exhaustive_category_ids']) > 0
               for img in train['images']) > 0


# ------------------------------------------------------------ dense head
def test_plan_crowds_head_only_and_mean():
    head = np.array([True, True, False, False])
    members = [[0, 2], [1, 3], [2, 3], [0, 1]] * 500
    rng = np.random.default_rng(0)
    assert sl.plan_crowds(members, head, 1.0, rng) == [[]] * len(members)
    # the default draws nothing, so the default set keeps its random streams
    assert rng.random() == np.random.default_rng(0).random()
    crowds = sl.plan_crowds(members, head, 3.0, np.random.default_rng(1))
    assert all(set(c) <= {k for k in m if head[k]}
               for c, m in zip(crowds, members))
    per_occurrence = [c.count(k) for c, m in zip(crowds, members)
                      for k in m if head[k]]
    assert max(per_occurrence) <= sl.MAX_CROWD_PER_OCCURRENCE
    # E[min(Poisson(2), 4)] = 1*p1 + 2*p2 + 3*p3 + 4*P(X >= 4) = 1.9249
    assert abs(np.mean(per_occurrence) - 1.9249) < 0.08
    with pytest.raises(ValueError, match='head_instances'):
        sl.make_synthetic_lvis('/nonexistent', head_instances=0.5)


def test_head_instances_only_add_frequent_instances(tmp_path):
    kw = dict(seed=2, num_classes=12, num_train_images=130,
              num_val_images=30, image_level=False)
    base = sl.make_synthetic_lvis(str(tmp_path / 'base'), **kw)
    dense = sl.make_synthetic_lvis(str(tmp_path / 'dense'),
                                   head_instances=3.0, **kw)
    for name in ANN_FILES[:2]:
        a = _load(base['data_root'], name)
        b = _load(dense['data_root'], name)
        # same images, same categories per image, same groups
        assert [i['id'] for i in a['images']] == [i['id'] for i in b['images']]
        present_a, _ = _image_stats(a)
        present_b, inst_b = _image_stats(b)
        assert present_a == present_b
        freq = {c['id']: c['frequency'] for c in b['categories']}
        assert ([(c['id'], c['image_count'], c['frequency'])
                 for c in a['categories']] ==
                [(c['id'], c['image_count'], c['frequency'])
                 for c in b['categories']])
        _, inst_a = _image_stats(a)
        assert 'f' in freq.values()
        for k, g in freq.items():
            if g == 'f':
                assert inst_b[k] > 1.5 * inst_a[k], (name, k)
            else:
                assert inst_b[k] == inst_a[k], (name, k)
        # the extra instances are real, exact annotations
        h, w = b['images'][0]['height'], b['images'][0]['width']
        for ann in b['annotations'][:200]:
            m = _decode(ann, h, w)
            assert m.any() and abs(float(m.sum()) - ann['area']) < 1e-6
    assert dense['params']['head_instances'] == 3.0
    # the set records its generator arguments; ensure regenerates on change
    assert not sl.ensure_synthetic_lvis(str(tmp_path / 'base'),
                                        head_instances=2.0, **kw)['reused']


# ------------------------------------------------------------ data safety
TINY = dict(num_classes=6, num_train_images=12, num_val_images=10,
            image_level=False, image_size=(96, 96))


def test_refuses_a_real_lvis_folder_and_changes_nothing(tmp_path):
    """The generator deletes COCO-named images and overwrites the LVIS
    annotation files of its folder: a folder it did not make is refused
    before a byte in it changes (no lock file, no marker either)."""
    from tests.real_lvis_folder import fingerprint, make_real_lvis_folder
    root = make_real_lvis_folder(str(tmp_path / 'lvis_v1'))
    before = fingerprint(root)
    for call in (lambda: sl.make_synthetic_lvis(root, **TINY),
                 lambda: sl.ensure_synthetic_lvis(root, **TINY)):
        with pytest.raises(sl.FolderNotOwnedError) as err:
            call()
        msg = str(err.value)
        assert root in msg and 'train2017' in msg and 'annotations' in msg
        assert fingerprint(root) == before
    with pytest.raises(SystemExit, match='not empty'):
        _cli().main(['--out', root, '--quiet'])
    with pytest.raises(SystemExit, match='not empty'):
        _cli().main(['--out', root, '--quiet', '--reuse'])
    assert fingerprint(root) == before
    # a file where the folder should be
    with pytest.raises(NotADirectoryError):
        sl.make_synthetic_lvis(osp.join(root, 'annotations',
                                        'lvis_v1_train.json'), **TINY)
    assert fingerprint(root) == before


def test_writes_only_into_an_empty_or_its_own_folder(tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    sl.make_synthetic_lvis(str(empty), seed=1, **TINY)
    marker = empty / sl.MARKER
    assert json.loads(marker.read_text())['params']['seed'] == 1
    # its own folder: regenerated in place (another seed), then reused
    sl.make_synthetic_lvis(str(empty), seed=2, **TINY)
    assert json.loads(marker.read_text())['params']['seed'] == 2
    assert sl.ensure_synthetic_lvis(str(empty), seed=2, **TINY)['reused']
    # a file of the user's beside the set stays
    (empty / 'notes.txt').write_text('mine')
    assert not sl.ensure_synthetic_lvis(str(empty), seed=3, **TINY)['reused']
    assert (empty / 'notes.txt').read_text() == 'mine'
    # an interrupted generation keeps the marker: it can be redone
    os.remove(empty / 'meta.json')
    assert not sl.ensure_synthetic_lvis(str(empty), seed=3, **TINY)['reused']
    # sets written before the marker existed carry meta.json only
    legacy = tmp_path / 'legacy'
    sl.make_synthetic_lvis(str(legacy), seed=1, **TINY)
    os.remove(legacy / sl.MARKER)
    meta = json.loads((legacy / 'meta.json').read_text())
    meta['generator'] = 'longtail_plugin.datasets.synthetic_lvis'
    (legacy / 'meta.json').write_text(json.dumps(meta))
    assert sl.ensure_synthetic_lvis(str(legacy), seed=1, **TINY)['reused']
    sl.make_synthetic_lvis(str(legacy), seed=2, **TINY)
    # a non-empty folder without either is not the generator's
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'meta.json').write_text('{"generator": "someone else"}')
    with pytest.raises(sl.FolderNotOwnedError, match='meta.json'):
        sl.make_synthetic_lvis(str(other), **TINY)
    assert os.listdir(other) == ['meta.json']


@pytest.mark.parametrize('kwargs,option', [
    (dict(val_min_instances=-1), 'val_min_instances'),
    (dict(val_min_instances=0), 'val_min_instances'),
    (dict(num_train_images=0), 'num_train_images'),
    (dict(num_val_images=-3), 'num_val_images'),
    (dict(num_classes=0), 'num_classes'),
    (dict(num_classes=5000), 'num_classes'),
    (dict(num_neg_per_image=-1), 'num_neg_per_image'),
    (dict(image_level_per_class=-1), 'image_level_per_class'),
    (dict(seed=-1), 'seed'),
    (dict(num_train_images=2.5), 'num_train_images'),
    (dict(image_size=(16, 48)), 'image_size'),
    (dict(min_objects=3, max_objects=2), 'min_objects'),
    (dict(not_exhaustive_prob=1.5), 'not_exhaustive_prob'),
    (dict(head_instances=0.5), 'head_instances'),
    (dict(num_val_images=2), 'validation images'),  # infeasible plan
])
def test_bad_arguments_name_the_option_and_create_nothing(
        tmp_path, kwargs, option):
    out = tmp_path / 'set'
    for call in (sl.make_synthetic_lvis, sl.ensure_synthetic_lvis):
        with pytest.raises(ValueError, match=option):
            call(str(out), **{**TINY, **kwargs})
        assert not out.exists()


def test_cli_rejects_negative_counts_before_creating_anything(
        tmp_path, capsys):
    out = tmp_path / 'set'
    for flag, value in (('--val-min-instances', '-1'),
                        ('--num-train-images', '0'),
                        ('--num-neg-per-image', '-2')):
        with pytest.raises(SystemExit) as err:
            _cli().main(['--out', str(out), flag, value, '--quiet'])
        assert err.value.code == 2
        assert flag in capsys.readouterr().err
    with pytest.raises(SystemExit, match='validation images'):
        _cli().main(['--out', str(out), '--num-val-images', '3', '--quiet'])
    assert not out.exists()
