"""LVIS evaluation backends: the official API and fast, exact libraries.

Every backend computes the same numbers (LVIS summary and per-category AP,
see :mod:`.base`) from the same validated, capped detections, handed over
in memory as :class:`.Detections` (columns; :mod:`.detections`); they differ
in speed and in the IoU types they offer:

=====================  ==================  ==========================
name                   pip package         IoU types
=====================  ==================  ==========================
``lvis``               lvis                bbox, segm, boundary
``faster_coco_eval``   faster-coco-eval    bbox, segm, boundary
``hotcoco``            hotcoco             bbox, segm
``vernier``            vernier             bbox, segm, boundary
=====================  ==================  ==========================

``lvis`` is the reference (Gupta et al., CVPR 2019); the parity tests
(``tests/evaluation/test_eval_backends.py``) hold every other backend to it
to 1e-6 on every summary number and every per-category AP.
:data:`DEFAULT_BACKEND` (hotcoco) is the fastest of them measured by
``tools/benchmark_eval.py`` (on LVIS-shaped data of 5,000 images: 58x the
official API's speed for bbox and 22x for segm, with 4-8x less memory);
``boundary`` goes to vernier, the fastest that has it. :func:`resolve_backend`
falls back through :data:`PREFERENCE` to ``lvis`` when a package is missing
and no backend was named explicitly; a named backend that lacks the IoU type
is an error (the metric's policy too).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Type

from .base import (DEFAULT_DILATION_RATIO, DEFAULT_MAX_DETS,
                   DEFAULT_MAX_DETS_PER_CAT, IOU_TYPES, SUMMARY_KEYS,
                   BackendUnavailableError, EvalBackend, EvalResult,
                   GtInput, ResultsInput, cap_results, limit_dets_per_category,
                   limit_dets_per_image, paused_gc, per_category_ap)
from .detections import (Detections, InvalidDetectionsError,
                         validate_detections)
from .faster_coco import FasterCocoEvalBackend
from .hotcoco_eval import HotcocoBackend
from .lvis_official import LVISAPIBackend, mask_to_boundary
from .vernier_eval import VernierBackend

__all__ = [
    'BACKENDS', 'DEFAULT_BACKEND', 'PREFERENCE', 'SUMMARY_KEYS', 'IOU_TYPES',
    'DEFAULT_MAX_DETS', 'DEFAULT_MAX_DETS_PER_CAT', 'DEFAULT_DILATION_RATIO',
    'EvalBackend', 'EvalResult', 'BackendUnavailableError', 'LVISAPIBackend',
    'FasterCocoEvalBackend', 'HotcocoBackend', 'VernierBackend',
    'available_backends', 'get_backend', 'resolve_backend', 'evaluate',
    'per_category_ap', 'cap_results', 'limit_dets_per_image',
    'limit_dets_per_category', 'mask_to_boundary', 'Detections',
    'InvalidDetectionsError', 'validate_detections', 'paused_gc'
]

#: Backends by name.
BACKENDS: Dict[str, Type[EvalBackend]] = {
    b.name: b for b in (LVISAPIBackend, FasterCocoEvalBackend,
                        HotcocoBackend, VernierBackend)
}
#: Used when ``backend='auto'`` (the metric's default): the first of
#: :data:`PREFERENCE` that is installed and supports the IoU type.
DEFAULT_BACKEND = 'hotcoco'
#: Fastest first (``tools/benchmark_eval.py``); ``lvis`` always last.
PREFERENCE: Sequence[str] = ('hotcoco', 'vernier', 'faster_coco_eval',
                             'lvis')


def available_backends() -> List[str]:
    """Names of the backends whose package is installed."""
    return [n for n, b in BACKENDS.items() if b.is_available()]


def get_backend(name: str, config_key: str = 'backend') -> EvalBackend:
    """The backend called ``name``, checked to be installed.

    Args:
        name: a key of :data:`BACKENDS`.
        config_key: how the caller's setting is called, for the error text
            (the metric passes ``val_evaluator.backend``).

    Raises:
        KeyError: unknown name (the message lists the known ones).
        BackendUnavailableError: its package is not installed (the message
            says which pip package to install).
    """
    if name not in BACKENDS:
        raise KeyError(
            f'{config_key}={name!r} is not an LVIS evaluation backend; '
            f"choose one of {sorted(BACKENDS)} or 'auto'")
    cls = BACKENDS[name]
    if not cls.is_available():
        raise BackendUnavailableError(
            f'{config_key}={name!r} needs the Python package '
            f'{cls.package!r}, which is not installed: pip install '
            f"{cls.package} (or set {config_key}='lvis' for the official "
            'LVIS API)')
    return cls()


def resolve_backend(name: Optional[str] = 'auto',
                    iou_type: str = 'bbox',
                    config_key: str = 'backend') -> EvalBackend:
    """``get_backend(name)``, or for ``'auto'``/None the first installed
    backend of :data:`PREFERENCE` that supports ``iou_type``.

    One policy for a named backend without the IoU type, here and in
    ``LongTailLVISMetric`` (which calls this at build time): a ValueError
    naming ``config_key``, the backend's IoU types and the backends that
    have ``iou_type``; nothing is swapped silently.
    """
    if name not in (None, 'auto'):
        backend = get_backend(name, config_key)
        if iou_type not in backend.iou_types:
            having = [n for n, b in BACKENDS.items()
                      if iou_type in b.iou_types]
            raise ValueError(
                f'{config_key}={name!r} does not support {iou_type!r} '
                f'evaluation (it supports {backend.iou_types}); choose '
                f"'auto' or a backend that has it: {having}")
        return backend
    for candidate in PREFERENCE:
        cls = BACKENDS[candidate]
        if iou_type in cls.iou_types and cls.is_available():
            return cls()
    return get_backend('lvis', config_key)


def evaluate(gt: GtInput,
             results: ResultsInput,
             iou_type: str = 'bbox',
             backend: Optional[str] = 'auto',
             img_ids: Optional[Sequence[int]] = None,
             max_dets: int = DEFAULT_MAX_DETS,
             max_dets_per_cat: Optional[int] = None,
             dilation_ratio: float = DEFAULT_DILATION_RATIO
             ) -> Optional[EvalResult]:
    """LVIS evaluation of ``results`` against ``gt`` with a named backend.

    See :meth:`EvalBackend.evaluate` for the arguments; ``backend`` is a
    name of :data:`BACKENDS` or ``'auto'``. Returns None when there is no
    detection.
    """
    return resolve_backend(backend, iou_type).evaluate(
        gt, results, iou_type, img_ids=img_ids, max_dets=max_dets,
        max_dets_per_cat=max_dets_per_cat, dilation_ratio=dilation_ratio)
