"""The official LVIS API (``lvis`` 0.5.3): the reference backend.

Gupta et al., "LVIS: A Dataset for Large Vocabulary Instance Segmentation",
CVPR 2019. Matching is pure Python over every (image, category) pair, which
is why it is slow at LVIS scale; every other backend is tested against it.

Boundary AP (Cheng et al., "Boundary IoU: Improving Object-Centric Image
Segmentation Evaluation", CVPR 2021) is not in the LVIS API; here it is the
LVIS API with one change, the IoU of a (detection, ground truth) pair:
``min(mask IoU, boundary IoU)``, where a mask's boundary is the set of its
pixels within ``d`` pixels of its contour, ``d = round(dilation_ratio *
image diagonal)`` (at least 1), obtained by eroding the mask ``d`` times with
a 3x3 square (pixels outside the image count as background) and removing the
eroded mask. Matching, federated rules and accumulation are the LVIS API's.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Mapping

import numpy as np

from .base import (SUMMARY_KEYS, Detections, EvalBackend, EvalResult,
                   per_category_ap)

__all__ = ['LVISAPIBackend', 'mask_to_boundary']


def mask_to_boundary(mask: np.ndarray, dilation_ratio: float) -> np.ndarray:
    """Inner boundary band of a binary ``(H, W)`` mask (Cheng et al. 2021).

    Returns a uint8 mask of the pixels of ``mask`` whose 3x3-erosion, done
    ``round(dilation_ratio * sqrt(H^2 + W^2))`` times (at least once), is
    empty; the image border counts as background.
    """
    import cv2
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    h, w = mask.shape
    d = max(1, int(round(dilation_ratio * np.sqrt(h * h + w * w))))
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT,
                                value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=d)
    return mask - eroded[1:h + 1, 1:w + 1]


def _lvis_from_dict(dataset: Dict[str, Any]):
    """An ``lvis.LVIS`` over an in-memory dataset dict (no file round trip)."""
    from lvis import LVIS
    api = LVIS.__new__(LVIS)
    api.logger = logging.getLogger('lvis.lvis')
    api.dataset = dataset
    api._create_index()
    return api


def _boundary_eval_class():
    """``LVISEvalCompat`` whose pair IoU is Boundary IoU (built lazily so
    that importing this module does not import ``lvis``)."""
    import pycocotools.mask as mask_utils

    from ...compat.lvis_numpy import LVISEvalCompat

    class LVISBoundaryEval(LVISEvalCompat):
        """LVIS evaluation with ``min(mask IoU, boundary IoU)`` as the IoU."""

        dilation_ratio: float = 0.02

        def _boundary_rle(self, ann: dict) -> dict:
            if '_boundary' not in ann:
                m = mask_utils.decode(ann['segmentation'])
                b = mask_to_boundary(m, self.dilation_ratio)
                ann['_boundary'] = mask_utils.encode(np.asfortranarray(b))
            return ann['_boundary']

        def compute_iou(self, img_id, cat_id):
            ious = super().compute_iou(img_id, cat_id)  # mask IoU
            if len(ious) == 0:
                return ious
            gt, dt = self._get_gt_dt(img_id, cat_id)
            idx = np.argsort([-d['score'] for d in dt], kind='mergesort')
            dt = [dt[i] for i in idx]
            b_ious = mask_utils.iou([self._boundary_rle(d) for d in dt],
                                    [self._boundary_rle(g) for g in gt],
                                    [0] * len(gt))
            return np.minimum(ious, b_ious)

    return LVISBoundaryEval


class LVISAPIBackend(EvalBackend):
    """The official LVIS API; Boundary AP by the boundary-IoU rule above."""

    name = 'lvis'
    package = 'lvis'
    module = 'lvis'
    iou_types = ('bbox', 'segm', 'boundary')
    description = 'official LVIS API (pure Python), the reference'

    def _evaluate(self, gt: Mapping[str, Any], dets: Detections,
                  iou_type: str, dilation_ratio: float) -> EvalResult:
        from lvis import LVISResults

        from ...compat.lvis_numpy import LVISEvalCompat
        lvis_gt = _lvis_from_dict(dict(gt))
        # The caps are applied already: max_dets=-1 keeps what is given.
        lvis_dt = LVISResults(lvis_gt, dets.to_records(iou_type),
                              max_dets=-1)
        if iou_type == 'boundary':
            lvis_eval = _boundary_eval_class()(lvis_gt, lvis_dt, 'segm')
            lvis_eval.dilation_ratio = dilation_ratio
            lvis_eval.params.iou_type = 'segm'
        else:
            lvis_eval = LVISEvalCompat(lvis_gt, lvis_dt, iou_type)
        lvis_eval.evaluate()
        lvis_eval.accumulate()
        lvis_eval.summarize()
        self.last_eval = lvis_eval
        results = lvis_eval.get_results()
        summary = {k: float(results[k]) for k in SUMMARY_KEYS}
        extra = {k: float(v) for k, v in results.items()
                 if k not in SUMMARY_KEYS}
        return EvalResult(
            summary=summary,
            cat_ids=[int(c) for c in lvis_eval.params.cat_ids],
            per_category_ap=per_category_ap(lvis_eval.eval['precision']),
            extra=extra)
