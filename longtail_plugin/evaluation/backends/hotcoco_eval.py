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
from typing import Any, List, Mapping, Optional

import numpy as np

from .base import SUMMARY_KEYS, EvalBackend, EvalResult, per_category_ap

__all__ = ['HotcocoBackend']


class HotcocoBackend(EvalBackend):
    """``hotcoco.LVISeval`` on ``hotcoco.LVISResults`` (caps done before)."""

    name = 'hotcoco'
    package = 'hotcoco'
    module = 'hotcoco'
    iou_types = ('bbox', 'segm')
    description = 'hotcoco (Rust), LVIS mode'
    mutates_input = False
    reads_results_file = True

    def _evaluate(self, gt: Mapping[str, Any], dets: List[dict],
                  iou_type: str, dilation_ratio: float) -> EvalResult:
        import hotcoco
        coco_gt = hotcoco.COCO(dict(gt))
        # max_dets=-1: the caps of the chosen protocol are applied already.
        coco_dt = hotcoco.LVISResults(coco_gt, dets, max_dets=-1)
        return self._run(coco_gt, coco_dt, iou_type)

    def _evaluate_file(self, gt: Mapping[str, Any], path: str,
                       iou_type: str, max_dets: int,
                       dilation_ratio: float) -> Optional[EvalResult]:
        import hotcoco
        coco_gt = hotcoco.COCO(dict(gt))
        # Rust reads the file; the per-image cap keeps ties in file order,
        # as lvis.LVISResults does.
        coco_dt = hotcoco.LVISResults(coco_gt, path, max_dets=max_dets)
        if not coco_dt.get_ann_ids():
            return None
        return self._run(coco_gt, coco_dt, iou_type)

    def _run(self, coco_gt: Any, coco_dt: Any, iou_type: str) -> EvalResult:
        import hotcoco
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
