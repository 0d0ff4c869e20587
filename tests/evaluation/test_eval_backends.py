"""Every LVIS evaluation backend against the official LVIS API.

Reference: the official API exactly as the metric used it before backends
existed (``lvis.LVISResults`` with its own 300-per-image cap, then
``LVISEval``). Each offered backend must give the same AP, AP50, AP75,
APs/m/l, APr/c/f and per-category AP (to 1e-6) for bbox and segm on the
synthetic validation set, on adversarial cases and on a larger random set;
also through the metric's in-memory path (no JSON) against the official API
on the file MMDetection's LVISMetric writes for the same predictions. The
two protocols (Boundary AP, fixed AP) are checked on hand-made cases.
"""
import copy
import json
import logging

import numpy as np
import pytest
import torch

from longtail_plugin.evaluation import LongTailLVISMetric
from longtail_plugin.evaluation.backends import (
    BACKENDS, DEFAULT_BACKEND, SUMMARY_KEYS, BackendUnavailableError,
    get_backend, limit_dets_per_category, per_category_ap, resolve_backend)
from longtail_plugin.evaluation.backends.lvis_official import (
    _lvis_from_dict, mask_to_boundary)
from longtail_benchmark.evaluation.lvis_shaped import (detections_from_gt,
                                                       lvis_scale_case)
from tests.lvis_cases import adversarial_case

FAST = [n for n in BACKENDS if n != 'lvis']
BOUNDARY = [n for n in BACKENDS if 'boundary' in BACKENDS[n].iou_types]
TOL = 1e-6


def _need(name):
    if not BACKENDS[name].is_available():
        pytest.skip(f'{BACKENDS[name].package} not installed')


def _official(gt, results, iou_type, max_dets=300):
    """The official LVIS API as the metric ran it before (reference)."""
    from lvis import LVISResults

    from longtail_plugin.compat.lvis_numpy import LVISEvalCompat
    lvis_gt = _lvis_from_dict(copy.deepcopy(gt))
    lvis_dt = LVISResults(lvis_gt, copy.deepcopy(results), max_dets=max_dets)
    ev = LVISEvalCompat(lvis_gt, lvis_dt, iou_type)
    ev.run()
    return ({k: float(ev.results[k]) for k in SUMMARY_KEYS},
            per_category_ap(ev.eval['precision']))


def _assert_same(result, ref_summary, ref_ap, where=''):
    for k in SUMMARY_KEYS:
        assert result.summary[k] == pytest.approx(ref_summary[k], abs=TOL), \
            f'{where} {k}'
    ap = result.per_category_ap
    assert np.array_equal(np.isnan(ap), np.isnan(ref_ap)), where
    ok = ~np.isnan(ref_ap)
    np.testing.assert_allclose(ap[ok], ref_ap[ok], atol=TOL, rtol=0,
                               err_msg=where)


def _bbox_only(dets):
    return [{k: v for k, v in d.items() if k != 'segmentation'}
            for d in dets]


# ---------------------------------------------------------------- data sets
@pytest.fixture(scope='module')
def synthetic_val(tmp_path_factory):
    """The plugin's synthetic validation set (small) and detections made by
    perturbing its ground truth."""
    from longtail_benchmark.synthetic import make_synthetic_lvis
    out = tmp_path_factory.mktemp('synthetic_lvis')
    info = make_synthetic_lvis(str(out), seed=0, num_classes=20,
                               num_train_images=120, num_val_images=40,
                               image_size=(64, 64), image_level=False,
                               image_format='png')
    with open(info['val_ann']) as f:
        gt = json.load(f)
    return gt, detections_from_gt(gt, dets_per_image=60, seed=1)


@pytest.fixture(scope='module')
def cases(synthetic_val):
    """name -> (gt, detections with masks)."""
    big = lvis_scale_case(120, num_categories=80, image_size=(96, 128),
                          seed=5)
    return {
        'synthetic_val': synthetic_val,
        'adversarial_0': adversarial_case(0),
        'adversarial_1': adversarial_case(1, num_images=16,
                                          crowded_dets=420),
        'random_large': (big, detections_from_gt(big, 300, seed=6)),
    }


