"""LVIS-format test data: a tiny hand-made set used by several tests, and
generated adversarial cases for the evaluation parity tests."""
import json
from typing import Any, Dict, List, Tuple

import numpy as np

from longtail_benchmark.evaluation.lvis_shaped import (detections_from_gt,
                                                       gt_annotation)


def box_ann(ann_id, img_id, cat_id, x, y, w, h):
    poly = [x, y, x + w, y, x + w, y + h, x, y + h]
    return dict(id=ann_id, image_id=img_id, category_id=cat_id,
                bbox=[x, y, w, h], area=w * h, segmentation=[poly])


def tiny_lvis_gt() -> dict:
    """Two 100x100 images, three categories (one rare, one common, one
    frequent), one ground-truth box of each category."""
    images = [
        dict(id=1, width=100, height=100, file_name='1.jpg',
             coco_url='http://images.cocodataset.org/val2017/1.jpg',
             neg_category_ids=[3], not_exhaustive_category_ids=[]),
        dict(id=2, width=100, height=100, file_name='2.jpg',
             coco_url='http://images.cocodataset.org/val2017/2.jpg',
             neg_category_ids=[1], not_exhaustive_category_ids=[]),
    ]
    cats = [
        dict(id=1, name='rare_thing', frequency='r', image_count=3,
             instance_count=4, synset='a.n.01'),
        dict(id=2, name='common_thing', frequency='c', image_count=40,
             instance_count=50, synset='b.n.01'),
        dict(id=3, name='frequent_thing', frequency='f', image_count=500,
             instance_count=900, synset='c.n.01'),
    ]
    anns = [
        box_ann(1, 1, 1, 10, 10, 40, 40),
        box_ann(2, 1, 2, 55, 55, 40, 40),
        box_ann(3, 2, 3, 20, 20, 50, 50),
    ]
    return dict(images=images, annotations=anns, categories=cats,
                info={}, licenses=[])


def write_json(obj, path) -> str:
    with open(path, 'w') as f:
        json.dump(obj, f)
    return str(path)


def adversarial_case(seed: int = 0,
                     num_images: int = 24,
                     num_categories: int = 12,
                     image_size: Tuple[int, int] = (96, 128),
                     crowded_dets: int = 340) -> Tuple[Dict[str, Any],
                                                       List[dict]]:
    """Ground truth and detections that exercise every LVIS rule.

    Built in: a category with ground truth but no detection; a category with
    detections but no ground truth anywhere (AP NaN); images with no ground
    truth (one with no detection either, one with detections of its
    negative categories only); negative and not-exhaustive categories with
    unmatched detections; scores rounded to two decimals (many ties, also
    at the per-image cut); ``crowded_dets`` (> 300) detections on two
    images; instances in all three area ranges; duplicate detections of one
    object.

    Returns:
        ``(gt, results)``.
    """
    rng = np.random.default_rng(seed)
    h, w = image_size
    cats = [dict(id=i + 1, name=f'adv_{i + 1}', synset=f'adv_{i + 1}.n.01',
                 frequency='rcf'[i % 3], image_count=[3, 30, 300][i % 3],
                 instance_count=[3, 30, 300][i % 3])
            for i in range(num_categories)]
    no_det_cat = num_categories          # GT, never detected
    no_gt_cat = num_categories - 1       # detected, never annotated
    gt_cats = np.arange(1, num_categories - 1)  # excludes no_gt_cat
    images, anns = [], []
    ann_id = 1
    for img_id in range(1, num_images + 1):
        empty = img_id in (1, 2)
        present = [] if empty else list(rng.choice(
            gt_cats, size=rng.integers(1, 4), replace=False))
        if img_id == 3:
            present.append(no_det_cat)
        for c in present:
            for _ in range(rng.integers(1, 4)):
                scale = [(0.04, 0.1), (0.15, 0.3), (0.5, 0.8)][
                    rng.integers(3)]
                anns.append(
                    gt_annotation(rng, ann_id, img_id, c, h, w, scale))
                ann_id += 1
        absent = [c for c in range(1, num_categories + 1)
                  if c not in present]
        neg = sorted(int(c) for c in rng.choice(absent, 3, replace=False))
        if img_id % 4 == 0:
            neg = sorted(set(neg) | {no_gt_cat})
        nel = [int(present[0])] if present and img_id % 3 == 0 else []
        images.append(dict(id=img_id, width=w, height=h,
                           file_name=f'{img_id}.jpg',
                           neg_category_ids=neg,
                           not_exhaustive_category_ids=nel))
    gt = dict(info={}, licenses=[], images=images, annotations=anns,
              categories=cats)
    dets = detections_from_gt(gt, dets_per_image=40, seed=seed + 1,
                              near_gt=0.5, on_negative=0.3,
                              score_decimals=2)
    dets = [d for d in dets
            if d['image_id'] != 1 and d['category_id'] != no_det_cat]
    # image 2: no ground truth, detections of its negative categories only
    dets = [d for d in dets if d['image_id'] != 2 or d['category_id']
            in images[1]['neg_category_ids']]
    # two crowded images over the per-image cap, with tied scores at the cut
    crowd_gt = dict(gt, images=[images[4], images[5]])
    dets += detections_from_gt(crowd_gt, dets_per_image=crowded_dets,
                               seed=seed + 2, near_gt=0.4, on_negative=0.3,
                               score_decimals=1)
    # duplicates of one ground truth, same score
    a = next(a for a in anns if a['category_id'] != no_det_cat)
    import pycocotools.mask as mask_utils
    rle = mask_utils.frPyObjects(a['segmentation'], h, w)
    rle = mask_utils.merge(rle)
    rle['counts'] = rle['counts'].decode()
    for _ in range(3):
        dets.append(dict(image_id=a['image_id'],
                         category_id=a['category_id'],
                         bbox=list(a['bbox']), score=0.5,
                         segmentation=dict(rle)))
    dets = [d for d in dets if d['category_id'] != no_det_cat]
    order = rng.permutation(len(dets))
    return gt, [dets[i] for i in order]
