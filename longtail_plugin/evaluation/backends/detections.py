"""Detections in columns: what every LVIS evaluation backend is handed.

:class:`Detections` holds a results set as arrays (image id, category id,
score, ``xywh`` box) plus one compressed-RLE mask per detection for mask
IoU types, in results-file order. It is built once - from the metric's
in-memory predictions (no JSON round trip) or from an LVIS/COCO results
list or file - then validated against the ground truth
(:func:`validate_detections`), capped (:func:`cap_indices`) and handed to
the backend, which reads the arrays directly or turns them into its own
structures.

Validation is the one place that decides what a bad detection does, so the
behaviour does not depend on the backend: a missing field, a non-finite or
negative-size box, a non-finite score, an image id that is not an image of
the ground truth, a category id that is not one of its categories, or a
mask that is not a compressed RLE of its image's size raises
:class:`InvalidDetectionsError` naming the detection's position, its
``image_id`` and the field.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

__all__ = ['Detections', 'EncodedMasks', 'InvalidDetectionsError', 'validate_detections',
           'cap_indices', 'group_top_indices', 'as_detections',
           'MASK_IOU_TYPES']

#: IoU types evaluated on masks (they need ``Detections.masks``).
MASK_IOU_TYPES = ('segm', 'boundary')


class InvalidDetectionsError(ValueError):
    """A detection that no backend may see (the message names it)."""


@dataclass
class EncodedMasks:
    """N compressed-RLE masks in three arrays (pickles small for MMEngine's
    result gathering).

    Attributes:
        counts: the RLE strings of all masks, joined.
        ends: ``(N,)`` int64 end offset of each mask's string in ``counts``.
        sizes: ``(N, 2)`` int64 ``(height, width)`` of each mask.
    """
    counts: bytes
    ends: np.ndarray
    sizes: np.ndarray

    def __len__(self) -> int:
        return len(self.ends)

    @classmethod
    def from_rles(cls, rles: Iterable[Mapping[str, Any]]) -> 'EncodedMasks':
        """From pycocotools RLE dicts (``counts`` bytes or str)."""
        rles = list(rles)
        counts = [r['counts'] if isinstance(r['counts'], bytes) else
                  r['counts'].encode() for r in rles]
        ends = np.cumsum([len(c) for c in counts], dtype=np.int64)
        sizes = np.array([list(r['size']) for r in rles],
                         np.int64).reshape(-1, 2)
        return cls(b''.join(counts), ends, sizes)

    @classmethod
    def from_masks(cls, masks: Any) -> 'EncodedMasks':
        """From binary masks ``(N, H, W)`` (array or tensor), or RLE dicts
        (what MMDetection's ``process`` accepts)."""
        if isinstance(masks, (list, tuple)):
            return cls.from_rles(masks)
        import pycocotools.mask as mask_utils
        if hasattr(masks, 'detach'):
            masks = masks.detach().cpu().numpy()
        masks = np.asarray(masks)
        if len(masks) == 0:
            return cls(b'', np.zeros(0, np.int64), np.zeros((0, 2),
                                                           np.int64))
        # one call for all masks: (H, W, N) in Fortran order, as
        # mmdet's encode_mask_results gives them one by one
        rles = mask_utils.encode(
            np.asfortranarray(masks.transpose(1, 2, 0), dtype=np.uint8))
        return cls.from_rles(rles)

    @classmethod
    def concatenate(cls, parts: Sequence['EncodedMasks']) -> 'EncodedMasks':
        """One set of the masks of ``parts``, in order."""
        parts = list(parts)
        if not parts:
            return cls(b'', np.zeros(0, np.int64), np.zeros((0, 2),
                                                           np.int64))
        offsets = np.cumsum([0] + [len(p.counts) for p in parts[:-1]])
        return cls(b''.join(p.counts for p in parts),
                   np.concatenate([p.ends + o for p, o in zip(parts,
                                                              offsets)]),
                   np.concatenate([p.sizes for p in parts]).reshape(-1, 2))

    def rles(self) -> List[dict]:
        """The masks as RLE dicts (``counts`` bytes; masks of one size
        share one ``size`` list, read-only)."""
        if len(self) == 0:
            return []
        key = self.sizes[:, 0] * (1 << 32) + self.sizes[:, 1]
        keys, which = np.unique(key, return_inverse=True)
        shapes = [[k >> 32, k & 0xFFFFFFFF] for k in keys.tolist()]
        sizes = map(shapes.__getitem__, which.reshape(-1).tolist())
        ends = self.ends.tolist()
        counts = map(self.counts.__getitem__,
                     map(slice, [0] + ends[:-1], ends))
        return [{'size': s, 'counts': c} for s, c in zip(sizes, counts)]


def _where(i: int, image_id: Any) -> str:
    return f'detection {i} (image_id {image_id})'


def _int_column(values: Sequence[Any], field: str,
                image_ids: Optional[Sequence[Any]] = None) -> np.ndarray:
    """``values`` as int64, refusing anything that is not an integer."""
    arr = np.asarray(values)
    if arr.dtype.kind in 'iu':
        return arr.astype(np.int64, copy=False).reshape(-1)
    bad = None
    if arr.dtype.kind in 'fb' and arr.ndim == 1:
        ok = np.isfinite(arr) & (np.floor(arr) == arr) \
            if arr.dtype.kind == 'f' else np.zeros(len(arr), bool)
        if ok.all():
            return arr.astype(np.int64)
        bad = int(np.flatnonzero(~ok)[0])
    else:
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                bad = i
                break
    bad = 0 if bad is None else bad
    img = image_ids[bad] if image_ids is not None else values[bad]
    raise InvalidDetectionsError(
        f'{_where(bad, img)}: field {field!r} must be an integer, got '
        f'{values[bad]!r}')


@dataclass
class Detections:
    """A results set in columns, in results-file order.

    Attributes:
        image_ids: ``(N,)`` int64.
        category_ids: ``(N,)`` int64 (dataset category ids, not labels).
        scores: ``(N,)`` float64.
        boxes: ``(N, 4)`` float64 ``[x, y, w, h]``; None for mask-only
            results (then a detection's area is its mask's, as
            ``lvis.LVISResults`` computes it).
        masks: N compressed RLEs for mask IoU types, else None: RLE dicts
            (``{'size': [h, w], 'counts': bytes or str}``) or, from the
            metric, one :class:`EncodedMasks`.
    """
    image_ids: np.ndarray
    category_ids: np.ndarray
    scores: np.ndarray
    boxes: Optional[np.ndarray] = None
    masks: Optional[Union[List[dict], EncodedMasks]] = None

    def mask_list(self) -> List[dict]:
        """The masks as RLE dicts (shared with this object)."""
        if isinstance(self.masks, EncodedMasks):
            self.masks = self.masks.rles()
        return self.masks

    def __len__(self) -> int:
        return len(self.image_ids)

    # ------------------------------------------------------------ building
    @classmethod
    def from_records(cls, anns: Sequence[Mapping[str, Any]],
                     iou_type: str = 'bbox') -> 'Detections':
        """Columns of an LVIS/COCO results list (``image_id``,
        ``category_id``, ``score``, ``bbox``, and ``segmentation`` for mask
        IoU types; ``bbox`` may be absent from every detection of mask-only
        results).

        Raises:
            InvalidDetectionsError: a field missing or of the wrong kind.
        """
        anns = list(anns)
        need_masks = iou_type in MASK_IOU_TYPES
        with_boxes = not need_masks or (len(anns) > 0 and 'bbox' in anns[0])
        fields = ['image_id', 'category_id', 'score']
        if with_boxes:
            fields.append('bbox')
        if need_masks:
            fields.append('segmentation')
        for i, a in enumerate(anns):
            if not isinstance(a, Mapping):
                raise InvalidDetectionsError(
                    f'detection {i}: a result must be a dict, got '
                    f'{type(a).__name__}')
            if len(a.keys() & fields) < len(fields):
                missing = [f for f in fields if f not in a][0]
                raise InvalidDetectionsError(
                    f'{_where(i, a.get("image_id"))}: field {missing!r} is '
                    f'missing (a {iou_type} result needs {fields})')
        img_raw = [a['image_id'] for a in anns]
        image_ids = _int_column(img_raw, 'image_id', img_raw)
        category_ids = _int_column([a['category_id'] for a in anns],
                                   'category_id', img_raw)
        scores = _float_column([a['score'] for a in anns], 'score', img_raw)
        boxes = None
        if with_boxes:
            raw = [a['bbox'] for a in anns]
            boxes = _float_column(raw, 'bbox', img_raw, width=4)
        masks = [a['segmentation'] for a in anns] if need_masks else None
        return cls(image_ids, category_ids, scores, boxes, masks)

    def take(self, idx: np.ndarray) -> 'Detections':
        """The detections at ``idx``, in that order."""
        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) == len(self) and np.array_equal(idx, np.arange(len(idx))):
            return self
        return Detections(
            self.image_ids[idx], self.category_ids[idx], self.scores[idx],
            None if self.boxes is None else self.boxes[idx],
            None if self.masks is None else
            [self.mask_list()[i] for i in idx])

    # ------------------------------------------------------------ handing out
    def matrix(self) -> np.ndarray:
        """``(N, 7)`` float64 ``[image_id, x, y, w, h, score, category_id]``
        (``COCO.loadRes``'s array layout); needs boxes."""
        out = np.empty((len(self), 7), np.float64)
        out[:, 0] = self.image_ids
        out[:, 1:5] = self.boxes
        out[:, 5] = self.scores
        out[:, 6] = self.category_ids
        return out

    def to_records(self, iou_type: str = 'bbox') -> List[dict]:
        """Fresh result dicts (a library may modify them): ``bbox`` when
        there are boxes, ``segmentation`` (a copy of the RLE dict) for mask
        IoU types."""
        imgs = self.image_ids.tolist()
        cats = self.category_ids.tolist()
        scores = self.scores.tolist()
        if self.boxes is not None:
            boxes = self.boxes.tolist()
            recs = [dict(image_id=i, category_id=c, bbox=b, score=s)
                    for i, c, b, s in zip(imgs, cats, boxes, scores)]
        else:
            recs = [dict(image_id=i, category_id=c, score=s)
                    for i, c, s in zip(imgs, cats, scores)]
        if iou_type in MASK_IOU_TYPES:
            for r, m in zip(recs, self.mask_list()):
                r['segmentation'] = dict(m)
        return recs

    def max_per_group(self, per_image: bool = False) -> int:
        """Largest number of detections of one (image, category) pair, or
        of one image with ``per_image`` (at least 1)."""
        if len(self) == 0:
            return 1
        if per_image:
            keys = self.image_ids
        else:
            keys = np.stack([self.image_ids, self.category_ids], 1)
        _, counts = np.unique(keys, axis=0 if keys.ndim > 1 else None,
                              return_counts=True)
        return int(counts.max())