@pytest.fixture(scope='module')
def references(cases):
    """Official results, computed once per (case, iou type)."""
    logging.getLogger('lvis').setLevel(logging.WARNING)
    refs = {}
    for name, (gt, dets) in cases.items():
        refs[name, 'segm'] = _official(gt, dets, 'segm')
        refs[name, 'bbox'] = _official(gt, _bbox_only(dets), 'bbox')
    return refs


# ------------------------------------------------------------- the generator
def test_adversarial_case_has_what_it_promises():
    gt, dets = adversarial_case(0)
    per_img = {}
    for d in dets:
        per_img[d['image_id']] = per_img.get(d['image_id'], 0) + 1
    assert max(per_img.values()) > 300                 # over the cap
    assert 1 not in per_img                            # empty image
    gt_cats = {a['category_id'] for a in gt['annotations']}
    det_cats = {d['category_id'] for d in dets}
    assert gt_cats - det_cats                          # GT, no detection
    assert det_cats - gt_cats                          # detection, no GT
    assert any(im['not_exhaustive_category_ids'] for im in gt['images'])
    scores = [d['score'] for d in dets]
    assert len(set(scores)) < len(scores) / 10         # many ties
    areas = [a['area'] for a in gt['annotations']]
    assert min(areas) < 32 ** 2 and max(areas) > 96 ** 2 // 2


# --------------------------------------------------------------- parity
@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
@pytest.mark.parametrize('backend', list(BACKENDS))
@pytest.mark.parametrize('case', ['synthetic_val', 'adversarial_0',
                                  'adversarial_1', 'random_large'])
def test_backend_matches_official_api(backend, iou_type, case, cases,
                                      references):
    _need(backend)
    gt, dets = cases[case]
    if iou_type == 'bbox':
        dets = _bbox_only(dets)
    result = get_backend(backend).evaluate(gt, dets, iou_type)
    _assert_same(result, *references[case, iou_type],
                 where=f'{backend}/{case}/{iou_type}')


@pytest.mark.parametrize('backend', list(BACKENDS))
def test_backend_reads_results_file_like_official_api(backend, cases,
                                                      references, tmp_path):
    """A results file: read, validated and capped like a list."""
    _need(backend)
    gt, dets = cases['adversarial_1']
    path = tmp_path / 'results.segm.json'
    path.write_text(json.dumps(dets))
    gt_before = copy.deepcopy(gt)
    result = get_backend(backend).evaluate(gt, str(path), 'segm')
    _assert_same(result, *references['adversarial_1', 'segm'],
                 where=f'{backend}/file')
    assert gt == gt_before   # the caller's ground truth is not modified


@pytest.mark.parametrize('backend', list(BACKENDS))
def test_empty_results_give_none(backend, cases):
    _need(backend)
    gt, _ = cases['adversarial_0']
    assert get_backend(backend).evaluate(gt, [], 'bbox') is None


@pytest.mark.parametrize('backend', list(BACKENDS))
def test_image_subset_matches_official_api(backend, cases):
    _need(backend)
    gt, dets = cases['adversarial_0']
    keep = [im['id'] for im in gt['images']][::2]
    sub = dict(gt, images=[im for im in gt['images'] if im['id'] in keep],
               annotations=[a for a in gt['annotations']
                            if a['image_id'] in keep])
    ref = _official(sub, [d for d in dets if d['image_id'] in keep], 'segm')
    result = get_backend(backend).evaluate(gt, dets, 'segm', img_ids=keep)
    _assert_same(result, *ref, where=f'{backend}/subset')


# ------------------------------------------------------- hand-made cases
def _square(x, y, s=40, shape=(100, 100)):
    m = np.zeros(shape, np.uint8)
    m[y:y + s, x:x + s] = 1
    return m


def _rle(mask):
    import pycocotools.mask as mask_utils
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    r['counts'] = r['counts'].decode()
    return r


def _image(img_id, neg=()):
    return dict(id=img_id, width=100, height=100, file_name=f'{img_id}.jpg',
                neg_category_ids=list(neg), not_exhaustive_category_ids=[])


def _cat(cat_id, freq):
    return dict(id=cat_id, name=f'c{cat_id}', synset=f'c{cat_id}.n.01',
                frequency=freq, image_count=1, instance_count=1)


