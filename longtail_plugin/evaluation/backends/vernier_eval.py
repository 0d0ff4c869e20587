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

from .base import (SUMMARY_KEYS, EvalBackend, EvalResult,
                   max_dets_per_pair, per_category_ap)

__all__ = ['VernierBackend']


class VernierBackend(EvalBackend):
    """``vernier._core.evaluate_{bbox,segm,boundary}_grid`` + LVIS summary."""

    name = 'vernier'
    package = 'vernier'
    module = 'vernier'
    iou_types = ('bbox', 'segm', 'boundary')
    description = 'vernier (Rust), LVIS-federated dataset'
    mutates_input = False

    def _evaluate(self, gt: Mapping[str, Any], dets: List[dict],
                  iou_type: str, dilation_ratio: float) -> EvalResult:
        from vernier import _core
        handle = _core.CocoDataset.from_lvis_json(json.dumps(gt).encode())
        # The caps are applied already: a per-image limit that cuts nothing.
        cap = max_dets_per_pair(dets, per_image=True)
        kwargs = dict(parity_mode='strict', max_dets_per_image=cap,
                      use_cats=True)
        if iou_type == 'bbox':
            dets = [{k: v for k, v in d.items() if k != 'segmentation'}
                    for d in dets]
            grid = _core.evaluate_bbox_grid(handle, dets, **kwargs)
        else:
            # lvis.LVISResults: box area when results carry a box, else the
            # mask's area.
            area = 'bbox' if 'bbox' in dets[0] else 'mask'
            if iou_type == 'segm':
                grid = _core.evaluate_segm_grid(handle, dets, dt_area=area,
                                                **kwargs)
            else:
                grid = _core.evaluate_boundary_grid(
                    handle, dets, dt_area=area,
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
