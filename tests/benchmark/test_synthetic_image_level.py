"""Tests of the image-level companion of the synthetic set
(:mod:`longtail_benchmark.synthetic.image_level`) and its runner hook.

A small detection set (12 categories) for most tests; hand-made category
lists for the box tightness (saturated plain colours, every shape) and for
the dense-head numbers (the categories of the dense-head set, re-planned).
"""
import filecmp
import importlib.util
import json
import os
import os.path as osp
from collections import Counter

import cv2
import numpy as np
import pytest

from longtail_benchmark import synthetic as sl
from longtail_benchmark.synthetic import image_level as il
from longtail_benchmark.synthetic.planning import plan_set
from longtail_plugin.utils.category_info import frequency_group
from tests.real_lvis_folder import fingerprint, make_real_lvis_folder

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SYN = osp.join(ROOT, 'configs', 'baselines',
               'mask-rcnn_r18_fpn_softmax_400it_synthetic-lvis.py')
SMALL = dict(num_classes=12, num_train_images=40, num_val_images=30,
             image_level=False)
PER_GROUP = dict(r=4, c=3, f=2)
# a pixel is the object's when it is this far (RGB distance) from the
# background plane: the pixel noise stays below 40 (measured), saturated
# plain objects are more than 75 away
THRESHOLD = 55.0
SATURATED = ('red', 'orange', 'yellow', 'lime', 'green', 'teal', 'cyan',
             'blue', 'purple', 'magenta')


def _read(root):
    with open(osp.join(root, il.ANN_FILE)) as f:
        return json.load(f)


def _det_cats(det_root):
    with open(osp.join(det_root, 'annotations', 'lvis_v1_train.json')) as f:
        return {c['id']: c for c in json.load(f)['categories']}


def _image(root, rec):
    img = cv2.imread(osp.join(root, il.IMAGE_FOLDER, rec['file_name']))
    assert img is not None, rec['file_name']
    return img[..., ::-1].astype(np.float64)


def _residual(img, box):
    """RGB distance of every pixel from a plane per channel fitted to the
    pixels more than 2 px outside ``box`` (the background is a linear
    gradient plus noise)."""
    h, w = img.shape[:2]
    x, y, bw, bh = (int(v) for v in box)
    out = np.ones((h, w), bool)
    out[max(y - 2, 0):y + bh + 2, max(x - 2, 0):x + bw + 2] = False
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([np.ones(h * w), xx.ravel(), yy.ravel()], 1)
    fit = np.stack([
        a @ np.linalg.lstsq(a[out.ravel()], img[..., c].ravel()[out.ravel()],
                            rcond=None)[0] for c in range(3)
    ], -1).reshape(h, w, 3)
    return np.linalg.norm(img - fit, axis=-1)


def _outside_by_more_than_1px(shape, box):
    x, y, bw, bh = (int(v) for v in box)
    out = np.ones(shape, bool)
    out[max(y - 1, 0):y + bh + 1, max(x - 1, 0):x + bw + 1] = False
    return out


def _write_det(path, cats):
    os.makedirs(osp.join(path, 'annotations'), exist_ok=True)
    with open(osp.join(path, 'annotations', 'lvis_v1_train.json'), 'w') as f:
        json.dump({'categories': cats, 'images': [], 'annotations': []}, f)
    return str(path)


@pytest.fixture(scope='module')
def det(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('sets') / 'det')
    sl.make_synthetic_lvis(root, seed=3, **SMALL)
    return root


@pytest.fixture(scope='module')
def companion(det):
    out = det + '_imagelevel'
    summary = il.make_image_level_set(out, det, seed=5,
                                      images_per_group=PER_GROUP)
    return out, summary


# ------------------------------------------------------------ categories
def test_specs_recovered_from_names_match_the_generator_plan(det):
    with open(osp.join(det, 'annotations', 'lvis_v1_train.json')) as f:
        params = json.load(f)['info']['generator_params']
    plan = plan_set(params)
    planned = {plan.cat_ids[k]: s for k, s in enumerate(plan.specs)}
    cats = il.category_specs(osp.join(det, 'annotations',
                                      'lvis_v1_train.json'))
    assert [c['id'] for c in cats] == list(range(1, 13))
    for c in cats:
        assert c['spec'].key == planned[c['id']].key, c['name']
        assert c['frequency'] == _det_cats(det)[c['id']]['frequency']


