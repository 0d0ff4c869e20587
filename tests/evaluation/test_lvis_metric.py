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


# ------------------------------------------ in-memory results, files on request
def _samples_with_masks():
    s1 = _sample(1, [_xyxy(60.25, 10.5, 30, 30), _xyxy(10, 10, 40, 40),
                     _xyxy(55, 55, 40, 35)], [0.9, 0.8, 0.7], [0, 0, 1])
    s1['pred_instances']['mask_scores'] = torch.tensor([0.3, 0.2, 0.1])
    s2 = _sample(2, [_xyxy(20, 20, 50, 50)], [1 / 3], [2])
    s2['pred_instances']['mask_scores'] = torch.tensor([0.25])
    return [s1, s2]


def _metric(tmp_path, **kwargs):
    ann = write_json(tiny_lvis_gt(), tmp_path / 'val.json')
    kwargs.setdefault('per_category_file', None)
    metric = LongTailLVISMetric(ann_file=ann, **kwargs)
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    return metric


def test_stored_predictions_are_compact_and_equal_mmdet_json(tmp_path):
    """process keeps arrays + one EncodedMasks per image; the detections
    built from them equal, value for value and in order, the JSON that
    MMDetection's LVISMetric writes; so does our results file."""
    from mmdet.evaluation.metrics import LVISMetric

    from longtail_plugin.evaluation.metrics.predictions import (
        EncodedMasks, predictions_to_detections, write_results_json)
    samples = _samples_with_masks()
    ours = _metric(tmp_path, metric=['bbox', 'segm'])
    ours.process({}, samples)
    stored = ours.results[0][1]
    assert isinstance(stored['rle_masks'], EncodedMasks)
    assert 'masks' not in stored
    ann = str(tmp_path / 'val.json')
    ref = LVISMetric(ann_file=ann, metric=['bbox', 'segm'])
    ref.process({}, samples)
    ref.cat_ids = ref._lvis_api.get_cat_ids()
    files = ref.results2json([r for _, r in ref.results],
                             str(tmp_path / 'ref'))
    for kind in ('bbox', 'segm'):
        with open(files[kind]) as f:
            expected = json.load(f)
        dets = predictions_to_detections([r for _, r in ours.results],
                                         ref.cat_ids, kind)
        got = dets.to_records(kind)
        for g in got:
            if 'segmentation' in g:
                g['segmentation']['counts'] = \
                    g['segmentation']['counts'].decode()
        assert got == expected
        path = write_results_json(dets, str(tmp_path / f'ours.{kind}.json'),
                                  kind)
        with open(path) as f:
            assert json.load(f) == expected


def test_results_files_only_when_asked(tmp_path, monkeypatch):
    import longtail_plugin.evaluation.metrics.lvis_metric as module

    def no_file(*args, **kwargs):
        raise AssertionError('a results file was written')

    monkeypatch.setattr(module, 'write_results_json', no_file)
    monkeypatch.setattr(module.LVISMetric, 'results2json', no_file)
    metric = _metric(tmp_path, metric=['bbox', 'segm'])
    metric.process({}, _samples_with_masks())
    res = metric.evaluate(size=2)
    assert res['lvis/bbox_APc'] == pytest.approx(0.8, abs=1e-3)
    monkeypatch.undo()

    # outfile_prefix: files for the IoU types evaluated only
    metric = _metric(tmp_path, metric='bbox',
                     outfile_prefix=str(tmp_path / 'out' / 'val'))
    metric.process({}, _samples_with_masks())
    metric.evaluate(size=2)
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == \
        ['val.bbox.json']
    # format_only: the files, no evaluation
    metric = _metric(tmp_path, metric='segm', format_only=True,
                     outfile_prefix=str(tmp_path / 'fmt' / 'val'))
    metric.process({}, _samples_with_masks())
    assert metric.evaluate(size=2) == {}
    with open(tmp_path / 'fmt' / 'val.segm.json') as f:
        assert len(json.load(f)) == 4


def test_gathered_results_give_the_same_numbers(tmp_path):
    """Distributed: each rank's results pickled and concatenated on rank 0
    (MMEngine's collect_results) evaluate as on one process."""
    import pickle
    single = _metric(tmp_path, metric=['bbox', 'segm'])
    single.process({}, _samples_with_masks())
    expected = single.compute_metrics(list(single.results))
    ranks = [_metric(tmp_path, metric=['bbox', 'segm']) for _ in range(2)]
    for rank, sample in zip(ranks, _samples_with_masks()):
        rank.process({}, [sample])
    gathered = [r for rank in ranks
                for r in pickle.loads(pickle.dumps(rank.results))]
    assert ranks[0].compute_metrics(gathered) == expected
