"""LVIS-shaped ground truth and detections, deterministic for a seed.

* :func:`lvis_scale_case`: the shape of an LVIS v1 val evaluation (1,203
  categories in LVIS's rare/common/frequent proportions, about 12 instances
  of about 3 categories per image, federated ``neg_category_ids`` and
  ``not_exhaustive_category_ids``), for timing the evaluation
  (``tools/benchmark_eval.py``) and for the parity tests.
* :func:`detections_from_gt`: LVIS/COCO result dicts for such a ground
  truth (some near a ground-truth object, most of categories the image
  does not label).
* :func:`mmdet_predictions`: the same kind of detections as MMDetection's
  ``pred_instances`` arrays, generated per image with numpy (fast enough
  for 20k images x 300 detections), for the end-to-end metric benchmark.

Masks are polygons rasterised with pycocotools (ground truth) and
compressed RLE (detections), as in an LVIS results file.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

__all__ = ['lvis_scale_case', 'detections_from_gt', 'mmdet_predictions',
           'gt_annotation']


def _categories(num: int, rng: np.random.Generator) -> List[dict]:
    # the generator's r/c/f proportions (one definition; imported here
    # because it loads the plugin, which the timing children avoid)
    from longtail_benchmark.synthetic.planning import LVIS_GROUP_PROPORTIONS
    sizes = np.array(LVIS_GROUP_PROPORTIONS, float)
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


def gt_annotation(rng: np.random.Generator, ann_id: int, img_id: int,
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
            anns.append(gt_annotation(rng, ann_id, img_id, c, h, w, scale))
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


def _star_polygons(rng: np.random.Generator, boxes: np.ndarray,
                   n: int = 10) -> np.ndarray:
    """``(K, 2n)`` star-shaped polygons inside ``(K, 4)`` xywh boxes."""
    k = len(boxes)
    ang = np.sort(rng.uniform(0, 2 * np.pi, (k, n)), axis=1)
    r = rng.uniform(0.55, 1.0, (k, n))
    x, y, w, h = boxes.T[:, :, None]
    px = x + w / 2 + w / 2 * r * np.cos(ang)
    py = y + h / 2 + h / 2 * r * np.sin(ang)
    return np.round(np.stack([px, py], 2).reshape(k, 2 * n), 2)


def _random_boxes(rng: np.random.Generator, k: int, h: int, w: int,
                  scale: Tuple[float, float]) -> np.ndarray:
    s = min(h, w)
    bw = np.minimum(rng.uniform(*scale, k) * s * rng.uniform(0.6, 1.6, k),
                    w - 1)
    bh = np.minimum(rng.uniform(*scale, k) * s * rng.uniform(0.6, 1.6, k),
                    h - 1)
    x = rng.uniform(0, 1, k) * (w - bw)
    y = rng.uniform(0, 1, k) * (h - bh)
    return np.stack([x, y, bw, bh], 1)


def mmdet_predictions(gt: Dict[str, Any],
                      dets_per_image: int = 300,
                      seed: int = 0,
                      with_masks: bool = True,
                      near_gt: float = 0.3,
                      on_negative: float = 0.2) -> List[Dict[str, Any]]:
    """Per-image predictions as MMDetection's ``pred_instances`` hold them.

    The recipe of :func:`detections_from_gt` with numpy per image: a
    fraction ``near_gt`` perturbs a ground-truth box of the image (its
    category 80% of the time, its outline moved onto the new box as the
    mask), ``on_negative`` is on a negative category, the rest random.

    Returns:
        One dict per image of ``gt['images']``: ``img_id``, ``bboxes``
        ``(K, 4)`` float32 ``xyxy``, ``scores`` float32, ``labels`` int64
        (index of the category id in ascending order) and, with
        ``with_masks``, ``masks``: K compressed RLE dicts (``counts``
        bytes), as ``mmdet.structures.mask.encode_mask_results`` gives.
    """
    import pycocotools.mask as mask_utils
    rng = np.random.default_rng(seed)
    cat_ids = np.array(sorted(c['id'] for c in gt['categories']))
    label_of = {int(c): i for i, c in enumerate(cat_ids)}
    by_img: Dict[int, List[dict]] = {}
    for a in gt['annotations']:
        by_img.setdefault(a['image_id'], []).append(a)
    out = []
    k = dets_per_image
    for im in gt['images']:
        h, w = im['height'], im['width']
        anns = by_img.get(im['id'], [])
        neg = np.asarray(im.get('neg_category_ids', []), np.int64)
        kinds = rng.random(k)
        boxes = _random_boxes(rng, k, h, w, (0.05, 0.4))
        cats = rng.choice(cat_ids, k)
        near = kinds < near_gt if anns else np.zeros(k, bool)
        on_neg = ~near & (kinds < near_gt + on_negative) & (len(neg) > 0)
        if len(neg):
            cats[on_neg] = rng.choice(neg, int(on_neg.sum()))
        polys = _star_polygons(rng, boxes) if with_masks else None
        idx = np.flatnonzero(near)
        if len(idx):
            src = rng.integers(len(anns), size=len(idx))
            gtb = np.array([anns[j]['bbox'] for j in src], float)
            jit = rng.normal(0, 0.08, (len(idx), 2))
            sc = np.exp(rng.normal(0, 0.12, (len(idx), 2)))
            wh = np.maximum(gtb[:, 2:] * sc, 1.0)
            xy = np.clip(gtb[:, :2] + jit * gtb[:, 2:], 0,
                         np.array([w, h]) - wh)
            boxes[idx] = np.concatenate([xy, wh], 1)
            own = rng.random(len(idx)) < 0.8
            gt_cats = np.array([anns[j]['category_id'] for j in src])
            cats[idx[own]] = gt_cats[own]
            if with_masks:
                p = np.array([np.asarray(anns[j]['segmentation'][0], float)
                              for j in src]).reshape(len(idx), -1, 2)
                p = (p - gtb[:, None, :2]) / np.maximum(gtb[:, None, 2:],
                                                        1e-6)
                p = p * wh[:, None] + xy[:, None]
                polys[idx] = np.round(p.reshape(len(idx), -1), 2)
        xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1)
        pred = dict(img_id=im['id'],
                    bboxes=np.round(xyxy, 2).astype(np.float32),
                    scores=(rng.random(k) ** 2).astype(np.float32),
                    labels=np.array([label_of[int(c)] for c in cats],
                                    np.int64))
        if with_masks:
            pred['masks'] = mask_utils.frPyObjects(
                [list(p) for p in polys.tolist()], h, w)
        out.append(pred)
    return out