def test_thin_shape_names_are_recovered(tmp_path):
    params = dict(seed=1, num_classes=30, num_train_images=120,
                  num_val_images=60, image_size=[96, 96], image_level=False,
                  image_level_per_class=0, min_objects=2, max_objects=5,
                  val_min_instances=5, num_neg_per_image=10,
                  not_exhaustive_prob=0.02, image_format='jpg',
                  head_instances=1.0, thin_shapes=True)
    plan = plan_set(params)
    cats = [{'id': plan.cat_ids[k], 'name': s.name, 'frequency': 'r'}
            for k, s in enumerate(plan.specs)]
    assert any(s.shape in sl.THIN_SHAPES for s in plan.specs)
    got = il.category_specs(osp.join(_write_det(tmp_path / 'd', cats),
                                     'annotations', 'lvis_v1_train.json'))
    planned = {plan.cat_ids[k]: s.key for k, s in enumerate(plan.specs)}
    assert {c['id']: c['spec'].key for c in got} == planned


# ---------------------------------------------------------------- content
def test_counts_per_frequency_group(det, companion):
    root, summary = companion
    data = _read(root)
    det_cats = _det_cats(det)
    counts = Counter(r['pos_category_ids'][0] for r in data['images'])
    expected = {cid: PER_GROUP[c['frequency']] for cid, c in det_cats.items()}
    assert dict(counts) == expected
    groups = Counter(c['frequency'] for c in det_cats.values())
    assert summary['images_per_group'] == {
        g: groups[g] * PER_GROUP[g] for g in 'rcf'}
    assert summary['num_images'] == len(data['images']) == sum(
        expected.values())
    assert summary['num_boxed'] == len(data['images'])  # box_fraction 1


def test_json_format_and_image_files(det, companion):
    root, _ = companion
    data = _read(root)
    det_cats = _det_cats(det)
    assert [(c['id'], c['name']) for c in data['categories']] == sorted(
        (i, c['name']) for i, c in det_cats.items())
    ids = [r['id'] for r in data['images']]
    assert ids == list(range(1, len(ids) + 1))
    assert sorted(os.listdir(osp.join(root, il.IMAGE_FOLDER))) == sorted(
        r['file_name'] for r in data['images'])
    for r in data['images']:
        assert set(r) == {'id', 'file_name', 'height', 'width',
                          'pos_category_ids', 'bbox'}
        assert (r['height'], r['width']) == _image(root, r).shape[:2] == (
            160, 160)
        assert len(r['pos_category_ids']) == 1
        assert r['pos_category_ids'][0] in det_cats
        x, y, w, h = r['bbox']
        assert all(isinstance(v, float) for v in r['bbox'])
        assert x >= 0 and y >= 0 and w > 0 and h > 0
        assert x + w <= r['width'] and y + h <= r['height']


def test_image_level_dataset_reads_it(det, companion):
    from longtail_plugin.datasets.image_level_dataset import \
        ImageLevelDataset
    root, _ = companion
    data = _read(root)
    ds = ImageLevelDataset(ann_file=il.ANN_FILE, data_root=root,
                           data_prefix=dict(img=il.IMAGE_FOLDER + '/'),
                           pipeline=[])
    names = sl.load_class_names(osp.join(det, 'annotations',
                                         'lvis_v1_train.json'))
    assert tuple(ds.metainfo['classes']) == names  # detection label order
    assert len(ds) == len(data['images'])
    by_id = {c['id']: c['name'] for c in data['categories']}
    for i in (0, len(ds) - 1):
        info, rec = ds.get_data_info(i), data['images'][i]
        assert osp.isfile(info['img_path']) and info['image_level']
        inst, = info['instances']
        assert names[inst['bbox_label']] == by_id[rec['pos_category_ids'][0]]
        x, y, w, h = rec['bbox']
        assert inst['bbox'] == pytest.approx([x, y, x + w, y + h])


def test_every_object_lies_inside_its_box(companion):
    """Pixels: nothing more than 1 px outside the box differs from the
    background, and the box holds object pixels (every category, every
    texture)."""
    root, _ = companion
    for r in _read(root)['images']:
        res = _residual(_image(root, r), r['bbox'])
        outside = _outside_by_more_than_1px(res.shape, r['bbox'])
        assert res[outside].max() < THRESHOLD, r['file_name']
        assert (res[~outside] > THRESHOLD).sum() >= 20, r['file_name']


