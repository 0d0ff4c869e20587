"""The interface every LVIS evaluation backend implements, and its helpers.

An evaluation backend turns LVIS ground truth and detections into the LVIS
summary (AP, AP50, AP75, APs/m/l, APr/c/f; Gupta et al., "LVIS: A Dataset for
Large Vocabulary Instance Segmentation", CVPR 2019) and the AP of every
category. All backends see the same input, prepared here once:

* the *per-image cap* of the standard LVIS protocol: each image keeps its
  ``max_dets`` (300) highest-scoring detections over all categories, ties in
  the order of the results file, as ``lvis.LVISResults`` does;
* or, for the *fixed-AP* protocol (Dave et al., "Evaluating
  Large-Vocabulary Object Detectors: The Devil is in the Details", arXiv
  2102.01066, 2021), no per-image cap and a *per-category* cap instead: each
  category keeps its ``max_dets_per_cat`` (10,000) highest-scoring
  detections over the whole evaluation set, then AP is computed as usual.

Ties keep the order of the results file in both caps (a stable sort), so the
cut is the same whichever backend evaluates.
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
from dataclasses import dataclass, field
from typing import (Any, Dict, Iterable, Iterator, List, Mapping, Optional,
                    Sequence, Tuple, Union)

import numpy as np

from .detections import (Detections, InvalidDetectionsError, as_detections,
                         cap_indices, group_top_indices, validate_detections)

__all__ = [
    'SUMMARY_KEYS', 'IOU_TYPES', 'DEFAULT_MAX_DETS',
    'DEFAULT_MAX_DETS_PER_CAT', 'DEFAULT_DILATION_RATIO', 'EvalResult',
    'EvalBackend', 'BackendUnavailableError', 'per_category_ap',
    'limit_dets_per_image', 'limit_dets_per_category', 'cap_results',
    'load_json', 'subset_gt', 'GtInput', 'ResultsInput', 'Detections',
    'InvalidDetectionsError', 'paused_gc'
]

#: Summary numbers every backend reports (LVIS API names).
SUMMARY_KEYS: Tuple[str, ...] = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl',
                                 'APr', 'APc', 'APf')
#: ``bbox`` and ``segm`` are LVIS's; ``boundary`` is Boundary AP (masks).
IOU_TYPES: Tuple[str, ...] = ('bbox', 'segm', 'boundary')
#: Detections per image of the standard LVIS protocol.
DEFAULT_MAX_DETS = 300
#: Detections per category of the fixed-AP protocol (Dave et al. 2021).
DEFAULT_MAX_DETS_PER_CAT = 10000
#: Boundary width as a fraction of the image diagonal (Cheng et al. 2021).
DEFAULT_DILATION_RATIO = 0.02

GtInput = Union[str, os.PathLike, Mapping[str, Any]]
ResultsInput = Union[str, os.PathLike, List[dict], Detections]


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector inside the block.

    Evaluation builds millions of small containers (one RLE dict per mask,
    the libraries' own per-detection objects); each allocation burst makes
    the collector walk every live object of the process (torch, MMDetection,
    the ground truth), which cost 15x the work itself (1.6 s instead of
    0.11 s for 60k masks). Nothing made here is cyclic garbage; the previous
    state is restored on exit, and reference counting frees as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class BackendUnavailableError(ImportError):
    """A backend's Python package is not installed."""


@dataclass
class EvalResult:
    """What one evaluation returns, whichever backend computed it.

    Attributes:
        summary: ``SUMMARY_KEYS`` -> value; -1 where undefined (no ground
            truth in that area range or group), as the LVIS API reports.
        cat_ids: category ids in ascending order (the LVIS API's order).
        per_category_ap: AP of each category of ``cat_ids`` (mean over IoU
            thresholds and recall levels, area "all"); NaN where a category
            has no ground truth in the evaluated images.
        backend: name of the backend that computed it.
        iou_type: ``bbox``, ``segm`` or ``boundary``.
        extra: backend-specific numbers (e.g. recalls), for logging only.
    """
    summary: Dict[str, float]
    cat_ids: List[int]
    per_category_ap: np.ndarray
    backend: str = ''
    iou_type: str = ''
    extra: Dict[str, float] = field(default_factory=dict)


