"""Benchmark cases on disk: an LVIS-shaped ground truth (JSON, what a
metric's ``ann_file`` reads) and MMDetection-shaped predictions (``.npz``,
read without pickle), generated once per (size, seed) and kept between runs.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Any, Dict, List

import numpy as np

__all__ = ['prepare_case', 'load_predictions', 'save_predictions']


def save_predictions(path: str, preds: List[Dict[str, Any]]) -> None:
    """Predictions (``mmdet_predictions``' layout) as flat arrays."""
    n = np.array([len(p['labels']) for p in preds], np.int64)
    arrays = dict(
        img_ids=np.array([p['img_id'] for p in preds], np.int64), n=n,
        bboxes=np.concatenate([p['bboxes'] for p in preds]).reshape(-1, 4),
        scores=np.concatenate([p['scores'] for p in preds]),
        labels=np.concatenate([p['labels'] for p in preds]))
    if preds and 'masks' in preds[0]:
        rles = [r for p in preds for r in p['masks']]
        arrays['mask_counts'] = np.frombuffer(
            b''.join(r['counts'] for r in rles), np.uint8)
        arrays['mask_ends'] = np.cumsum([len(r['counts']) for r in rles],
                                        dtype=np.int64)
        arrays['mask_sizes'] = np.array([r['size'] for r in rles],
                                        np.int64).reshape(-1, 2)
    tmp = path + '.tmp.npz'
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_predictions(path: str, masks: bool = True,
                     encoded: bool = False) -> List[Dict[str, Any]]:
    """Per-image predictions back: masks as RLE dicts (MMDetection's
    ``process`` output) or, with ``encoded``, as one ``EncodedMasks`` per
    image under ``rle_masks`` (``LongTailLVISMetric.process``' output)."""
    z = np.load(path, allow_pickle=False)
    ends = np.cumsum(z['n'])
    starts = ends - z['n']
    with_masks = masks and 'mask_counts' in z.files
    if with_masks:
        blob = z['mask_counts'].tobytes()
        mends = z['mask_ends']
        mstarts = np.r_[0, mends[:-1]]
        sizes = z['mask_sizes']
        if encoded:
            from longtail_plugin.evaluation.metrics.predictions import \
                EncodedMasks
    bboxes, scores, labels = z['bboxes'], z['scores'], z['labels']
    out = []
    for img_id, a, b in zip(z['img_ids'].tolist(), starts.tolist(),
                            ends.tolist()):
        p = dict(img_id=img_id, bboxes=bboxes[a:b].copy(),
                 scores=scores[a:b].copy(), labels=labels[a:b].copy())
        if with_masks:
            if encoded:
                off = int(mstarts[a]) if b > a else 0
                p['rle_masks'] = EncodedMasks(
                    blob[off:int(mends[b - 1])] if b > a else b'',
                    mends[a:b] - off, sizes[a:b].copy())
            else:
                p['masks'] = [
                    dict(size=s, counts=blob[s0:e0]) for s, s0, e0 in zip(
                        sizes[a:b].tolist(), mstarts[a:b].tolist(),
                        mends[a:b].tolist())]
        out.append(p)
    return out


def prepare_case(cache_dir: str, num_images: int, dets_per_image: int = 300,
                 num_categories: int = 1203, seed: int = 0,
                 with_masks: bool = True) -> Dict[str, str]:
    """Write (once) the ground truth and the predictions of a case.

    Returns:
        ``gt`` (LVIS JSON) and ``preds`` (``.npz``) paths.
    """
    from .lvis_shaped import lvis_scale_case, mmdet_predictions
    os.makedirs(cache_dir, exist_ok=True)
    stem = osp.join(cache_dir, f'n{num_images}_k{num_categories}_s{seed}')
    gt_path = f'{stem}.gt.json'
    pred_path = f'{stem}_d{dets_per_image}_m{int(with_masks)}.preds.npz'
    gt = None
    if not osp.exists(gt_path):
        gt = lvis_scale_case(num_images, num_categories=num_categories,
                             seed=seed)
        tmp = gt_path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(gt, f)
        os.replace(tmp, gt_path)
    if not osp.exists(pred_path):
        if gt is None:
            with open(gt_path) as f:
                gt = json.load(f)
        save_predictions(pred_path, mmdet_predictions(
            gt, dets_per_image, seed=seed + 1, with_masks=with_masks))
    return dict(gt=gt_path, preds=pred_path)
