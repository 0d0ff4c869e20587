"""``faster-coco-eval`` (C++ core) in its LVIS mode.

The library (MiXaiLL76/faster_coco_eval) reimplements the COCO API's
per-image matching and accumulation in C++; ``lvis_style=True`` adds LVIS's
federated rules (detections of categories neither present nor verified
absent in an image are dropped; unmatched detections of a category listed in
``not_exhaustive_category_ids`` are ignored) and the r/c/f groups. Its
``boundary`` IoU type is Boundary IoU (Cheng et al., CVPR 2021) with the
same ``min(mask IoU, boundary IoU)`` rule as the reference.

The LVIS caps are applied before (see :mod:`.base`), so the library's
per-(image, category) limit is set to what the cap lets through.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .base import Detections, EvalBackend, EvalResult, per_category_ap

__all__ = ['FasterCocoEvalBackend']

_KEYS = {'AP': 'AP_all', 'AP50': 'AP_50', 'AP75': 'AP_75', 'APs': 'AP_small',
         'APm': 'AP_medium', 'APl': 'AP_large', 'APr': 'APr', 'APc': 'APc',
         'APf': 'APf'}


def _quiet(*args: Any, **kwargs: Any) -> None:
    return None


class FasterCocoEvalBackend(EvalBackend):
    """``faster_coco_eval.COCOeval_faster(..., lvis_style=True)``."""

    name = 'faster_coco_eval'
    package = 'faster-coco-eval'
    module = 'faster_coco_eval'
    iou_types = ('bbox', 'segm', 'boundary')
    description = 'faster-coco-eval (C++), LVIS mode'

    def _evaluate(self, gt: Mapping[str, Any], dets: Detections,
                  iou_type: str, dilation_ratio: float) -> EvalResult:
        from faster_coco_eval import COCO, COCOeval_faster
        coco_gt = COCO(dict(gt), print_function=_quiet)
        # Its array input (loadNumpyAnnotations) builds the same dicts in
        # Python and has no masks: it gets result dicts, in memory.
        coco_dt = coco_gt.loadRes(dets.to_records(iou_type))
        ev = COCOeval_faster(
            coco_gt, coco_dt, iouType=iou_type, lvis_style=True,
            print_function=_quiet, boundary_dilation_ratio=dilation_ratio)
        # The caps are applied already; per (image, category) nothing more
        # may be cut (the LVIS API has no such limit). The library sizes
        # buffers by this number: the largest pair count, not len(dets).
        ev.params.maxDets = [dets.max_per_group()]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        stats = ev.stats_as_dict
        precision = np.asarray(ev.eval['precision'])[..., -1]
        return EvalResult(
            summary={k: float(stats[v]) for k, v in _KEYS.items()},
            cat_ids=[int(c) for c in ev.params.catIds],
            per_category_ap=per_category_ap(precision),
            extra={'AR': float(stats['AR_all'])})
