"""Paste image-level objects into the detection images of the same batch.

CLIS (Collaborative Learning with Image-level Supervision, waveboo/CLIS)
learns from the contrast between the instance feature of an image-level
object pasted into a detection image and the image-level feature of its
source region. The paper released no code; this batch augment is OUR
design of that data step.

Why a batch augment: the pasted copy and its source must be in the SAME
batch (they form a positive pair; the other pairs of the batch are the
negatives). MMDetection's ``CopyPaste`` / ``MultiImageMixDataset`` draw the
partner image from their own data set, never from the other source of a
``ConcatDataset``. It runs as one of ``DetDataPreprocessor``'s
``batch_augments`` (training only), after normalisation, padding and
``pad_mask``, on the batch tensor ``inputs`` [B, C, H, W].

For each image-level sample ``j`` (``metainfo['image_level']``), with
probability ``prob``:

1. source: its first region box ``b_j`` (pixels ``floor(x1) .. ceil(x2)``,
   ``floor(y1) .. ceil(y2)`` of ``inputs[j]``, clipped to its ``img_shape``),
   of size ``h_s x w_s``;
2. targets: ``min(num_targets, #detection samples)`` distinct detection
   samples ``i`` drawn at random;
3. size: ``s ~ U(scale_range)``, ``s' = min(s, H_i / h_s, W_i / w_s)``
   (``H_i x W_i``: ``img_shape`` of ``i``, its valid, unpadded area), paste
   size ``h = clip(round(s' h_s), 1, H_i)``, ``w`` likewise; the crop is
   resized with bilinear ``F.interpolate`` (copied as is when the size is
   unchanged);
4. place: up to ``max_tries`` uniform top-left corners with the patch inside
   the valid area; the first one where every existing box ``g`` of ``i``
   (its original boxes and those pasted before) has
   ``area(g & patch) / area(g) <= max_overlap`` (the share of the existing
   object the patch would hide) is taken; none -> the pair is skipped;
5. the patch replaces those pixels of ``inputs[i]`` and one instance is
   appended to ``i``'s ``gt_instances``: the patch box, the first label of
   ``j``, a filled-rectangle mask of ``i``'s mask type (``BitmapMasks`` or
   ``PolygonMasks``, when ``i`` has masks) and ``paste_source = j``.

Every sample of the batch gets ``gt_instances.paste_source`` (int64, -1 for
the instances that were not pasted), so the field is always present after
the augment. Random draws come from a ``torch.Generator`` seeded once with
``seed``, or from the global torch RNG when ``seed`` is None (MMEngine's
``randomness`` seed then makes them reproducible).
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import BaseBoxes, HorizontalBoxes
from mmdet.structures.mask import BitmapMasks, PolygonMasks

from ...datasets.transforms.image_level import (rectangle_bitmaps,
                                                rectangle_polygons)
from ..utils.image_level import split_image_level

__all__ = ['ImageLevelPaste']

# gt_instances fields the augment knows how to extend
_KNOWN_FIELDS = ('bboxes', 'labels', 'masks', 'paste_source')


def _box_tensor(bboxes) -> Tensor:
    return bboxes.tensor if isinstance(bboxes, BaseBoxes) else bboxes


def _valid_shape(sample: DetDataSample, inputs: Tensor) -> Tuple[int, int]:
    h, w = sample.metainfo.get('img_shape', inputs.shape[-2:])[:2]
    return (min(int(h), inputs.shape[-2]), min(int(w), inputs.shape[-1]))


@MODELS.register_module()
class ImageLevelPaste(nn.Module):
    """Batch augment pasting image-level regions into detection samples.

    Args:
        num_targets (int): Detection samples each source is pasted into.
            Defaults to 1.
        scale_range (Sequence[float]): Range of the paste size relative to
            the source region. Defaults to (0.5, 1.0).
        max_overlap (float): Largest share of an existing box the patch may
            cover. Defaults to 0.0 (no overlap).
        max_tries (int): Random places tried per pair. Defaults to 10.
        prob (float): Probability of pasting each source. Defaults to 1.0.
        seed (int, optional): Seed of the augment's own generator; None
            draws from the global torch RNG. Defaults to None.
    """

    def __init__(self,
                 num_targets: int = 1,
                 scale_range: Sequence[float] = (0.5, 1.0),
                 max_overlap: float = 0.0,
                 max_tries: int = 10,
                 prob: float = 1.0,
                 seed: Optional[int] = None) -> None:
        super().__init__()
        if not isinstance(num_targets, int) or num_targets < 1:
            raise ValueError('ImageLevelPaste: num_targets must be an integer'
                             f' >= 1, got {num_targets!r}')
        if (len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]):
            raise ValueError('ImageLevelPaste: scale_range must be (low, high)'
                             f' with 0 < low <= high, got {scale_range!r}')
        if not 0.0 <= max_overlap <= 1.0:
            raise ValueError('ImageLevelPaste: max_overlap must be in [0, 1],'
                             f' got {max_overlap!r}')
        if not isinstance(max_tries, int) or max_tries < 1:
            raise ValueError('ImageLevelPaste: max_tries must be an integer '
                             f'>= 1, got {max_tries!r}')
        if not 0.0 <= prob <= 1.0:
            raise ValueError(
                f'ImageLevelPaste: prob must be in [0, 1], got {prob!r}')
        self.num_targets = num_targets
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.max_overlap = float(max_overlap)
        self.max_tries = max_tries
        self.prob = float(prob)
        self.seed = seed
        self._generator: Optional[torch.Generator] = None
        if seed is not None:
            self._generator = torch.Generator()
            self._generator.manual_seed(int(seed))

    # --------------------------------------------------------------- random
    def _rand(self) -> float:
        return float(torch.rand(1, generator=self._generator))

    def _randint(self, high: int) -> int:
        """Uniform integer in ``[0, high)``."""
        return int(torch.randint(0, high, (1, ), generator=self._generator))

    # ---------------------------------------------------------------- steps
    @staticmethod
    def _source_region(sample: DetDataSample,
                       inputs: Tensor) -> Optional[Tuple[int, int, int, int]]:
        boxes = _box_tensor(sample.gt_instances.bboxes)
        if len(boxes) == 0:
            return None
        x1, y1, x2, y2 = (float(v) for v in boxes[0])
        h, w = _valid_shape(sample, inputs)
        c1 = min(max(math.floor(x1), 0), w)
        r1 = min(max(math.floor(y1), 0), h)
        c2 = min(max(math.ceil(x2), c1), w)
        r2 = min(max(math.ceil(y2), r1), h)
        if c2 <= c1 or r2 <= r1:
            return None
        return c1, r1, c2, r2

    def _fits(self, box: Tensor, existing: Tensor) -> bool:
        if len(existing) == 0:
            return True
        lt = torch.maximum(existing[:, :2], box[:2])
        rb = torch.minimum(existing[:, 2:], box[2:])
        inter = (rb - lt).clamp(min=0).prod(dim=1)
        area = (existing[:, 2:] - existing[:, :2]).clamp(min=0).prod(dim=1)
        share = inter / area.clamp(min=1e-6)
        return bool((share <= self.max_overlap + 1e-6).all())

    @staticmethod
    def _append(sample: DetDataSample, box: Tuple[int, int, int, int],
                label: Tensor, source: int) -> None:
        gt = sample.gt_instances
        unknown = [k for k in gt.keys() if k not in _KNOWN_FIELDS]
        if unknown:
            raise ValueError(
                'ImageLevelPaste: cannot extend the gt_instances field(s) '
                f'{unknown} of {sample.metainfo.get("img_path", "a sample")}'
                f' (it knows {list(_KNOWN_FIELDS)})')
        old_boxes = gt.bboxes
        ref = _box_tensor(old_boxes)
        new_box = torch.tensor([box], dtype=ref.dtype, device=ref.device)
        new = InstanceData(metainfo=gt.metainfo)
        if isinstance(old_boxes, HorizontalBoxes):
            new.bboxes = HorizontalBoxes(new_box)
        elif isinstance(old_boxes, Tensor):
            new.bboxes = new_box
        else:
            raise TypeError('ImageLevelPaste: gt_instances.bboxes must be a '
                            'Tensor or HorizontalBoxes, got '
                            f'{type(old_boxes).__name__}')
        new.labels = label.reshape(1).to(gt.labels)
        if 'masks' in gt:
            masks = gt.masks
            if isinstance(masks, BitmapMasks):
                new.masks = rectangle_bitmaps(
                    new_box.cpu().numpy(), masks.height, masks.width)
            elif isinstance(masks, PolygonMasks):
                new.masks = rectangle_polygons(
                    new_box.cpu().numpy(), masks.height, masks.width)
            else:
                raise TypeError('ImageLevelPaste: gt_instances.masks must be'
                                ' BitmapMasks or PolygonMasks, got '
                                f'{type(masks).__name__}')
        new.paste_source = torch.tensor([source], dtype=torch.long,
                                        device=gt.paste_source.device)
        sample.gt_instances = InstanceData.cat([gt, new])

    # -------------------------------------------------------------- forward
    def forward(self, inputs: Tensor, data_samples: List[DetDataSample]
                ) -> Tuple[Tensor, List[DetDataSample]]:
        """Paste the image-level regions of the batch (see the module
        docstring); returns the new inputs and the updated samples."""
        if inputs.dim() != 4 or inputs.shape[0] != len(data_samples):
            raise ValueError(
                'ImageLevelPaste expects a [B, C, H, W] batch with one data '
                f'sample per image, got inputs {tuple(inputs.shape)} and '
                f'{len(data_samples)} samples')
        for sample in data_samples:
            gt = sample.gt_instances
            if 'paste_source' not in gt:
                gt.paste_source = torch.full((len(gt), ), -1,
                                             dtype=torch.long,
                                             device=inputs.device)
        det_idx, img_idx = split_image_level(data_samples)
        if not img_idx or not det_idx:
            return inputs, data_samples

        out = inputs.clone()
        lo, hi = self.scale_range
        for j in img_idx:
            if self.prob < 1.0 and self._rand() >= self.prob:
                continue
            region = self._source_region(data_samples[j], inputs)
            if region is None:
                continue
            c1, r1, c2, r2 = region
            crop = inputs[j, :, r1:r2, c1:c2]
            src_h, src_w = r2 - r1, c2 - c1
            label = data_samples[j].gt_instances.labels[0]
            order = torch.randperm(len(det_idx), generator=self._generator)
            for t in order[:self.num_targets].tolist():
                i = det_idx[t]
                h_i, w_i = _valid_shape(data_samples[i], inputs)
                scale = min(lo + (hi - lo) * self._rand(), h_i / src_h,
                            w_i / src_w)
                ph = min(max(round(src_h * scale), 1), h_i)
                pw = min(max(round(src_w * scale), 1), w_i)
                existing = _box_tensor(
                    data_samples[i].gt_instances.bboxes).float()
                for _ in range(self.max_tries):
                    y0 = self._randint(h_i - ph + 1)
                    x0 = self._randint(w_i - pw + 1)
                    box = (x0, y0, x0 + pw, y0 + ph)
                    if not self._fits(
                            torch.tensor(box, dtype=torch.float32,
                                         device=existing.device), existing):
                        continue
                    out[i, :, y0:y0 + ph, x0:x0 + pw] = self._resize(
                        crop, ph, pw)
                    self._append(data_samples[i], box, label, j)
                    break
        return out, data_samples

    @staticmethod
    def _resize(crop: Tensor, height: int, width: int) -> Tensor:
        if crop.shape[-2:] == (height, width):
            return crop
        resized = F.interpolate(
            crop[None].float(), size=(height, width), mode='bilinear',
            align_corners=False)[0]
        if not crop.is_floating_point():
            resized = resized.round()
        return resized.to(crop.dtype)

    def extra_repr(self) -> str:
        return (f'num_targets={self.num_targets}, scale_range='
                f'{self.scale_range}, max_overlap={self.max_overlap}, '
                f'max_tries={self.max_tries}, prob={self.prob}, '
                f'seed={self.seed}')