def test_boxes_are_tight_within_1px(tmp_path):
    """Objects of saturated plain categories of every shape (thin ones
    included) are told from the background pixel by pixel: the box holds
    them all (up to 1 px) and each of its four sides touches them (within
    1 px)."""
    shapes = list(sl.SHAPES) + list(sl.THIN_SHAPES)
    cats = [{'id': i + 1, 'frequency': 'rcf'[i % 3],
             'name': f'{SATURATED[i % len(SATURATED)]}_plain_{s}'}
            for i, s in enumerate(shapes)]
    det = _write_det(tmp_path / 'det', cats)
    out = str(tmp_path / 'il')
    il.make_image_level_set(out, det, seed=2,
                            images_per_group=dict(r=6, c=6, f=6))
    data = _read(out)
    assert {r['pos_category_ids'][0] for r in data['images']} == set(
        range(1, len(shapes) + 1))
    for r in data['images']:
        res = _residual(_image(out, r), r['bbox'])
        assert res[_outside_by_more_than_1px(res.shape,
                                             r['bbox'])].max() < THRESHOLD
        x, y, w, h = (int(v) for v in r['bbox'])
        sides = (res[y:y + h, x:x + 2], res[y:y + h, x + w - 2:x + w],
                 res[y:y + 2, x:x + w], res[y + h - 2:y + h, x:x + w])
        for side in sides:
            assert side.max() > THRESHOLD, r['file_name']


def test_deterministic_and_box_fraction_changes_the_json_only(
        det, companion, tmp_path):
    root, summary = companion
    again = str(tmp_path / 'again')
    il.make_image_level_set(again, det, seed=5, images_per_group=PER_GROUP)
    names = sorted(os.listdir(osp.join(root, il.IMAGE_FOLDER)))
    match, mismatch, errors = filecmp.cmpfiles(
        osp.join(root, il.IMAGE_FOLDER), osp.join(again, il.IMAGE_FOLDER),
        names, shallow=False)
    assert match == names and not mismatch and not errors
    assert filecmp.cmp(osp.join(root, il.ANN_FILE),
                       osp.join(again, il.ANN_FILE), shallow=False)
    # another seed: other images and labels order
    other = str(tmp_path / 'other')
    il.make_image_level_set(other, det, seed=6, images_per_group=PER_GROUP)
    assert _read(other)['images'] != _read(root)['images']
    # half the boxes: same images, exactly half of the records boxed
    half = str(tmp_path / 'half')
    s = il.make_image_level_set(half, det, seed=5, box_fraction=0.5,
                                images_per_group=PER_GROUP)
    match, _, _ = filecmp.cmpfiles(osp.join(root, il.IMAGE_FOLDER),
                                   osp.join(half, il.IMAGE_FOLDER), names,
                                   shallow=False)
    assert match == names
    full = {r['id']: r for r in _read(root)['images']}
    recs = _read(half)['images']
    boxed = [r for r in recs if 'bbox' in r]
    assert len(boxed) == s['num_boxed'] == int(np.floor(len(recs) / 2 + .5))
    for r in recs:
        assert r['pos_category_ids'] == full[r['id']]['pos_category_ids']
        if 'bbox' in r:
            assert r['bbox'] == full[r['id']]['bbox']
    none = il.make_image_level_set(str(tmp_path / 'none'), det, seed=5,
                                   box_fraction=0.0,
                                   images_per_group=PER_GROUP)
    assert none['num_boxed'] == 0
    assert not any('bbox' in r for r in _read(str(tmp_path /
                                                  'none'))['images'])


