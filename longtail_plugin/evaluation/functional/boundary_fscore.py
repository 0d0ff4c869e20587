"""Boundary F-score of instance masks.

The boundary F-measure of Martin et al. (PAMI 2004), used for segmentation
quality by DAVIS (Perazzi et al., CVPR 2016) and to show RefineMask's finer
contours. For binary masks ``P`` (prediction) and ``G`` (ground truth) with
contours ``dP`` and ``dG`` and a tolerance ``d`` in pixels:

    precision_d = |{p in dP : dist(p, dG) <= d}| / |dP|
    recall_d    = |{g in dG : dist(g, dP) <= d}| / |dG|
    F_d         = 2 precision_d recall_d / (precision_d + recall_d)

Contour: foreground pixels with a background pixel in their 8-neighbourhood;
outside the image counts as background (an object cut by the image border has
a contour along the border). Distances are exact Euclidean distance
transforms (``cv2.distanceTransform`` with ``DIST_MASK_PRECISE``), one per
mask, shared by all tolerances. Two empty contours give F = 1, one empty
contour F = 0.

Data-set protocol (:func:`evaluate_boundary_fscore`): every non-crowd GT
instance is matched to the prediction of the same image and category, with
score >= ``score_thr`` (0.3), that has the highest mask IoU (a prediction may
serve several GTs). A GT without a candidate of IoU > 0 is a miss. Reported:
the mean F over matched GTs (``F@d``, contour quality of what was found), the
mean over all GTs with misses counted as 0 (``F@d_all``), the matched mask
IoU, counts, and the same per LVIS frequency group when the annotation file
has ``frequency``.
"""
from collections import defaultdict
from typing import Dict, Iterable, List, Optional, Sequence

import cv2
import numpy as np

from ..backends.detections import InvalidDetectionsError

