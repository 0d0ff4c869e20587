"""Synthetic LVIS-format ground truth and detections for evaluation tests.

Two generators, both deterministic for a seed:

* :func:`lvis_scale_case`: the shape of an LVIS v1 val evaluation (1,203
  categories in LVIS's rare/common/frequent proportions, about 12 instances
  of about 3 categories per image, federated ``neg_category_ids`` and
  ``not_exhaustive_category_ids``, 300 detections per image of which some
  are near a ground truth and most are of categories the image does not
  label), for timing the backends (``tools/benchmark_eval.py``).
* :func:`adversarial_case`: small cases built to hit every rule of the LVIS
  protocol at once (categories with no detection or no ground truth,
  negative and not-exhaustive categories, tied scores, more detections per
  image than the cap, empty images, instances in every area range), for
  the parity tests.

Masks are polygons rasterised with pycocotools (ground truth) and
compressed RLE (detections), as in an LVIS results file.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

__all__ = ['lvis_scale_case', 'adversarial_case', 'detections_from_gt',
           'LVIS_V1_GROUP_SIZES']

#: Number of rare, common and frequent categories of LVIS v1.
LVIS_V1_GROUP_SIZES = (337, 461, 405)


def _categories(num: int, rng: np.random.Generator) -> List[dict]:
    sizes = np.array(LVIS_V1_GROUP_SIZES, float)
    counts = np.floor(sizes / sizes.sum() * num).astype(int)
    counts[2] += num - counts.sum()
    freqs = ['r'] * counts[0] + ['c'] * counts[1] + ['f'] * counts[2]
    rng.shuffle(freqs)
    image_count = {'r': 5, 'c': 50, 'f': 500}
    return [dict(id=i + 1, name=f'cat_{i + 1}', synset=f'cat_{i + 1}.n.01',
                 frequency=f, image_count=image_count[f],
                 instance_count=2 * image_count[f])
            for i, f in enumerate(freqs)]


def _polygon(rng: np.random.Generator, x: float, y: float, w: float,
             h: float, n: int = 10) -> List[float]:
    """A star-shaped polygon inside the box (x, y, w, h)."""
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = rng.uniform(0.55, 1.0, n)
    cx, cy = x + w / 2, y + h / 2
    px = cx + w / 2 * r * np.cos(ang)
    py = cy + h / 2 * r * np.sin(ang)
    return np.round(np.stack([px, py], 1).ravel(), 2).tolist()


def _rles(polys: Sequence[List[float]], h: int, w: int) -> List[dict]:
    import pycocotools.mask as mask_utils
    if not polys:
        return []
    rles = mask_utils.frPyObjects([list(p) for p in polys], h, w)
    for r in rles:
        r['counts'] = r['counts'].decode()
    return rles


def _random_box(rng: np.random.Generator, h: int, w: int,
                scale: Tuple[float, float]) -> List[float]:
    s = min(h, w)
    bw = rng.uniform(*scale) * s * rng.uniform(0.6, 1.6)
    bh = rng.uniform(*scale) * s * rng.uniform(0.6, 1.6)
    bw, bh = min(bw, w - 1), min(bh, h - 1)
    x = rng.uniform(0, w - bw)
    y = rng.uniform(0, h - bh)
    return [float(x), float(y), float(bw), float(bh)]


def _gt_annotation(rng: np.random.Generator, ann_id: int, img_id: int,
                   cat_id: int, h: int, w: int,
                   scale: Tuple[float, float]) -> dict:
    import pycocotools.mask as mask_utils
    x, y, bw, bh = _random_box(rng, h, w, scale)
    poly = _polygon(rng, x, y, bw, bh)
    rle = mask_utils.frPyObjects([poly], h, w)[0]
    area = float(mask_utils.area(rle))
    bbox = [float(v) for v in mask_utils.toBbox(rle)]
    return dict(id=ann_id, image_id=img_id, category_id=int(cat_id),
                segmentation=[poly], area=area, bbox=bbox)


def detections_from_gt(gt: Dict[str, Any],
                       dets_per_image: int = 300,
                       seed: int = 0,
                       with_masks: bool = True,
                       near_gt: float = 0.3,
                       on_negative: float = 0.2,
                       score_decimals: int = 0) -> List[dict]:
    """Detections for ``gt``: perturbed ground truth and random boxes.

    Args:
        gt: LVIS-format ground truth dict.
        dets_per_image: detections per image.
        seed: random seed.
        with_masks: add a compressed-RLE ``segmentation`` (a polygon inside
            the box) to each detection.
        near_gt: fraction of detections that perturb a ground-truth box of
            the image (same category 80% of the time; the mask is the
            object's polygon moved onto the perturbed box).
        on_negative: fraction on a category of the image's
            ``neg_category_ids``; the rest are of random categories.
        score_decimals: round scores to this many decimals (ties) when > 0.

    Returns:
        A list of result dicts (``image_id``, ``category_id``, ``bbox``,
        ``score`` and optionally ``segmentation``).
    """
    rng = np.random.default_rng(seed)
    cat_ids = np.array(sorted(c['id'] for c in gt['categories']))
    by_img: Dict[int, List[dict]] = {}
    for a in gt['annotations']:
        by_img.setdefault(a['image_id'], []).append(a)
    out: List[dict] = []
    for im in gt['images']:
        h, w = im['height'], im['width']
        anns = by_img.get(im['id'], [])
        neg = im.get('neg_category_ids', [])
        kinds = rng.random(dets_per_image)
        boxes, cats, polys = [], [], []
        for k in kinds:
            if anns and k < near_gt:
                a = anns[rng.integers(len(anns))]
                x, y, bw, bh = a['bbox']
                jx, jy = rng.normal(0, 0.08, 2)
                sx, sy = np.exp(rng.normal(0, 0.12, 2))
                bw2, bh2 = max(bw * sx, 1.0), max(bh * sy, 1.0)
                x2 = float(np.clip(x + jx * bw, 0, w - bw2))
                y2 = float(np.clip(y + jy * bh, 0, h - bh2))
                box = [x2, y2, float(bw2), float(bh2)]
                cat = a['category_id'] if rng.random() < 0.8 else int(
                    rng.choice(cat_ids))
                seg = a.get('segmentation')
                if with_masks and isinstance(seg, list) and seg:
                    # the object's own outline, moved onto the new box
                    p = np.asarray(max(seg, key=len), float).reshape(-1, 2)
                    p = (p - [x, y]) / [max(bw, 1e-6), max(bh, 1e-6)]
                    p = p * [bw2, bh2] + [x2, y2]
                    boxes.append(box)
                    cats.append(cat)
                    polys.append(np.round(p.ravel(), 2).tolist())
                    continue
            elif neg and k < near_gt + on_negative:
                box = _random_box(rng, h, w, (0.05, 0.4))
                cat = int(rng.choice(neg))
            else:
                box = _random_box(rng, h, w, (0.05, 0.4))
                cat = int(rng.choice(cat_ids))
            boxes.append(box)
            cats.append(cat)
            if with_masks:
                polys.append(_polygon(rng, *box))
        scores = rng.random(len(boxes)) ** 2
        if score_decimals > 0:
            scores = np.round(scores, score_decimals)
        rles = _rles(polys, h, w) if with_masks else []
        for i, box in enumerate(boxes):
            d = dict(image_id=im['id'], category_id=int(cats[i]),
                     bbox=[round(v, 2) for v in box],
                     score=float(np.float32(scores[i])))
            if with_masks:
                d['segmentation'] = rles[i]
            out.append(d)
    return out


def lvis_scale_case(num_images: int,
                    num_categories: int = 1203,
                    instances_per_image: float = 12.0,
                    categories_per_image: float = 3.0,
                    num_neg_per_image: int = 5,
                    image_size: Tuple[int, int] = (480, 640),
                    seed: int = 0) -> Dict[str, Any]:
    """An LVIS v1 val-shaped ground truth of ``num_images`` images.

    Categories are drawn with weights 1 / 10 / 100 for rare / common /
    frequent; each image holds about ``categories_per_image`` categories
    with ``instances_per_image`` instances in all (small, medium and large),
    ``num_neg_per_image`` verified-absent categories, and one
    not-exhaustive category on one image in ten.
    """
    rng = np.random.default_rng(seed)
    cats = _categories(num_categories, rng)
    weight = np.array([{'r': 1.0, 'c': 10.0, 'f': 100.0}[c['frequency']]
                       for c in cats])
    weight /= weight.sum()
    cat_ids = np.array([c['id'] for c in cats])
    h, w = image_size
    images, anns = [], []
    ann_id = 1
    for img_id in range(1, num_images + 1):
        k = max(1, rng.poisson(categories_per_image))
        present = rng.choice(cat_ids, size=k, replace=False, p=weight)
        n_inst = max(k, rng.poisson(instances_per_image))
        labels = list(present) + list(rng.choice(present, n_inst - k))
        for c in labels:
            scale = [(0.03, 0.08), (0.08, 0.25), (0.25, 0.6)][
                rng.integers(3)]
            anns.append(_gt_annotation(rng, ann_id, img_id, c, h, w, scale))
            ann_id += 1
        absent = np.setdiff1d(cat_ids, present)
        neg = rng.choice(absent, size=num_neg_per_image, replace=False)
        nel = [int(present[0])] if rng.random() < 0.1 else []
        images.append(dict(
            id=img_id, width=w, height=h, file_name=f'{img_id:012d}.jpg',
            coco_url=f'http://images.cocodataset.org/val2017/'
            f'{img_id:012d}.jpg',
            neg_category_ids=sorted(int(c) for c in neg),
            not_exhaustive_category_ids=nel))
    return dict(info={}, licenses=[], images=images, annotations=anns,
                categories=cats)


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
                    _gt_annotation(rng, ann_id, img_id, c, h, w, scale))
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