def per_category_ap(precision: np.ndarray) -> np.ndarray:
    """AP of each category from an LVIS/COCO ``precision`` array.

    Args:
        precision: array of shape (T, R, K, A) (IoU thresholds, recall
            thresholds, categories, area ranges) where -1 marks "no ground
            truth"; the area range "all" is index 0. A trailing max-dets
            axis (COCO layout) must be indexed away by the caller.

    Returns:
        Array of K APs, NaN where a category has no ground truth.
    """
    p = np.asarray(precision)[:, :, :, 0]
    valid = p > -1
    count = valid.sum(axis=(0, 1))
    total = np.where(valid, p, 0).sum(axis=(0, 1))
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def load_json(path_or_obj: Union[str, os.PathLike, Any]) -> Any:
    """The object itself, or the JSON file it names, loaded."""
    if isinstance(path_or_obj, (str, os.PathLike)):
        with open(path_or_obj) as f:
            return json.load(f)
    return path_or_obj


def _take(anns: List[dict], idx: np.ndarray) -> List[dict]:
    return [anns[i] for i in idx]


def _keys(anns: List[dict], field: str) -> np.ndarray:
    return np.array([a[field] for a in anns])


def limit_dets_per_image(anns: Iterable[dict], max_dets: int) -> List[dict]:
    """Keep each image's ``max_dets`` best detections (LVIS's per-image cap).

    The same selection and output order as ``lvis.LVISResults``: grouped by
    image in order of first appearance; an image over the cap is sorted by
    descending score (stable). ``max_dets < 0`` keeps everything.
    """
    anns = list(anns)
    if max_dets is None or max_dets < 0:
        return anns
    return _take(anns, group_top_indices(
        _keys(anns, 'image_id'), _keys(anns, 'score').astype(float),
        max_dets, sort_all=False))


def limit_dets_per_category(anns: Iterable[dict],
                            max_dets_per_cat: int) -> List[dict]:
    """Keep each category's ``max_dets_per_cat`` best detections over the set.

    The fixed-AP cap of Dave et al. (2021): grouped by category in order of
    first appearance, each group stable-sorted by descending score and cut.
    """
    anns = list(anns)
    return _take(anns, group_top_indices(
        _keys(anns, 'category_id'), _keys(anns, 'score').astype(float),
        max_dets_per_cat, sort_all=True))


def cap_results(anns: Iterable[dict],
                max_dets: int = DEFAULT_MAX_DETS,
                max_dets_per_cat: Optional[int] = None) -> List[dict]:
    """Apply the protocol's cap: per category when ``max_dets_per_cat`` is
    given (fixed AP, then ``max_dets`` applies too unless it is -1), per
    image otherwise."""
    anns = list(anns)
    dets = Detections(_keys(anns, 'image_id'), _keys(anns, 'category_id'),
                      _keys(anns, 'score').astype(float))
    return _take(anns, cap_indices(dets, max_dets, max_dets_per_cat))


def subset_gt(gt: Mapping[str, Any],
              img_ids: Optional[Sequence[int]]) -> Mapping[str, Any]:
    """``gt`` restricted to ``img_ids`` (unchanged when None or all).

    Categories are kept whole, so groups and the per-category array keep
    their layout; as with the LVIS API's ``params.img_ids``.
    """
    if img_ids is None:
        return gt
    keep = set(int(i) for i in img_ids)
    if keep == {int(im['id']) for im in gt['images']}:
        return gt
    out = dict(gt)
    out['images'] = [im for im in gt['images'] if int(im['id']) in keep]
    out['annotations'] = [
        a for a in gt['annotations'] if int(a['image_id']) in keep
    ]
    return out