def _float_column(values: Sequence[Any], field: str,
                  image_ids: Sequence[Any], width: int = 0) -> np.ndarray:
    """``values`` as float64 of shape (N,) or (N, width); JSON ``null``
    becomes NaN (caught by :func:`validate_detections`)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
        shape_ok = arr.shape == ((len(values), width) if width
                                 else (len(values),))
    except (TypeError, ValueError):
        shape_ok = False
    if not shape_ok:
        for i, v in enumerate(values):
            try:
                a = np.asarray(v, dtype=np.float64)
                if a.shape == ((width,) if width else ()):
                    continue
            except (TypeError, ValueError):
                pass
            what = f'{width} numbers' if width else 'a number'
            raise InvalidDetectionsError(
                f'{_where(i, image_ids[i])}: field {field!r} must be '
                f'{what}, got {v!r}')
        arr = np.asarray(values, dtype=np.float64)
    if len(values) == 0 and width:
        arr = arr.reshape(0, width)
    return arr


def _ground_truth_index(gt: Mapping[str, Any]):
    images = gt['images']
    img_ids = np.array([int(im['id']) for im in images], np.int64)
    sizes = np.array([(int(im.get('height', -1)), int(im.get('width', -1)))
                      for im in images], np.int64).reshape(-1, 2)
    cat_ids = np.array(sorted(int(c['id']) for c in gt['categories']),
                       np.int64)
    return img_ids, sizes, cat_ids


def validate_detections(dets: Detections, gt: Mapping[str, Any],
                        iou_type: str) -> None:
    """Check every detection against ``gt`` before any backend sees it.

    Raises:
        InvalidDetectionsError: naming the first bad detection (position
            and ``image_id``) and the field: ``image_id`` not an image of
            ``gt``; ``category_id`` not a category of ``gt``; ``score`` not
            finite; ``bbox`` not finite or with a negative width/height;
            ``segmentation`` missing (mask IoU types), not a compressed RLE
            or not of its image's size.
    """
    if len(dets) == 0:
        return
    img_ids, sizes, cat_ids = _ground_truth_index(gt)
    order = np.argsort(img_ids)
    pos = np.searchsorted(img_ids[order], dets.image_ids)
    pos = np.minimum(pos, len(order) - 1) if len(order) else pos
    known = (img_ids[order][pos] == dets.image_ids) if len(order) else \
        np.zeros(len(dets), bool)
    _first_bad(~known, dets, 'image_id',
               lambda i: f'{int(dets.image_ids[i])} is not an image of the '
               f'ground truth ({len(img_ids)} images)')
    cpos = np.minimum(np.searchsorted(cat_ids, dets.category_ids),
                      max(len(cat_ids) - 1, 0))
    known = cat_ids[cpos] == dets.category_ids if len(cat_ids) else \
        np.zeros(len(dets), bool)
    _first_bad(~known, dets, 'category_id',
               lambda i: f'{int(dets.category_ids[i])} is not a category of '
               f'the ground truth (ids {int(cat_ids.min())}..'
               f'{int(cat_ids.max())}, {len(cat_ids)} categories)'
               if len(cat_ids) else 'the ground truth has no categories')
    _first_bad(~np.isfinite(dets.scores), dets, 'score',
               lambda i: f'is not finite ({dets.scores[i]!r})')
    if dets.boxes is not None:
        b = dets.boxes
        _first_bad(~np.isfinite(b).all(1), dets, 'bbox',
                   lambda i: f'is not finite ({b[i].tolist()})')
        _first_bad((b[:, 2:] < 0).any(1), dets, 'bbox',
                   lambda i: f'has a negative width or height '
                   f'([x, y, w, h] = {b[i].tolist()})')
    if iou_type not in MASK_IOU_TYPES:
        return
    if dets.masks is None or len(dets.masks) != len(dets):
        raise InvalidDetectionsError(
            f'{iou_type} evaluation needs one mask per detection (field '
            "'segmentation'); "
            f'got {0 if dets.masks is None else len(dets.masks)} for '
            f'{len(dets)} detections')
    img_size = sizes[order][pos]
    if isinstance(dets.masks, EncodedMasks):
        msize = dets.masks.sizes  # built from encoded masks: RLEs
    else:
        msize = _mask_sizes(dets)
    known_size = img_size[:, 0] >= 0
    _first_bad(known_size & (msize != img_size).any(1), dets,
               'segmentation',
               lambda i: f'has size {msize[i].tolist()} but the image is '
               f'{img_size[i].tolist()} (height, width)')


def _mask_sizes(dets: Detections) -> np.ndarray:
    """``(N, 2)`` sizes of RLE dicts, checking that each is one."""
    msize = np.full((len(dets), 2), -2, np.int64)
    for i, m in enumerate(dets.masks):
        if isinstance(m, Mapping) and isinstance(m.get('counts'),
                                                 (bytes, str)):
            s = m.get('size')
            if isinstance(s, (list, tuple, np.ndarray)) and len(s) == 2:
                msize[i] = s
                continue
        raise InvalidDetectionsError(
            f'{_where(i, int(dets.image_ids[i]))}: field \'segmentation\' '
            'must be a compressed RLE {"size": [h, w], "counts": str}, got '
            f'{type(m).__name__}')
    return msize


def _first_bad(bad: np.ndarray, dets: Detections, field: str,
               what) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        n = int(bad.sum())
        more = f' ({n - 1} more detections like it)' if n > 1 else ''
        raise InvalidDetectionsError(
            f'{_where(i, int(dets.image_ids[i]))}: field {field!r} '
            f'{what(i)}{more}')


def group_top_indices(keys: np.ndarray, scores: np.ndarray, k: int,
                      sort_all: bool) -> np.ndarray:
    """Indices of the ``k`` highest-scoring of each group of ``keys``.

    Groups in order of first appearance; a group is sorted by descending
    score, ties in input order (Python's stable ``sorted(reverse=True)``),
    when it has more than ``k`` members or ``sort_all``, and is cut to
    ``k``; otherwise it keeps its input order.
    """
    n = len(keys)
    if n == 0:
        return np.zeros(0, np.int64)
    _, first, inv, counts = np.unique(keys, return_index=True,
                                      return_inverse=True,
                                      return_counts=True)
    inv = inv.reshape(-1)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind='stable')] = np.arange(len(first))
    group = rank[inv]
    sort = np.ones(n, bool) if sort_all else counts[inv] > k
    key = np.where(sort, -scores, 0.0)
    order = np.lexsort((np.arange(n), key, group))
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    lengths = np.diff(np.r_[starts, n])
    within = np.arange(n) - np.repeat(starts, lengths)
    return order[within < k]


def cap_indices(dets: Detections, max_dets: int,
                max_dets_per_cat: Optional[int] = None) -> np.ndarray:
    """Indices (in output order) of the detections the protocol keeps.

    The per-category cap of fixed AP (``max_dets_per_cat``, over the whole
    set, groups in order of first appearance) first when given, then the
    per-image cap ``max_dets`` (-1: none) as ``lvis.LVISResults`` applies
    it: grouped by image in order of first appearance, an image over the
    cap sorted by descending score (stable) and cut.
    """
    idx = np.arange(len(dets))
    if max_dets_per_cat is not None:
        idx = idx[group_top_indices(dets.category_ids, dets.scores,
                                    max_dets_per_cat, sort_all=True)]
    if max_dets is not None and max_dets >= 0:
        idx = idx[group_top_indices(dets.image_ids[idx], dets.scores[idx],
                                    max_dets, sort_all=False)]
    return idx


def as_detections(results: Any, iou_type: str) -> Detections:
    """``results`` (a :class:`Detections` or a results list) as columns."""
    if isinstance(results, Detections):
        return results
    return Detections.from_records(results, iou_type)

