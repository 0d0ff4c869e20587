"""The metric's stored predictions: compact per image, columns for the set.

``LongTailLVISMetric.process`` keeps, per image, MMDetection's arrays
(``bboxes`` ``xyxy`` float32, ``scores``, ``labels``, optional
``mask_scores``) and the masks as one :class:`EncodedMasks` (compressed
RLE strings joined into one ``bytes`` with their offsets and sizes) rather
than a Python dict per detection. At evaluation the images are
concatenated into one :class:`~..backends.Detections` per results kind
(:func:`predictions_to_detections`), which the backends take in memory.
Results files are written only on request, by :func:`write_results_json`,
which formats rows straight from the arrays.

The conversion is the one of ``mmdet.evaluation.CocoMetric.results2json``
(``[x1, y1, x2 - x1, y2 - y1]`` in float64 from the float32 box, the score
as a float, ``cat_ids[label]``, the mask score for ``segm`` when the model
gives one), so the in-memory detections equal the JSON file's, value for
value and in the same order.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from ..backends.detections import (Detections, EncodedMasks,
                                   InvalidDetectionsError)

__all__ = ['EncodedMasks', 'predictions_to_detections',
           'write_results_json', 'RESULT_KINDS']

#: The results kind (file suffix) each IoU type reads.
RESULT_KINDS = {'bbox': 'bbox', 'segm': 'segm', 'boundary': 'segm'}


def predictions_to_detections(preds: Sequence[Mapping[str, Any]],
                              cat_ids: Sequence[int],
                              kind: str = 'bbox') -> Detections:
    """One :class:`Detections` of the stored predictions of every image.

    Args:
        preds: what ``LongTailLVISMetric.process`` stored per image
            (``img_id``, ``bboxes``, ``scores``, ``labels``, optionally
            ``mask_scores`` and ``rle_masks``).
        cat_ids: dataset category id of each label.
        kind: ``'bbox'`` or ``'segm'`` (masks and mask scores).

    Raises:
        InvalidDetectionsError: a label outside ``[0, len(cat_ids))`` or
            not an integer (naming the image and ``pred_instances.labels``);
            ``segm`` without masks.
    """
    cat_ids = np.asarray(cat_ids, np.int64)
    n = np.array([len(p['labels']) for p in preds], np.int64)
    img = np.array([p.get('img_id', i) for i, p in enumerate(preds)],
                   np.int64)
    image_ids = np.repeat(img, n)
    total = int(n.sum())

    def cat(key: str, width: int = 0) -> np.ndarray:
        # images without detections may hold arrays of another dtype
        parts = [np.asarray(p[key]).reshape((-1, width) if width else -1)
                 for p, k in zip(preds, n) if k]
        if not parts:
            return np.zeros((0, width) if width else 0)
        return np.concatenate(parts)

    labels = cat('labels')
    if total and labels.dtype.kind not in 'iu':
        raise InvalidDetectionsError(
            'pred_instances.labels must be integers, got '
            f'{labels.dtype} (image_id {int(image_ids[0])})')
    labels = labels.astype(np.int64, copy=False)
    bad = (labels < 0) | (labels >= len(cat_ids))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidDetectionsError(
            f'detection {i} (image_id {int(image_ids[i])}): field '
            f'pred_instances.labels is {int(labels[i])}, outside [0, '
            f'{len(cat_ids)}) for the {len(cat_ids)} categories of the '
            f'annotation file ({int(bad.sum())} such labels)')
    xyxy = cat('bboxes', 4).astype(np.float64)
    boxes = np.empty_like(xyxy)
    boxes[:, :2] = xyxy[:, :2]
    boxes[:, 2:] = xyxy[:, 2:] - xyxy[:, :2]
    masks = None
    score_key = 'scores'
    if kind == 'segm':
        if not all('rle_masks' in p for p in preds):
            raise InvalidDetectionsError(
                'segm/boundary evaluation needs mask predictions '
                '(pred_instances.masks)')
        masks = EncodedMasks.concatenate([p['rle_masks'] for p in preds])
        if all('mask_scores' in p for p in preds):
            score_key = 'mask_scores'
    scores = cat(score_key).astype(np.float64)
    return Detections(image_ids, cat_ids[labels] if total else
                      np.zeros(0, np.int64), scores, boxes, masks)


def _escape(counts: Any) -> str:
    s = counts.decode() if isinstance(counts, bytes) else counts
    # RLE strings use ASCII 48-111, which includes the backslash
    return s.replace('\\', '\\\\')


def write_results_json(dets: Detections, path: str, kind: str,
                       chunk: int = 200_000) -> str:
    """Write ``dets`` as an LVIS/COCO results file (MMDetection's layout:
    ``image_id``, ``bbox``, ``score``, ``category_id`` and, for ``segm``,
    ``segmentation``), formatting rows from the arrays in chunks: the
    values are those ``json`` writes (shortest round-trip ``repr``)."""
    row = '{"image_id": %d, "bbox": [%r, %r, %r, %r], "score": %r, ' \
          '"category_id": %d'
    if kind == 'segm':
        row += ', "segmentation": {"size": [%d, %d], "counts": "%s"}}'
    else:
        row += '}'
    tmp = f'{path}.tmp'
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    with open(tmp, 'w') as f:
        f.write('[')
        for a in range(0, len(dets), chunk):
            b = min(a + chunk, len(dets))
            cols = [dets.image_ids[a:b].tolist(),
                    *dets.boxes[a:b].T.tolist(), dets.scores[a:b].tolist(),
                    dets.category_ids[a:b].tolist()]
            if kind == 'segm':
                m = dets.mask_list()[a:b]
                cols += [[r['size'][0] for r in m], [r['size'][1] for r in m],
                         [_escape(r['counts']) for r in m]]
            if a:
                f.write(', ')
            f.write(', '.join(map(row.__mod__, zip(*cols))))
        f.write(']')
    os.replace(tmp, path)
    return path