def test_dense_head_companion_over_represents_the_tail(tmp_path):
    """The categories of the dense-head set (re-planned from its generator
    parameters) with the default parameters: 28 x 24 + 38 x 16 + 34 x 8 =
    1552 images, 43 % rare (detection: under 2 % of the image-category
    pairs), in well under 30 s."""
    params = dict(seed=0, num_classes=100, num_train_images=1200,
                  num_val_images=240, image_size=[160, 160],
                  image_level=True, image_level_per_class=10,
                  min_objects=2, max_objects=5, val_min_instances=5,
                  num_neg_per_image=10, not_exhaustive_prob=0.02,
                  image_format='jpg', head_instances=3.0)
    plan = plan_set(params)
    counts = Counter(k for labels in plan.train_labels for k in set(labels))
    cats = [{'id': plan.cat_ids[k], 'name': s.name,
             'image_count': counts[k]} for k, s in enumerate(plan.specs)]
    det = _write_det(tmp_path / 'synthetic_lvis_densehead', cats)
    out = il.default_image_level_dir(det)
    assert out == str(tmp_path / 'synthetic_lvis_densehead_imagelevel')
    s = il.make_image_level_set(out, det)
    assert s['categories_per_group'] == {'r': 28, 'c': 38, 'f': 34}
    assert s['images_per_group'] == {'r': 672, 'c': 608, 'f': 272}
    assert s['num_images'] == 1552 == len(_read(out)['images'])
    assert s['seconds'] < 30
    group = {c['id']: frequency_group(c['image_count']) for c in cats}
    det_pairs = Counter()
    for c in cats:
        det_pairs[group[c['id']]] += c['image_count']
    det_rare = det_pairs['r'] / sum(det_pairs.values())
    per_cat = Counter(r['pos_category_ids'][0] for r in _read(out)['images'])
    il_rare = sum(n for cid, n in per_cat.items()
                  if group[cid] == 'r') / s['num_images']
    assert det_rare < 0.02 and il_rare == pytest.approx(672 / 1552)
    # per category: a rare one has 3x the images of a frequent one here,
    # against at most 1/10 of them in the detection set
    by_group = {g: {n for cid, n in per_cat.items() if group[cid] == g}
                for g in 'rcf'}
    assert by_group == {'r': {24}, 'c': {16}, 'f': {8}}


# ------------------------------------------------------- reuse and folders
def test_ensure_reuses_and_regenerates(det, tmp_path):
    out = str(tmp_path / 'il')
    kw = dict(seed=1, images_per_group=PER_GROUP)
    first = il.ensure_image_level_set(out, det, **kw)
    assert not first['reused']
    ann = osp.join(out, il.ANN_FILE)
    mtime = os.stat(ann).st_mtime_ns
    second = il.ensure_image_level_set(out, det, **kw)
    assert second['reused'] and os.stat(ann).st_mtime_ns == mtime
    assert second['num_images'] == first['num_images']
    # a changed parameter, a missing image, fewer images: regenerated, and
    # no stale image stays
    assert not il.ensure_image_level_set(out, det, seed=1, box_fraction=0.5,
                                         images_per_group=PER_GROUP)['reused']
    img_dir = osp.join(out, il.IMAGE_FOLDER)
    os.remove(osp.join(img_dir, sorted(os.listdir(img_dir))[0]))
    assert not il.ensure_image_level_set(out, det, **kw)['reused']
    fewer = il.ensure_image_level_set(out, det, seed=1,
                                      images_per_group=dict(r=1, c=1, f=1))
    assert not fewer['reused']
    assert len(os.listdir(img_dir)) == fewer['num_images'] == 12
    # another detection set (other categories): regenerated
    other = str(tmp_path / 'det2')
    sl.make_synthetic_lvis(other, seed=4, **SMALL)
    assert not il.ensure_image_level_set(
        out, other, seed=1, images_per_group=dict(r=1, c=1, f=1))['reused']
    with pytest.raises(TypeError, match='unknown'):
        il.ensure_image_level_set(out, det, sed=1)