def _gt_box(ann_id, img_id, cat_id, x, y, s=40):
    return dict(id=ann_id, image_id=img_id, category_id=cat_id,
                bbox=[x, y, s, s], area=s * s,
                segmentation=[[x, y, x + s, y, x + s, y + s, x, y + s]])


def _det(img_id, cat_id, x, y, score, s=40):
    return dict(image_id=img_id, category_id=cat_id,
                bbox=[float(x), float(y), float(s), float(s)], score=score,
                segmentation=_rle(_square(x, y, s)))


def boundary_case():
    """One 100x100 image, three 40x40 ground-truth squares at (10, 10), one
    per category; detection of category 1 exact, of category 2 shifted by
    1 px, of category 3 by 3 px (to the right).

    By hand: boundary width d = round(0.02 * sqrt(100^2 + 100^2)) = 3, so a
    square's boundary is the 40x40 square minus its 34x34 core: 444 px.
    Shift 1: mask IoU 39*40 / (3200 - 1560) = 0.951; the two boundaries
    share the 39x40 overlap minus the union of the cores (35x34): 370 px,
    boundary IoU 370 / (888 - 370) = 0.714. Shift 3: mask IoU 37*40 / 1720
    = 0.860; shared boundary 37*40 - 37*34 = 222, IoU 222 / 666 = 1/3.
    Over IoU thresholds 0.50:0.05:0.95: segm AP per category 1, 1 (0.951 >=
    0.95), 0.8 (up to 0.85); Boundary AP (min of the two IoUs) 1, 0.5
    (0.714: 0.50 ... 0.70), 0 (1/3 < 0.5).
    """
    gt = dict(info={}, licenses=[], images=[_image(1)],
              categories=[_cat(1, 'r'), _cat(2, 'c'), _cat(3, 'f')],
              annotations=[_gt_box(i, 1, i, 10, 10) for i in (1, 2, 3)])
    dets = [_det(1, 1, 10, 10, 0.9), _det(1, 2, 11, 10, 0.8),
            _det(1, 3, 13, 10, 0.7)]
    return gt, dets


def test_mask_to_boundary_by_hand():
    b = mask_to_boundary(_square(10, 10), 0.02)
    assert b.sum() == 40 * 40 - 34 * 34
    assert b[10:50, 10:50].sum() == b.sum() and b[13:47, 13:47].sum() == 0
    # a mask cut by the image border has a boundary along the border
    assert mask_to_boundary(_square(0, 0), 0.02)[0, :40].all()


@pytest.mark.parametrize('backend', BOUNDARY)
def test_boundary_ap_by_hand(backend):
    _need(backend)
    gt, dets = boundary_case()
    b = get_backend(backend)
    segm = b.evaluate(gt, dets, 'segm')
    bnd = b.evaluate(gt, dets, 'boundary')
    np.testing.assert_allclose(segm.per_category_ap, [1.0, 1.0, 0.8],
                               atol=TOL)
    np.testing.assert_allclose(bnd.per_category_ap, [1.0, 0.5, 0.0],
                               atol=TOL)
    assert bnd.summary['AP'] == pytest.approx(0.5, abs=TOL)
    assert (bnd.summary['APr'], bnd.summary['APc'], bnd.summary['APf']) == \
        pytest.approx((1.0, 0.5, 0.0), abs=TOL)
    assert segm.summary['AP'] == pytest.approx(2.8 / 3, abs=TOL)


@pytest.mark.parametrize('backend', [b for b in BOUNDARY if b != 'lvis'])
@pytest.mark.parametrize('case', ['synthetic_val', 'adversarial_0'])
def test_boundary_ap_matches_reference(backend, case, cases):
    """Boundary AP of the fast backends = the LVIS API with Boundary IoU."""
    _need(backend)
    gt, dets = cases[case]
    ref = get_backend('lvis').evaluate(gt, dets, 'boundary')
    result = get_backend(backend).evaluate(gt, dets, 'boundary')
    _assert_same(result, ref.summary, ref.per_category_ap,
                 where=f'{backend}/{case}/boundary')


