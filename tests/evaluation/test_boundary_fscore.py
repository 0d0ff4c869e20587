"""Boundary F-score."""
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
import pytest

from longtail_plugin.evaluation.functional import (boundary_fscore,
                                                   boundary_precision_recall,
                                                   evaluate_boundary_fscore,
                                                   load_predictions,
                                                   mask_boundary)

ROOT = Path(__file__).resolve().parents[2]


def _square(shift=0, size=40):
    m = np.zeros((size, size), np.uint8)
    m[10:20, 10 + shift:20 + shift] = 1
    return m


def test_mask_boundary_ring_and_image_border():
    b = mask_boundary(_square())
    assert b.sum() == 36  # ring of a 10x10 square
    assert not b[11:19, 11:19].any()
    full = np.ones((4, 5), np.uint8)
    # outside the image is background: the image border is a contour
    assert mask_boundary(full).sum() == 4 * 5 - 2 * 3


def test_identical_masks_score_one():
    f = boundary_fscore(_square(), _square())
    assert np.allclose(f, 1.0)
    assert np.allclose(boundary_fscore(np.zeros((5, 5)), np.zeros((5, 5))),
                       1.0)
    assert np.allclose(boundary_fscore(_square(), np.zeros((40, 40))), 0.0)


def test_shift_by_two_pixels_hand_computed():
    # 10x10 square shifted right by 2 px. Of the 36 contour pixels of the
    # prediction, within 1 px of the GT contour are: 8+1 on the top row,
    # 8+1 on the bottom row, 2 on the left column (next to the GT's top and
    # bottom rows), none on the right column -> 20/36. Every contour pixel
    # is within 2 px. By symmetry recall = precision.
    p, r = boundary_precision_recall(_square(2), _square(), (1, 2, 3, 5))
    assert np.allclose(p, [20 / 36, 1, 1, 1])
    assert np.allclose(r, p)
    f = boundary_fscore(_square(2), _square(), (1, 3))
    assert np.allclose(f, [5 / 9, 1.0])
    # cropping is only an optimisation
    assert np.allclose(
        boundary_fscore(_square(2), _square(), (1, 3), crop=False), f)


def _ann():
    return dict(
        images=[dict(id=1, height=40, width=40)],
        categories=[
            dict(id=3, name='a', frequency='r'),
            dict(id=7, name='b', frequency='f')
        ],
        annotations=[
            # polygon of the 10x10 square [10, 20) x [10, 20)
            dict(
                id=1,
                image_id=1,
                category_id=3,
                iscrowd=0,
                segmentation=[[10, 10, 20, 10, 20, 20, 10, 20]]),
            dict(
                id=2,
                image_id=1,
                category_id=7,
                iscrowd=0,
                segmentation=[[25, 25, 35, 25, 35, 35, 25, 35]]),
        ])


def _rle(m):
    return mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))


def test_dataset_protocol_pkl_format():
    gt_poly = mask_utils.decode(
        mask_utils.merge(
            mask_utils.frPyObjects([[10, 10, 20, 10, 20, 20, 10, 20]], 40,
                                   40)))
    other = np.zeros((40, 40), np.uint8)
    other[26:34, 26:34] = 1  # inside GT 2, IoU ~0.6
    results = [
        dict(
            img_id=1,
            pred_instances=dict(
                labels=np.array([0, 0, 1]),
                scores=np.array([0.9, 0.95, 0.1]),
                masks=[_rle(gt_poly), _rle(_square(25)), _rle(other)]))
    ]
    preds = load_predictions(results, [3, 7])
    assert [p['category_id'] for p in preds] == [3, 3, 7]
    out = evaluate_boundary_fscore(_ann(), preds, tolerances=(1, 3))
    # GT 1 matched to the identical prediction (best IoU, not best score);
    # GT 2 has only a prediction below score_thr -> miss
    assert out['num_gt'] == 2 and out['num_matched'] == 1
    assert out['F@1'] == pytest.approx(1.0)
    assert out['F@1_all'] == pytest.approx(0.5)
    assert out['F@1_r'] == pytest.approx(1.0)
    assert out['num_matched_f'] == 0
    out = evaluate_boundary_fscore(_ann(), preds, score_thr=0.05)
    assert out['num_matched'] == 2 and out['num_matched_f'] == 1
    assert 0 < out['F@1_f'] < out['F@3_f'] <= 1


@pytest.mark.parametrize('label', [-1, 2])
def test_label_outside_classes_is_an_error(label):
    """-1 used to become the last category silently (issue 20)."""
    from longtail_plugin.evaluation.backends import InvalidDetectionsError
    results = [dict(img_id=4, pred_instances=dict(
        labels=np.array([0, label]), scores=np.array([0.9, 0.8]),
        masks=[_rle(_square(5)), _rle(_square(6))]))]
    with pytest.raises(InvalidDetectionsError,
                       match=f'image_id 4.*labels is {label}, outside'):
        load_predictions(results, [3, 7])


def test_eval_boundary_tool(tmp_path):
    ann_file = tmp_path / 'ann.json'
    ann_file.write_text(json.dumps(_ann()))
    m = mask_utils.decode(
        mask_utils.frPyObjects([[10, 10, 20, 10, 20, 20, 10, 20]], 40, 40))
    m = m[..., 0] if m.ndim == 3 else m
    pkl = tmp_path / 'results.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump([
            dict(
                img_id=1,
                pred_instances=dict(
                    labels=np.array([0]),
                    scores=np.array([0.9]),
                    masks=[_rle(m)]))
        ], f)
    out_json = tmp_path / 'metrics.json'
    subprocess.run([
        sys.executable,
        str(ROOT / 'tools' / 'eval_boundary.py'),
        str(pkl),
        str(ann_file), '--out',
        str(out_json)
    ],
                   check=True,
                   cwd=ROOT,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)),
                   capture_output=True)
    metrics = json.loads(out_json.read_text())
    assert metrics['F@1'] == pytest.approx(1.0)
    assert metrics['F@5_all'] == pytest.approx(0.5)