def test_refuses_foreign_folders_and_changes_nothing(det, tmp_path):
    real = make_real_lvis_folder(str(tmp_path / 'lvis_v1'))
    before = fingerprint(real)
    for call in (il.make_image_level_set, il.ensure_image_level_set):
        with pytest.raises(sl.FolderNotOwnedError) as err:
            call(real, det, images_per_group=PER_GROUP)
        assert real in str(err.value) and 'train2017' in str(err.value)
        assert fingerprint(real) == before
    with pytest.raises(SystemExit, match='not empty'):
        _cli().main(['--detection', det, '--out', real, '--quiet'])
    assert fingerprint(real) == before
    # another detection set's folder is not the companion generator's
    other = str(tmp_path / 'det_other')
    sl.make_synthetic_lvis(other, seed=1, **SMALL)
    other_before = fingerprint(other)
    with pytest.raises(sl.FolderNotOwnedError, match=il.MARKER):
        il.make_image_level_set(other, det)
    assert fingerprint(other) == other_before
    # the detection set itself, or a folder inside it
    det_before = fingerprint(det)
    for out in (det, osp.join(det, 'image_level')):
        with pytest.raises(ValueError, match='separate folders'):
            il.ensure_image_level_set(out, det)
    assert fingerprint(det) == det_before
    # a file where the folder should be
    with pytest.raises(NotADirectoryError):
        il.make_image_level_set(osp.join(real, 'annotations',
                                         'lvis_v1_train.json'), det)
    assert fingerprint(real) == before
    # a user's file beside an own set stays through a regeneration
    own = tmp_path / 'own'
    il.make_image_level_set(str(own), det, images_per_group=PER_GROUP)
    (own / 'notes.txt').write_text('mine')
    il.make_image_level_set(str(own), det, seed=9,
                            images_per_group=PER_GROUP)
    assert (own / 'notes.txt').read_text() == 'mine'
    # its own marker only: the detection generator refuses the companion
    assert (own / il.MARKER).is_file() and not (own / sl.MARKER).exists()
    own_before = fingerprint(str(own))
    with pytest.raises(sl.FolderNotOwnedError):
        sl.make_synthetic_lvis(str(own), **SMALL)
    assert fingerprint(str(own)) == own_before


@pytest.mark.parametrize('kwargs,option', [
    (dict(seed=-1), 'seed'),
    (dict(images_per_group=dict(r=1, c=1)), 'images_per_group'),
    (dict(images_per_group=dict(r=-1, c=1, f=1)), "images_per_group\\['r'\\]"),
    (dict(images_per_group=dict(r=0, c=0, f=0)), 'no image'),
    (dict(box_fraction=1.5), 'box_fraction'),
    (dict(image_size=16), 'image_size'),
    (dict(image_size=(160, 160, 3)), 'image_size'),
    (dict(size_range=(0.3, 0.1)), 'size_range'),
    (dict(image_format='gif'), 'image_format'),
])
def test_bad_arguments_name_the_option_and_create_nothing(
        det, tmp_path, kwargs, option):
    out = tmp_path / 'il'
    for call in (il.make_image_level_set, il.ensure_image_level_set):
        with pytest.raises(ValueError, match=option):
            call(str(out), det, **kwargs)
        assert not out.exists()


def test_bad_detection_files_are_named(tmp_path):
    real = make_real_lvis_folder(str(tmp_path / 'lvis_v1'))
    with pytest.raises(ValueError, match='aerosol_can') as err:
        il.make_image_level_set(str(tmp_path / 'a'), real)
    assert 'lvis_v1_train.json' in str(err.value)
    no_group = _write_det(tmp_path / 'g', [{'id': 1,
                                            'name': 'red_plain_disk'}])
    with pytest.raises(ValueError, match='frequency group'):
        il.make_image_level_set(str(tmp_path / 'b'), no_group)
    with pytest.raises(FileNotFoundError, match='lvis_v1_train.json'):
        il.make_image_level_set(str(tmp_path / 'c'), str(tmp_path))
    assert not any(osp.exists(tmp_path / n) for n in 'abc')