def fixed_ap_case():
    """Three 100x100 images; category 1 (rare) has one 40x40 object in
    each, category 2 (frequent) one object in image 3.

    Detections (all exact boxes unless said): category 1: image 1 score 0.9,
    image 2 score 0.8 and a false positive 0.5, image 3 score 0.3;
    category 2, image 3: 0.95 and two false positives 0.94, 0.93.

    By hand, 101 recall levels 0:0.01:1, every IoU threshold alike:
    * per-image cap 3 (standard protocol with max_dets=3): image 3 keeps
      0.95, 0.94, 0.93 and loses category 1's 0.3; category 1 has
      precision 1 up to recall 2/3 -> AP 67/101; category 2 AP 1.
    * fixed AP, 4 per category, no per-image cap: category 1 keeps all
      four: precision 1, 1, 2/3, 3/4 at recall 1/3, 2/3, 2/3, 1 ->
      interpolated 1 up to 2/3 and 3/4 beyond -> (67 + 34 * 0.75) / 101.
    * fixed AP, 3 per category: category 1 loses 0.3 -> 67/101 again.
    """
    gt = dict(info={}, licenses=[], images=[_image(i) for i in (1, 2, 3)],
              categories=[_cat(1, 'r'), _cat(2, 'f')],
              annotations=[_gt_box(1, 1, 1, 10, 10), _gt_box(2, 2, 1, 10, 10),
                           _gt_box(3, 3, 1, 10, 10),
                           _gt_box(4, 3, 2, 55, 55)])
    dets = [_det(1, 1, 10, 10, 0.9), _det(2, 1, 10, 10, 0.8),
            _det(2, 1, 60, 60, 0.5, s=30), _det(3, 1, 10, 10, 0.3),
            _det(3, 2, 55, 55, 0.95), _det(3, 2, 5, 60, 0.94, s=30),
            _det(3, 2, 60, 5, 0.93, s=30)]
    return gt, dets


FIXED_CASES = [  # (max_dets per image, max_dets_per_cat, AP of category 1)
    (3, None, 67 / 101),
    (-1, 4, (67 + 34 * 0.75) / 101),
    (-1, 3, 67 / 101),
]


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
@pytest.mark.parametrize('backend', list(BACKENDS))
def test_fixed_ap_by_hand(backend, iou_type):
    _need(backend)
    gt, dets = fixed_ap_case()
    for max_dets, per_cat, ap1 in FIXED_CASES:
        r = get_backend(backend).evaluate(gt, dets, iou_type,
                                          max_dets=max_dets,
                                          max_dets_per_cat=per_cat)
        np.testing.assert_allclose(r.per_category_ap, [ap1, 1.0], atol=TOL)
        assert r.summary['APr'] == pytest.approx(ap1, abs=TOL)
        assert r.summary['AP'] == pytest.approx((ap1 + 1) / 2, abs=TOL)


def _official_fixed_ap(gt, dets, iou_type, per_cat):
    """Fixed AP as its authors ran it: top ``per_cat`` per category, then
    the LVIS API with no per-image cap."""
    return _official(gt, limit_dets_per_category(copy.deepcopy(dets),
                                                 per_cat),
                     iou_type, max_dets=-1)


@pytest.mark.parametrize('backend', FAST)
@pytest.mark.parametrize('case,iou_type,per_cat', [
    ('adversarial_1', 'segm', 60), ('random_large', 'bbox', 200)])
def test_fixed_ap_matches_official_api(backend, case, iou_type, per_cat,
                                       cases):
    """Per-category caps that cut, and images over 300 detections (kept:
    fixed AP has no per-image cap)."""
    _need(backend)
    gt, dets = cases[case]
    if iou_type == 'bbox':
        dets = _bbox_only(dets)
    ref = _official_fixed_ap(gt, dets, iou_type, per_cat)
    r = get_backend(backend).evaluate(gt, dets, iou_type, max_dets=-1,
                                      max_dets_per_cat=per_cat)
    _assert_same(r, *ref, where=f'{backend}/{case}/fixed')


# ------------------------------------------------------------- selection
def test_unknown_backend_names_config_key():
    with pytest.raises(KeyError, match='val_evaluator.backend'):
        LongTailLVISMetric(metric='bbox', backend='nope')


def test_missing_package_names_pip_package(monkeypatch):
    monkeypatch.setattr(BACKENDS['hotcoco'], 'is_available',
                        classmethod(lambda cls: False))
    with pytest.raises(BackendUnavailableError,
                       match=r'val_evaluator\.backend.*pip install hotcoco'):
        LongTailLVISMetric(metric='bbox', backend='hotcoco')
    # 'auto' moves on to the next installed backend
    assert resolve_backend('auto', 'bbox').name != 'hotcoco'


