"""Annotations of image-level samples (CLIS data path).

CLIS (Collaborative Learning with Image-level Supervision, waveboo/CLIS)
mixes image-level samples into detection batches; the paper released no
code, so this transform is OUR design. It takes the place of
``LoadAnnotations`` in the image-level pipeline and gives an image-level
sample the fields a detection sample has, so that one batch can hold both
kinds:

- ``gt_bboxes`` (``HorizontalBoxes``): the region of each instance (one per
  label, see :class:`~longtail_plugin.datasets.ImageLevelDataset`);
- ``gt_bboxes_labels`` (int64) and ``gt_ignore_flags`` (bool);
- with ``with_mask=True``: ``gt_masks``, the filled box rectangles (pixel
  rows ``floor(y1) .. ceil(y2) - 1`` and columns ``floor(x1) .. ceil(x2) -
  1``) as ``BitmapMasks`` (``poly2mask=True``) or as rectangle
  ``PolygonMasks``. They exist only so that ``DetDataPreprocessor(pad_mask=
  True)`` and the collation of a mixed batch work; no loss uses them;
- ``results['image_level'] = True``; list ``'image_level'`` in
  ``PackDetInputs``' ``meta_keys`` to carry it into the data sample's
  metainfo (detection samples have no such key, so their metainfo has none).
"""
import math
from typing import List, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks, PolygonMasks

__all__ = ['LoadImageLevelAnnotations', 'rectangle_bitmaps',
           'rectangle_polygons']


def _pixel_span(lo: float, hi: float, size: int) -> slice:
    start = min(max(int(math.floor(lo)), 0), size)
    stop = min(max(int(math.ceil(hi)), start), size)
    return slice(start, stop)


def rectangle_bitmaps(boxes: np.ndarray, height: int,
                      width: int) -> BitmapMasks:
    """``BitmapMasks`` of the filled rectangles of ``boxes`` ([N, 4] x1 y1
    x2 y2), pixel ``(r, c)`` inside when ``floor(y1) <= r < ceil(y2)`` and
    ``floor(x1) <= c < ceil(x2)``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    masks = np.zeros((len(boxes), height, width), dtype=np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        masks[k, _pixel_span(y1, y2, height), _pixel_span(x1, x2, width)] = 1
    return BitmapMasks(masks, height, width)


def rectangle_polygons(boxes: np.ndarray, height: int,
                       width: int) -> PolygonMasks:
    """``PolygonMasks`` with one rectangle polygon per box ([N, 4])."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    polys: List[List[np.ndarray]] = [
        [np.array([x1, y1, x2, y1, x2, y2, x1, y2], dtype=np.float64)]
        for x1, y1, x2, y2 in boxes]
    return PolygonMasks(polys, height, width)


@TRANSFORMS.register_module()
class LoadImageLevelAnnotations(BaseTransform):
    """Load the region boxes and labels of an image-level sample.

    Required keys: ``instances`` (from ``ImageLevelDataset``), ``ori_shape``
    (from ``LoadImageFromFile``) when ``with_mask``.

    Added keys: ``gt_bboxes``, ``gt_bboxes_labels``, ``gt_ignore_flags``,
    ``gt_masks`` (``with_mask``), ``image_level``.

    Args:
        with_mask (bool): Add the rectangle masks. Defaults to True.
        poly2mask (bool): ``BitmapMasks`` when True, else ``PolygonMasks``
            (match the detection pipeline's ``LoadAnnotations``). Defaults
            to True.
    """

    def __init__(self, with_mask: bool = True, poly2mask: bool = True) -> None:
        self.with_mask = with_mask
        self.poly2mask = poly2mask

    def transform(self, results: dict) -> dict:
        instances: Sequence[dict] = results.get('instances') or []
        if not instances:
            raise ValueError(
                'LoadImageLevelAnnotations: the sample '
                f'{results.get("img_path", "?")} has no instances (is it '
                'from ImageLevelDataset?)')
        boxes = np.array([inst['bbox'] for inst in instances],
                         dtype=np.float32).reshape(-1, 4)
        results['gt_bboxes'] = HorizontalBoxes(boxes, dtype=torch.float32)
        results['gt_bboxes_labels'] = np.array(
            [inst['bbox_label'] for inst in instances], dtype=np.int64)
        results['gt_ignore_flags'] = np.array(
            [bool(inst.get('ignore_flag', 0)) for inst in instances],
            dtype=bool)
        if self.with_mask:
            if 'ori_shape' not in results:
                raise KeyError(
                    'LoadImageLevelAnnotations(with_mask=True) needs '
                    "results['ori_shape']: put LoadImageFromFile before it")
            h, w = results['ori_shape']
            make = rectangle_bitmaps if self.poly2mask else rectangle_polygons
            results['gt_masks'] = make(boxes, h, w)
        results['image_level'] = True
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(with_mask={self.with_mask}, '
                f'poly2mask={self.poly2mask})')
