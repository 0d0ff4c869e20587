"""``hotcoco`` (Rust core) in its LVIS mode.

hotcoco ports the COCO and LVIS evaluation APIs to Rust;
``COCOeval(..., lvis_style=True)`` (``hotcoco.LVISeval``) applies LVIS's
federated rules and r/c/f groups and returns the LVIS API's ``precision``
array and summary. It has no Boundary IoU, so ``boundary`` is not offered
here.
"""
from __future__ import annotations

import contextlib
import io
from typing import Any, Mapping

import numpy as np

from .base import (SUMMARY_KEYS, Detections, EvalBackend, EvalResult,
                   per_category_ap)

__all__ = ['HotcocoBackend']


class HotcocoBackend(EvalBackend):
    """``hotcoco.LVISeval`` on detections loaded from arrays."""

    name = 'hotcoco'
    package = 'hotcoco'
    module = 'hotcoco'
    iou_types = ('bbox', 'segm')
    description = 'hotcoco (Rust), LVIS mode'
    mutates_input = False

    def _evaluate(self, gt: Mapping[str, Any], dets: Detections,
                  iou_type: str, dilation_ratio: float) -> EvalResult:
        import hotcoco
        coco_gt = hotcoco.COCO(dict(gt))
        if dets.boxes is not None:
            # The (N, 7) array of COCO.loadRes (image, box, score,
            # category) and the masks as they are: no dict per detection.
            # Area and ids as lvis.LVISResults sets them (box area, ids
            # 1..N in this order); the caps are applied already.
            masks = dets.mask_list() if iou_type != 'bbox' else None
            coco_dt = coco_gt.load_res(dets.matrix(), segmentation=masks)
        else:
            # mask-only results: the area is the mask's (LVISResults).
            coco_dt = hotcoco.LVISResults(
                coco_gt, dets.to_records(iou_type), max_dets=-1)
        ev = hotcoco.LVISeval(coco_gt, coco_dt, iou_type)
        with contextlib.redirect_stdout(io.StringIO()):
            ev.run()
        results = ev.get_results()
        precision = np.asarray(ev.eval['precision'])[..., -1]
        return EvalResult(
            summary={k: float(results[k]) for k in SUMMARY_KEYS},
            cat_ids=[int(c) for c in ev.params.cat_ids],
            per_category_ap=per_category_ap(precision),
            extra={k: float(v) for k, v in results.items()
                   if k not in SUMMARY_KEYS})