def test_auto_prefers_default_backend():
    _need(DEFAULT_BACKEND)
    assert resolve_backend('auto', 'bbox').name == DEFAULT_BACKEND
    assert 'boundary' in resolve_backend('auto', 'boundary').iou_types


# ---------------------------------------------------------------- metric
def _samples_from(gt, dets, cat_ids):
    """Data samples whose predictions are ``dets`` (label = index of the
    category in ``cat_ids``)."""
    import pycocotools.mask as mask_utils
    label = {c: i for i, c in enumerate(cat_ids)}
    by_img = {im['id']: [] for im in gt['images']}
    for d in dets:
        by_img[d['image_id']].append(d)
    samples = []
    for im in gt['images']:
        ds = by_img[im['id']]
        h, w = im['height'], im['width']
        boxes = [[x, y, x + bw, y + bh] for x, y, bw, bh in
                 (d['bbox'] for d in ds)]
        masks = np.stack([mask_utils.decode(d['segmentation']).astype(bool)
                          for d in ds]) if ds else np.zeros((0, h, w), bool)
        samples.append(dict(
            img_id=im['id'], ori_shape=(h, w),
            pred_instances=dict(
                bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(
                    -1, 4),
                scores=torch.tensor([d['score'] for d in ds],
                                    dtype=torch.float32),
                labels=torch.tensor([label[d['category_id']] for d in ds],
                                    dtype=torch.long),
                masks=torch.from_numpy(masks))))
    return samples


def _run_metric(gt, dets, tmp_path, backend, **kwargs):
    ann = tmp_path / 'val.json'
    ann.write_text(json.dumps(gt))
    out = tmp_path / f'per_cat_{backend}.json'
    metric = LongTailLVISMetric(ann_file=str(ann), backend=backend,
                                per_category_file=str(out), **kwargs)
    cats = sorted(gt['categories'], key=lambda c: c['id'])
    metric.dataset_meta = dict(classes=tuple(c['name'] for c in cats))
    samples = _samples_from(gt, dets, metric._lvis_api.get_cat_ids())
    metric.process({}, samples)
    res = metric.evaluate(size=len(samples))
    return res, json.loads(out.read_text())


def test_metric_same_per_category_json_with_every_backend(tmp_path, cases):
    gt, dets = cases['adversarial_0']
    runs = {}
    for backend in BACKENDS:
        if BACKENDS[backend].is_available():
            runs[backend] = _run_metric(gt, dets, tmp_path, backend,
                                        metric=['bbox', 'segm'])
    ref_res, ref_json = runs.pop('lvis')
    assert ref_json['evaluation']['backends'] == dict(bbox='lvis',
                                                      segm='lvis')
    for backend, (res, record) in runs.items():
        assert record['evaluation']['backends']['segm'] == backend
        assert res == pytest.approx(ref_res, abs=1e-9), backend
        assert record['summary'] == pytest.approx(ref_json['summary'])
        assert record['groups'].keys() == ref_json['groups'].keys()
        for g in record['groups']:
            for k, v in record['groups'][g].items():
                assert v == pytest.approx(ref_json['groups'][g][k],
                                          abs=TOL), (backend, g, k)
        for a, b in zip(record['categories'], ref_json['categories']):
            assert a.keys() == b.keys()
            for k in a:
                if isinstance(b[k], float):
                    assert a[k] == pytest.approx(b[k], abs=TOL), (backend, k)
                else:
                    assert a[k] == b[k], (backend, k)