def _private_gt(gt: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of ``gt`` whose annotation dicts may be modified (the LVIS
    API replaces polygons by RLE in place; other libraries add keys)."""
    out = dict(gt)
    out['annotations'] = [dict(a) for a in gt['annotations']]
    return out


class EvalBackend:
    """One way of computing the LVIS evaluation.

    Subclasses set ``name``, ``package`` (the pip package that provides it),
    ``module`` (what to import) and ``iou_types``, and implement
    :meth:`_evaluate`. :meth:`evaluate` does the shared part once for every
    backend: loading, validation (:func:`.detections.validate_detections`),
    image subset, caps, empty input.
    """

    name: str = ''
    package: str = ''
    module: str = ''
    iou_types: Tuple[str, ...] = ('bbox', 'segm')
    description: str = ''
    #: The library adds keys to / replaces values of the ground-truth dicts
    #: it is given (it then gets a private copy).
    mutates_input: bool = True

    @classmethod
    def is_available(cls) -> bool:
        """Whether the backend's package can be imported."""
        import importlib.util
        try:
            return importlib.util.find_spec(cls.module) is not None
        except (ImportError, ValueError):
            return False

    @classmethod
    def require(cls) -> None:
        """Raise :class:`BackendUnavailableError` naming the pip package."""
        if not cls.is_available():
            raise BackendUnavailableError(
                f'LVIS evaluation backend {cls.name!r} needs the Python '
                f'package {cls.package!r}: pip install {cls.package}')

    def evaluate(self,
                 gt: GtInput,
                 results: ResultsInput,
                 iou_type: str = 'bbox',
                 img_ids: Optional[Sequence[int]] = None,
                 max_dets: int = DEFAULT_MAX_DETS,
                 max_dets_per_cat: Optional[int] = None,
                 dilation_ratio: float = DEFAULT_DILATION_RATIO
                 ) -> Optional[EvalResult]:
        """Evaluate ``results`` against ``gt``.

        Args:
            gt: LVIS-format ground truth: a dict or the path of its JSON
                file. It is not modified.
            results: the detections: a :class:`.Detections` (in memory, as
                the metric hands them over), a list of LVIS/COCO result
                dicts (``image_id``, ``category_id``, ``score``, ``bbox``
                and, for masks, a compressed-RLE ``segmentation``), or the
                path of such a JSON file. Not modified.
            iou_type: ``bbox``, ``segm`` or ``boundary``.
            img_ids: evaluate these images only (default: all of ``gt``).
            max_dets: per-image cap (300 in LVIS; -1: none).
            max_dets_per_cat: per-category cap over the whole set (fixed
                AP; None: none).
            dilation_ratio: boundary width for ``boundary``, as a fraction
                of the image diagonal.

        Returns:
            The :class:`EvalResult`, or None when there is no detection.

        Raises:
            InvalidDetectionsError: a detection with a missing field, a
                non-finite box or score, an image or category the ground
                truth does not have, or a bad mask (the message names the
                detection, its image and the field), whichever the backend.
        """
        self.require()
        if iou_type not in self.iou_types:
            raise ValueError(
                f'LVIS evaluation backend {self.name!r} does not support '
                f'iou_type {iou_type!r} (it supports {self.iou_types})')
        with paused_gc():
            return self._evaluate_checked(gt, results, iou_type, img_ids,
                                          max_dets, max_dets_per_cat,
                                          dilation_ratio)

    def _evaluate_checked(self, gt: GtInput, results: ResultsInput,
                          iou_type: str, img_ids: Optional[Sequence[int]],
                          max_dets: int, max_dets_per_cat: Optional[int],
                          dilation_ratio: float) -> Optional[EvalResult]:
        """:meth:`evaluate` after the checks of the backend itself."""
        gt_dict = load_json(gt)
        dets = as_detections(load_json(results), iou_type)
        validate_detections(dets, gt_dict, iou_type)
        if img_ids is not None and set(int(i) for i in img_ids) == {
                int(im['id']) for im in gt_dict['images']}:
            img_ids = None  # all of them
        if img_ids is not None:
            gt_dict = subset_gt(gt_dict, img_ids)
            keep = np.isin(dets.image_ids,
                           np.array([int(i) for i in img_ids], np.int64))
            dets = dets.take(np.flatnonzero(keep))
        if len(dets) == 0:
            return None
        dets = dets.take(cap_indices(dets, max_dets, max_dets_per_cat))
        if self.mutates_input:
            gt_dict = _private_gt(gt_dict)
        result = self._evaluate(gt_dict, dets, iou_type, dilation_ratio)
        result.backend = self.name
        result.iou_type = iou_type
        return result

    def _evaluate(self, gt: Mapping[str, Any], dets: Detections,
                  iou_type: str, dilation_ratio: float) -> EvalResult:
        """Evaluate validated, capped detections (never empty).

        ``dets`` may share arrays and masks with the caller: a library that
        modifies what it is given gets ``dets.to_records(iou_type)``.
        """
        raise NotImplementedError
