"""``vernier`` (Rust core) on an LVIS-federated dataset handle.

vernier evaluates COCO-style AP in Rust; a ground truth loaded with
``CocoDataset.from_lvis_json`` carries LVIS's federated labels
(``neg_category_ids``, ``not_exhaustive_category_ids``) and frequency
groups, and ``Accumulated.summarize_lvis`` gives the LVIS summary. Its
``boundary`` kernel is Boundary IoU (Cheng et al., CVPR 2021). It is run in
``parity_mode='strict'`` (the reference's behaviour, quirks included), and a
detection's area for the area ranges is its box area when results carry a
``bbox`` and its mask area otherwise, as ``lvis.LVISResults`` computes it.
"""
from __future__ import annotations

import json
from typing import Any, List, Mapping

import numpy as np

from .base import (SUMMARY_KEYS, Detections, EvalBackend, EvalResult,
                   per_category_ap)

__all__ = ['VernierBackend']


def _per_image_batches(dets: Detections) -> List[dict]:
    """vernier's array input: one batch per image (boxes, scores, category
    ids, compressed RLEs), images in order of first appearance, each
    image's detections in their order."""
    _, first, inv = np.unique(dets.image_ids, return_index=True,
                              return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind='stable')] = np.arange(len(first))
    order = np.argsort(rank[inv.reshape(-1)], kind='stable')
    image_ids = dets.image_ids[order]
    starts = np.flatnonzero(np.r_[True, image_ids[1:] != image_ids[:-1]])
    boxes = dets.boxes[order]
    scores = dets.scores[order]
    labels = dets.category_ids[order]
    all_masks = dets.mask_list()
    masks = [all_masks[i] for i in order]
    batches = []
    for a, b in zip(starts, np.r_[starts[1:], len(order)]):
        batches.append(dict(
            image_id=int(image_ids[a]),
            boxes=np.ascontiguousarray(boxes[a:b]),
            scores=np.ascontiguousarray(scores[a:b]),
            labels=np.ascontiguousarray(labels[a:b]),
            rles=[dict(size=tuple(m['size']), counts=m['counts'] if
                       isinstance(m['counts'], bytes) else
                       m['counts'].encode()) for m in masks[a:b]]))
    return batches


class VernierBackend(EvalBackend):
    """``vernier._core.evaluate_{bbox,segm,boundary}_grid`` + LVIS summary."""

    name = 'vernier'
    package = 'vernier'
    module = 'vernier'
    iou_types = ('bbox', 'segm', 'boundary')
    description = 'vernier (Rust), LVIS-federated dataset'
    mutates_input = False

    def _evaluate(self, gt: Mapping[str, Any], dets: Detections,
                  iou_type: str, dilation_ratio: float) -> EvalResult:
        from vernier import _core
        handle = _core.CocoDataset.from_lvis_json(json.dumps(gt).encode())
        # The caps are applied already: a per-image limit that cuts nothing.
        cap = dets.max_per_group(per_image=True)
        kwargs = dict(parity_mode='strict', max_dets_per_image=cap,
                      use_cats=True)
        if iou_type == 'bbox':
            # the (N, 7) detection matrix: no dict per detection
            grid = _core.evaluate_bbox_grid(handle, dets.matrix(), **kwargs)
        else:
            # lvis.LVISResults: box area when results carry a box, else the
            # mask's area.
            if dets.boxes is not None:
                area, dt = 'bbox', _per_image_batches(dets)
            else:
                area, dt = 'mask', dets.to_records(iou_type)
            if iou_type == 'segm':
                grid = _core.evaluate_segm_grid(handle, dt, dt_area=area,
                                                **kwargs)
            else:
                grid = _core.evaluate_boundary_grid(
                    handle, dt, dt_area=area,
                    dilation_ratio=dilation_ratio, **kwargs)
        acc = grid.accumulate([cap])
        stats = list(acc.summarize_lvis(handle, [cap]).stats)
        precision = np.asarray(acc.precision)[..., -1]
        cat_ids = sorted(int(c['id']) for c in gt['categories'])
        return EvalResult(
            summary={k: float(v) for k, v in zip(SUMMARY_KEYS, stats)},
            cat_ids=cat_ids,
            per_category_ap=per_category_ap(precision),
            extra={'AR': float(stats[9])} if len(stats) > 9 else {})