@pytest.mark.parametrize('backend', ['auto', 'lvis'])
def test_metric_boundary_and_fixed_ap_options(tmp_path, backend):
    gt, dets = boundary_case()
    res, record = _run_metric(gt, dets, tmp_path, backend,
                              metric=['segm', 'boundary'])
    assert res['lvis/segm_AP'] == pytest.approx(0.933, abs=1e-3)
    assert res['lvis/boundary_AP'] == pytest.approx(0.5, abs=1e-3)
    assert res['lvis/boundary_APc'] == pytest.approx(0.5, abs=1e-3)
    cats = {c['id']: c for c in record['categories']}
    assert cats[2]['boundary_AP'] == pytest.approx(0.5)
    assert record['evaluation']['boundary_dilation_ratio'] == 0.02

    gt, dets = fixed_ap_case()
    res, record = _run_metric(gt, dets, tmp_path, backend, metric='bbox',
                              max_dets=3)
    assert res['lvis/bbox_APr'] == pytest.approx(67 / 101, abs=1e-3)
    res, record = _run_metric(gt, dets, tmp_path, backend, metric='bbox',
                              fixed_ap=True, max_dets_per_cat=4)
    assert res['lvis/bbox_fixed_APr'] == pytest.approx(92.5 / 101, abs=1e-3)
    assert 'lvis/bbox_AP' not in res
    assert record['evaluation']['protocol'] == 'fixed_ap'
    assert record['categories'][0]['bbox_fixed_AP'] == pytest.approx(
        92.5 / 101)


# ------------------------------------------------- metric, in-memory path
def _mmdet_results_json(gt, samples, kind, tmp_path):
    """What MMDetection's LVISMetric writes for these samples (its
    process + results2json): the reference's input."""
    from mmdet.evaluation.metrics import LVISMetric
    ann = tmp_path / 'gt_mmdet.json'
    ann.write_text(json.dumps(gt))
    m = LVISMetric(ann_file=str(ann), metric=['bbox', 'segm'])
    m.process({}, copy.deepcopy(samples))
    m.cat_ids = m._lvis_api.get_cat_ids()
    files = m.results2json([r for _, r in m.results],
                           str(tmp_path / 'mmdet'))
    with open(files[kind]) as f:
        return json.load(f)


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
@pytest.mark.parametrize('backend', list(BACKENDS))
def test_metric_in_memory_matches_official_api(backend, iou_type, cases,
                                               tmp_path):
    """The metric hands detections over in memory; the reference is the
    official API on the JSON file MMDetection's LVISMetric writes for the
    same predictions (300-per-image cap with ties at the cut included)."""
    _need(backend)
    gt, dets = cases['adversarial_1']
    cat_ids = sorted(c['id'] for c in gt['categories'])
    samples = _samples_from(gt, dets, cat_ids)
    ref_summary, ref_ap = _official(
        gt, _mmdet_results_json(gt, samples, iou_type, tmp_path), iou_type)
    res, record = _run_metric(gt, dets, tmp_path, backend, metric=iou_type)
    for k in SUMMARY_KEYS:
        assert res[f'lvis/{iou_type}_{k}'] == pytest.approx(
            round(ref_summary[k], 3), abs=1e-9), k
    ap = np.array([np.nan if c[f'{iou_type}_AP'] is None
                   else c[f'{iou_type}_AP'] for c in record['categories']])
    assert np.array_equal(np.isnan(ap), np.isnan(ref_ap))
    ok = ~np.isnan(ref_ap)
    np.testing.assert_allclose(ap[ok], ref_ap[ok], atol=TOL, rtol=0)


def test_named_backend_without_iou_type_fails_at_build():
    """One policy (metric = resolve_backend): an error naming the config key
    and the backends that have the IoU type."""
    with pytest.raises(ValueError, match=r"val_evaluator\.backend='hotcoco'"
                       r".*'boundary'.*'vernier'"):
        LongTailLVISMetric(metric=['bbox', 'boundary'], backend='hotcoco')
    with pytest.raises(ValueError, match="'boundary'"):
        resolve_backend('hotcoco', 'boundary')


def test_caps_match_lvis_results():
    """The numpy per-image cap = lvis.LVISResults.limit_dets_per_image
    (selection and order), with ties at the cut."""
    from lvis import LVISResults

    from longtail_plugin.evaluation.backends import limit_dets_per_image
    rng = np.random.default_rng(0)
    anns = [dict(image_id=int(i), category_id=int(c), score=float(s), n=k)
            for k, (i, c, s) in enumerate(zip(
                rng.integers(0, 6, 900), rng.integers(1, 4, 900),
                np.round(rng.random(900), 1)))]
    for cap in (1, 50, 150, 300):
        ref = LVISResults.limit_dets_per_image(None, anns, cap)
        assert [a['n'] for a in limit_dets_per_image(anns, cap)] == \
            [a['n'] for a in ref]
