"""LongTailLVISMetric on a hand-made case whose APs are known."""
import json

import numpy as np
import pytest
import torch

from longtail_plugin.evaluation import LongTailLVISMetric, per_category_ap
from tests.lvis_cases import tiny_lvis_gt, write_json


def _xyxy(x, y, w, h):
    return [x, y, x + w, y + h]


def _mask(box, shape=(100, 100)):
    m = np.zeros(shape, bool)
    x1, y1, x2, y2 = (int(v) for v in box)
    m[y1:y2, x1:x2] = True
    return m


def _sample(img_id, boxes, scores, labels):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    masks = torch.from_numpy(
        np.stack([_mask(b) for b in boxes.tolist()])
        if len(boxes) else np.zeros((0, 100, 100), bool))
    return dict(img_id=img_id, ori_shape=(100, 100),
                pred_instances=dict(bboxes=boxes,
                                    scores=torch.tensor(scores),
                                    labels=torch.tensor(labels),
                                    masks=masks))


def test_known_ap_and_per_category_file(tmp_path):
    ann = write_json(tiny_lvis_gt(), tmp_path / 'val.json')
    out = tmp_path / 'per_cat.json'
    metric = LongTailLVISMetric(ann_file=ann, metric=['bbox', 'segm'],
                                per_category_file=str(out))
    metric.dataset_meta = dict(
        classes=('rare_thing', 'common_thing', 'frequent_thing'))
    # rare (label 0): a false positive scored above the true positive ->
    #   precision 1/2 at every recall level -> AP 0.5 at every IoU.
    # common (label 1): a box of IoU 40*35/(40*40) = 0.875 with its GT ->
    #   matched for IoU thresholds 0.50 ... 0.85 (8 of 10) -> AP 0.8.
    # frequent (label 2): no detection -> AP 0.
    s1 = _sample(1, [_xyxy(60, 10, 30, 30), _xyxy(10, 10, 40, 40),
                     _xyxy(55, 55, 40, 35)], [0.9, 0.8, 0.7], [0, 0, 1])
    s2 = _sample(2, [], [], [])
    metric.process({}, [s1, s2])
    res = metric.evaluate(size=2)
    for iou in ('bbox', 'segm'):
        assert res[f'lvis/{iou}_APr'] == pytest.approx(0.5, abs=1e-3)
        assert res[f'lvis/{iou}_APc'] == pytest.approx(0.8, abs=1e-3)
        assert res[f'lvis/{iou}_APf'] == pytest.approx(0.0, abs=1e-3)
        assert res[f'lvis/{iou}_AP'] == pytest.approx(1.3 / 3, abs=1e-3)

    rec = json.loads(out.read_text())
    cats = {c['name']: c for c in rec['categories']}
    assert cats['rare_thing']['group'] == 'r'
    assert cats['rare_thing']['train_image_count'] == 3
    assert cats['common_thing']['bbox_AP'] == pytest.approx(0.8)
    assert cats['frequent_thing']['segm_AP'] == pytest.approx(0.0)
    assert rec['groups']['c']['bbox_mean_AP'] == pytest.approx(0.8)


def test_empty_results_give_zero(tmp_path):
    ann = write_json(tiny_lvis_gt(), tmp_path / 'val.json')
    metric = LongTailLVISMetric(ann_file=ann, metric='bbox',
                                per_category_file=None)
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    metric.process({}, [_sample(1, [], [], []), _sample(2, [], [], [])])
    res = metric.evaluate(size=2)
    assert res['lvis/bbox_AP'] == 0.0


def test_per_category_ap_ignores_missing_gt():
    p = -np.ones((2, 3, 2, 1))
    p[:, :, 0, 0] = 0.25
    ap = per_category_ap(p)
    assert ap[0] == pytest.approx(0.25) and np.isnan(ap[1])