__all__ = [
    'mask_boundary', 'boundary_precision_recall', 'boundary_fscore',
    'evaluate_boundary_fscore', 'load_predictions', 'segm_to_rle'
]


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """Bool contour of a binary ``(H, W)`` mask (outside = background)."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    m[m > 0] = 1
    padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8))[1:-1, 1:-1]
    return (m > 0) & (eroded == 0)


def _crop_pair(pred: np.ndarray, gt: np.ndarray, margin: int):
    """Crop both masks to their joint box + ``margin`` (clipped to the
    image); contours and distances within it are unchanged."""
    union = (pred > 0) | (gt > 0)
    ys, xs = np.nonzero(union.any(1))[0], np.nonzero(union.any(0))[0]
    if len(ys) == 0:
        return pred[:1, :1], gt[:1, :1]
    h, w = union.shape
    y0, y1 = max(ys[0] - margin, 0), min(ys[-1] + margin + 1, h)
    x0, x1 = max(xs[0] - margin, 0), min(xs[-1] + margin + 1, w)
    return pred[y0:y1, x0:x1], gt[y0:y1, x0:x1]


def boundary_precision_recall(pred: np.ndarray,
                              gt: np.ndarray,
                              tolerances: Sequence[float] = (1, 3, 5),
                              crop: bool = True):
    """Boundary precision and recall at each tolerance.

    Args:
        pred, gt (np.ndarray): Binary ``(H, W)`` masks.
        tolerances (Sequence[float]): Distances in pixels.
        crop (bool): Work on the joint bounding box (faster, same result).

    Returns:
        tuple[np.ndarray, np.ndarray]: precision and recall, ``(T,)`` each.
    """
    if pred.shape != gt.shape:
        raise ValueError(f'shape mismatch {pred.shape} vs {gt.shape}')
    tol = np.asarray(tolerances, dtype=np.float64)
    if crop:
        pred, gt = _crop_pair(pred, gt, int(np.ceil(tol.max())) + 2)
    pb, gb = mask_boundary(pred), mask_boundary(gt)
    n_p, n_g = int(pb.sum()), int(gb.sum())
    if n_p == 0 or n_g == 0:
        both = float(n_p == 0 and n_g == 0)
        return np.full(len(tol), both), np.full(len(tol), both)
    dist_to_g = cv2.distanceTransform((~gb).astype(np.uint8), cv2.DIST_L2,
                                      cv2.DIST_MASK_PRECISE)
    dist_to_p = cv2.distanceTransform((~pb).astype(np.uint8), cv2.DIST_L2,
                                      cv2.DIST_MASK_PRECISE)
    # small epsilon: DIST_MASK_PRECISE returns float32 distances
    precision = (dist_to_g[pb][None] <= tol[:, None] + 1e-4).mean(1)
    recall = (dist_to_p[gb][None] <= tol[:, None] + 1e-4).mean(1)
    return precision, recall


def boundary_fscore(pred: np.ndarray,
                    gt: np.ndarray,
                    tolerances: Sequence[float] = (1, 3, 5),
                    crop: bool = True) -> np.ndarray:
    """Boundary F-score ``(T,)`` of two binary masks, one per tolerance."""
    p, r = boundary_precision_recall(pred, gt, tolerances, crop)
    denom = p + r
    return np.where(denom > 0, 2 * p * r / np.maximum(denom, 1e-12), 0.0)


def segm_to_rle(segm, h: int, w: int) -> dict:
    """COCO/LVIS segmentation (polygons, uncompressed or compressed RLE) to
    a compressed RLE."""
    import pycocotools.mask as mask_utils
    if isinstance(segm, list):
        return mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
    if isinstance(segm['counts'], list):
        return mask_utils.frPyObjects(segm, h, w)
    rle = dict(segm)
    if isinstance(rle['counts'], str):
        rle['counts'] = rle['counts'].encode()
    return rle


def load_predictions(results, cat_ids: Sequence[int]) -> List[dict]:
    """Normalise predictions to ``[{image_id, category_id, score, rle}]``.

    Accepts the output of ``tools/test.py --out results.pkl`` (MMDetection 3:
    one dict per image with ``img_id`` and ``pred_instances`` holding
    ``labels``, ``scores`` and RLE ``masks``; label ``i`` is mapped to
    ``cat_ids[i]``) or a COCO-style segm result list (``image_id``,
    ``category_id``, ``score``, ``segmentation``).
    """
    out = []
    for item in results:
        if 'pred_instances' in item:
            pred = item['pred_instances']
            labels = np.asarray(pred['labels']).reshape(-1)
            scores = np.asarray(pred['scores'], dtype=np.float64).reshape(-1)
            masks = pred.get('masks')
            if masks is None:
                raise KeyError('pred_instances has no masks')
            bad = (labels < 0) | (labels >= len(cat_ids))
            if bad.any():
                raise InvalidDetectionsError(
                    f"image_id {item['img_id']}: field "
                    f'pred_instances.labels is {int(labels[bad][0])}, '
                    f'outside [0, {len(cat_ids)}) for the {len(cat_ids)} '
                    'categories of the annotation file')
            for lab, score, rle in zip(labels, scores, masks):
                rle = dict(rle)
                if isinstance(rle['counts'], str):
                    rle['counts'] = rle['counts'].encode()
                out.append(
                    dict(
                        image_id=item['img_id'],
                        category_id=cat_ids[int(lab)],
                        score=float(score),
                        rle=rle))
        else:
            rle = dict(item['segmentation'])
            if isinstance(rle['counts'], str):
                rle['counts'] = rle['counts'].encode()
            out.append(
                dict(
                    image_id=item['image_id'],
                    category_id=item['category_id'],
                    score=float(item['score']),
                    rle=rle))
    return out


def evaluate_boundary_fscore(annotations: dict,
                             predictions: Iterable[dict],
                             tolerances: Sequence[float] = (1, 3, 5),
                             score_thr: float = 0.3,
                             image_ids: Optional[Iterable[int]] = None
                             ) -> Dict[str, float]:
    """Data-set boundary F-score (protocol in the module docstring).

    Args:
        annotations (dict): A COCO/LVIS annotation dict (``images``,
            ``annotations``, ``categories``).
        predictions (Iterable[dict]): Output of :func:`load_predictions`.
        tolerances (Sequence[float]): Tolerances in pixels.
        score_thr (float): Minimum score of a prediction. Defaults to 0.3.
        image_ids (Iterable[int], optional): Restrict to these images
            (default: images with at least one prediction or GT).

    Returns:
        dict[str, float]: ``F@d`` (matched), ``F@d_all`` (misses = 0),
        ``mIoU_matched``, ``num_gt``, ``num_matched`` and, with LVIS
        frequencies, the same keys suffixed ``_r`` / ``_c`` / ``_f``.
    """
    import pycocotools.mask as mask_utils
    tol = list(tolerances)
    imgs = {img['id']: img for img in annotations['images']}
    freq = {
        c['id']: c['frequency']
        for c in annotations.get('categories', []) if 'frequency' in c
    }
    keep = None if image_ids is None else set(image_ids)

    dets = defaultdict(list)
    for p in predictions:
        if p['score'] >= score_thr:
            dets[(p['image_id'], p['category_id'])].append(p['rle'])

    # per-GT records: (group, F array or None for a miss, IoU)
    records = []
    for ann in annotations['annotations']:
        if ann.get('iscrowd', 0):
            continue
        img_id = ann['image_id']
        if keep is not None and img_id not in keep:
            continue
        img = imgs[img_id]
        h, w = img['height'], img['width']
        group = freq.get(ann['category_id'])
        cands = dets.get((img_id, ann['category_id']), [])
        if not cands:
            records.append((group, None, 0.0))
            continue
        gt_rle = segm_to_rle(ann['segmentation'], h, w)
        ious = np.asarray(mask_utils.iou(cands, [gt_rle], [0])).reshape(-1)
        best = int(np.argmax(ious))
        if ious[best] <= 0:
            records.append((group, None, 0.0))
            continue
        pred_mask = mask_utils.decode(cands[best])
        gt_mask = mask_utils.decode(gt_rle)
        records.append((group, boundary_fscore(pred_mask, gt_mask, tol),
                        float(ious[best])))

    def summarise(recs, suffix=''):
        res = {f'num_gt{suffix}': float(len(recs))}
        matched = [r for r in recs if r[1] is not None]
        res[f'num_matched{suffix}'] = float(len(matched))
        fs = np.stack([r[1] for r in matched]) if matched else None
        for j, d in enumerate(tol):
            name = f'F@{d:g}'
            res[name + suffix] = float(fs[:, j].mean()) if matched else 0.0
            res[name + '_all' + suffix] = (
                float(fs[:, j].sum() / len(recs)) if matched else 0.0)
        res[f'mIoU_matched{suffix}'] = (
            float(np.mean([r[2] for r in matched])) if matched else 0.0)
        return res

    out = summarise(records)
    if freq:
        for g in ('r', 'c', 'f'):
            out.update(summarise([r for r in records if r[0] == g], '_' + g))
    return out