def _cli():
    spec = importlib.util.spec_from_file_location(
        'make_synthetic_image_level',
        osp.join(ROOT, 'tools', 'make_synthetic_image_level.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


def test_cli(det, tmp_path, capsys):
    out = str(tmp_path / 'cli')
    s = _cli().main(['--detection', det, '--out', out, '--seed', '2',
                     '--images-per-group', '2', '1', '1', '--image-size',
                     '64', '96', '--box-fraction', '0.5', '--quiet'])
    text = capsys.readouterr().out
    assert 'generated' in text and 'time:' in text
    rec = _read(out)['images'][0]
    assert (rec['height'], rec['width']) == (64, 96)
    assert s['params']['images_per_group'] == {'r': 2, 'c': 1, 'f': 1}
    assert _cli().main(['--detection', det, '--out', out, '--seed', '2',
                        '--images-per-group', '2', '1', '1',
                        '--image-size', '64', '96', '--box-fraction', '0.5',
                        '--quiet', '--reuse'])['reused']
    # default folder: beside the detection set, named from its folder or
    # from its annotation file
    det2 = _write_det(tmp_path / 'det2', [
        {'id': 1, 'name': 'red_plain_disk', 'frequency': 'r'}])
    for detection in (det2, osp.join(det2, 'annotations',
                                     'lvis_v1_train.json')):
        s = _cli().main(['--detection', detection, '--image-size', '48',
                         '--quiet'])
        assert s['data_root'] == str(tmp_path / 'det2_imagelevel')
        assert s['num_images'] == 24


# ------------------------------------------------------------------ runner
CONFIG = """_base_ = {base!r}
data_root = {root!r}
synthetic_lvis = dict(num_train_images=40, num_val_images=30,
                      image_level=False, image_size=(96, 96))
synthetic_image_level = dict({extra}images_per_group=dict(r=2, c=1, f=1),
                             image_size=64)
image_level_root = {il_root!r}
image_level_dataset = dict(type='ImageLevelDataset',
                           data_root=image_level_root,
                           ann_file='annotations/image_level.json',
                           data_prefix=dict(img='images/'))
train_dataloader = dict(dataset=dict(data_root=data_root))
"""


def _config(tmp_path, name, extra='', il_root='det_imagelevel/',
            root='det/'):
    path = tmp_path / name
    path.write_text(CONFIG.format(base=SYN, extra=extra, il_root=il_root,
                                  root=root))
    return str(path)


def test_runner_generates_reuses_moves_and_refuses(tmp_path, monkeypatch):
    from longtail_benchmark.runner import (image_level_sets, prepare_config,
                                           prepare_data)
    from mmengine.config import Config
    monkeypatch.chdir(tmp_path)
    cfg = _config(tmp_path, 'a.py')
    roots = prepare_data([cfg], num_classes=12, progress=None)
    assert roots[cfg][0] == 'det'
    data = _read('det_imagelevel')
    groups = Counter(c['frequency'] for c in _det_cats('det').values())
    assert len(data['images']) == 2 * groups['r'] + groups['c'] + groups['f']
    assert data['images'][0]['height'] == 64
    ann = osp.join('det_imagelevel', il.ANN_FILE)
    mtime = os.stat(ann).st_mtime_ns
    prepare_data([cfg], num_classes=12, progress=None)  # reused
    assert os.stat(ann).st_mtime_ns == mtime
    # --data-root: the companion moves with its detection set
    run = Config.fromfile(prepare_config(cfg, str(tmp_path / 'run'), 0,
                                         data_root=str(tmp_path / 'x')))
    assert run.image_level_dataset.data_root == str(tmp_path /
                                                   'x_imagelevel') + '/'
    assert run.synthetic_image_level.out == str(tmp_path / 'x_imagelevel')
    same = Config.fromfile(prepare_config(cfg, str(tmp_path / 'run2'), 0,
                                          data_root='det'))
    assert same.image_level_dataset.data_root == 'det_imagelevel/'
    prepare_data([cfg], data_root='x', num_classes=12, progress=None)
    assert len(_read('x_imagelevel')['images']) == len(data['images'])
    # two configs asking one folder for different sets; a folder inside
    # the detection set; bad arguments: refused before anything is written
    other = _config(tmp_path, 'b.py', extra='seed=3, ')
    with pytest.raises(ValueError, match='different image-level sets'):
        image_level_sets([cfg, other])
    inside = _config(tmp_path, 'c.py', extra="out='det/il', ")
    with pytest.raises(ValueError, match='separate folders'):
        prepare_data([inside], num_classes=12, progress=None)
    bad = _config(tmp_path, 'd.py', extra='box_fraction=2.0, ')
    with pytest.raises(ValueError, match='d.py.*box_fraction'):
        prepare_data([bad], num_classes=12, progress=None)
    # a foreign companion folder stops everything: no detection set made
    os.makedirs('mine')
    with open(osp.join('mine', 'photo.jpg'), 'wb') as f:
        f.write(b'a user\'s photo')
    foreign = _config(tmp_path, 'e.py', extra="out='mine/', ",
                      il_root='mine/', root='det_new/')
    before = fingerprint(str(tmp_path))
    with pytest.raises(sl.FolderNotOwnedError, match='photo.jpg'):
        prepare_data([foreign], num_classes=12, progress=None)
    assert fingerprint(str(tmp_path)) == before
    assert not osp.exists('det_new')
