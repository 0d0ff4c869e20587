"""Bad detections: one behaviour whichever the backend (issue 20, item 4).

Before validation in the backend base, a NaN box crashed hotcoco
(``invalid type: null``), gave AP 0.933 on lvis and vernier and 0.767 on
faster-coco-eval; a NaN score passed the official API silently; an image id
outside the ground truth, a missing ``score`` and an inf score each did
something else per backend; from the metric a label >= C raised a bare
IndexError and -1 silently became the last category. Now every case raises
``InvalidDetectionsError`` naming the detection's image and the field, for
every installed backend, from a results list and from the metric.
"""
import copy
import math

import numpy as np
import pytest
import torch

from longtail_plugin.evaluation import LongTailLVISMetric
from longtail_plugin.evaluation.backends import (BACKENDS, Detections,
                                                 InvalidDetectionsError,
                                                 get_backend)
from tests.lvis_cases import tiny_lvis_gt, write_json

INSTALLED = [n for n, b in BACKENDS.items() if b.is_available()]


def _rle(x, y, s, shape=(100, 100)):
    import pycocotools.mask as mask_utils
    m = np.zeros(shape, np.uint8)
    m[y:y + s, x:x + s] = 1
    r = mask_utils.encode(np.asfortranarray(m))
    r['counts'] = r['counts'].decode()
    return r


def _good():
    """Valid detections on tiny_lvis_gt (images 1, 2; categories 1-3)."""
    return [
        dict(image_id=1, category_id=1, bbox=[10., 10., 40., 40.], score=.9,
             segmentation=_rle(10, 10, 40)),
        dict(image_id=1, category_id=2, bbox=[55., 55., 40., 40.], score=.8,
             segmentation=_rle(55, 55, 40)),
        dict(image_id=2, category_id=3, bbox=[20., 20., 50., 50.], score=.7,
             segmentation=_rle(20, 20, 50)),
    ]


def _set(i, **fields):
    def edit(dets):
        dets[i].update(fields)
        return dets
    return edit


def _drop(i, field):
    def edit(dets):
        del dets[i][field]
        return dets
    return edit


# (name, edit of _good(), IoU type, field named, image named)
BAD = [
    ('nan box', _set(1, bbox=[55., math.nan, 40., 40.]), 'bbox', 'bbox', 1),
    ('inf box', _set(2, bbox=[20., 20., math.inf, 50.]), 'bbox', 'bbox', 2),
    ('negative width', _set(2, bbox=[20., 20., -5., 50.]), 'bbox', 'bbox',
     2),
    ('nan score', _set(1, score=math.nan), 'bbox', 'score', 1),
    ('inf score', _set(2, score=math.inf), 'segm', 'score', 2),
    ('null score', _set(1, score=None), 'bbox', 'score', 1),
    ('string score', _set(1, score='high'), 'bbox', 'score', 1),
    ('missing score', _drop(2, 'score'), 'bbox', 'score', 2),
    ('missing bbox', _drop(1, 'bbox'), 'bbox', 'bbox', 1),
    ('missing category', _drop(0, 'category_id'), 'segm', 'category_id',
     1),
    ('missing mask', _drop(2, 'segmentation'), 'segm', 'segmentation', 2),
    ('unknown image', _set(1, image_id=7), 'bbox', 'image_id', 7),
    ('unknown category', _set(2, category_id=4), 'segm', 'category_id', 2),
    ('float category', _set(2, category_id=2.5), 'bbox', 'category_id', 2),
    ('mask of another size', _set(0, segmentation=_rle(1, 1, 5, (50, 60))),
     'segm', 'segmentation', 1),
    ('polygon mask', _set(0, segmentation=[[1, 1, 5, 1, 5, 5]]), 'segm',
     'segmentation', 1),
]


@pytest.mark.parametrize('backend', INSTALLED)
@pytest.mark.parametrize('name,edit,iou_type,field,image', BAD,
                         ids=[b[0] for b in BAD])
def test_bad_detection_same_error_on_every_backend(backend, name, edit,
                                                   iou_type, field, image):
    gt = tiny_lvis_gt()
    gt_before = copy.deepcopy(gt)
    dets = edit(_good())
    with pytest.raises(InvalidDetectionsError) as err:
        get_backend(backend).evaluate(gt, dets, iou_type)
    msg = str(err.value)
    assert f"'{field}'" in msg, msg
    assert f'image_id {image}' in msg, msg
    assert gt == gt_before


@pytest.mark.parametrize('backend', INSTALLED)
def test_valid_detections_pass(backend):
    for iou_type in ('bbox', 'segm'):
        r = get_backend(backend).evaluate(tiny_lvis_gt(), _good(), iou_type)
        assert r.summary['AP'] == pytest.approx(1.0)


def test_error_counts_the_other_bad_detections():
    dets = _good()
    for d in dets:
        d['score'] = math.nan
    with pytest.raises(InvalidDetectionsError, match='2 more detections'):
        get_backend('lvis').evaluate(tiny_lvis_gt(), dets, 'bbox')


def test_detections_in_memory_validated_too():
    d = Detections.from_records(_good(), 'bbox')
    d.scores[0] = np.inf
    with pytest.raises(InvalidDetectionsError, match="image_id 1.*'score'"):
        get_backend('lvis').evaluate(tiny_lvis_gt(), d, 'bbox')


# ------------------------------------------------------------ metric path
def _metric(tmp_path, backend, metric='bbox'):
    ann = write_json(tiny_lvis_gt(), tmp_path / 'val.json')
    m = LongTailLVISMetric(ann_file=ann, metric=metric, backend=backend,
                           per_category_file=None)
    m.dataset_meta = dict(classes=('a', 'b', 'c'))
    return m


def _sample(img_id, boxes, scores, labels):
    return dict(img_id=img_id, ori_shape=(100, 100),
                pred_instances=dict(
                    bboxes=torch.tensor(boxes, dtype=torch.float32),
                    scores=torch.tensor(scores, dtype=torch.float32),
                    labels=torch.tensor(labels)))


@pytest.mark.parametrize('backend', INSTALLED)
@pytest.mark.parametrize('label', [3, 7, -1])
def test_metric_label_outside_classes(tmp_path, backend, label):
    m = _metric(tmp_path, backend)
    m.process({}, [_sample(1, [[10, 10, 50, 50]], [.9], [0]),
                   _sample(2, [[1, 1, 5, 5], [2, 2, 9, 9]], [.5, .4],
                           [2, label])])
    with pytest.raises(InvalidDetectionsError,
                       match=r'image_id 2.*labels is '
                       f'{label}, outside \\[0, 3\\)'):
        m.evaluate(size=2)


@pytest.mark.parametrize('backend', INSTALLED)
def test_metric_non_finite_box(tmp_path, backend):
    m = _metric(tmp_path, backend)
    m.process({}, [_sample(1, [[10, 10, 50, 50]], [.9], [0]),
                   _sample(2, [[1, 1, float('nan'), 5]], [.5], [2])])
    with pytest.raises(InvalidDetectionsError,
                       match=r"image_id 2\): field 'bbox' is not finite"):
        m.evaluate(size=2)


def test_metric_image_not_in_annotation_file(tmp_path):
    m = _metric(tmp_path, 'auto')
    m.process({}, [_sample(5, [[10, 10, 50, 50]], [.9], [0])])
    with pytest.raises(InvalidDetectionsError,
                       match=r"image_id 5\): field 'image_id' 5 is not an "
                       'image of the ground truth'):
        m.evaluate(size=1)
