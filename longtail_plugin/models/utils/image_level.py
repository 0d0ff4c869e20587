"""Reading the image-level flag of a batch (CLIS / Detic-style training).

Image-level samples (an image, its class label(s) and optionally the box of
the object; no instance annotation) come from
``longtail_plugin.datasets.ImageLevelDataset`` through
``LoadImageLevelAnnotations``, which sets ``results['image_level'] = True``;
``PackDetInputs(meta_keys=(..., 'image_level'))`` carries it into the
sample's metainfo. Detection samples do not have the key at all (or have it
``False``). The detector and the RoI heads split every training batch with
:func:`split_image_level` and treat the two kinds differently (see
:class:`~longtail_plugin.models.detectors.ImageLevelTwoStageDetector`).

CLIS: "Collaborative Learning with Image-level Supervision" (waveboo/CLIS);
no model code was released, this convention is ours.
"""
from typing import List, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ['is_image_level', 'split_image_level', 'select_levels']


def is_image_level(data_sample) -> bool:
    """``True`` for an image-level sample (``metainfo['image_level']``),
    ``False`` for a detection sample (key absent or false)."""
    return bool(data_sample.metainfo.get('image_level', False))


def split_image_level(
        batch_data_samples: Sequence) -> Tuple[List[int], List[int]]:
    """Batch indices of the detection samples and of the image-level ones.

    Returns:
        ``(det_idx, img_idx)``: two sorted lists whose union is
        ``range(len(batch_data_samples))``.
    """
    det_idx: List[int] = []
    img_idx: List[int] = []
    for i, sample in enumerate(batch_data_samples):
        (img_idx if is_image_level(sample) else det_idx).append(i)
    return det_idx, img_idx


def select_levels(x: Sequence[Tensor], idx: Sequence[int]) -> Tuple[Tensor]:
    """The multi-level features ``x`` (each ``[B, ...]``) of the batch
    elements ``idx`` (the features themselves when ``idx`` is the whole
    batch, in order)."""
    if len(x) == 0 or list(idx) == list(range(x[0].size(0))):
        return tuple(x)
    index = torch.as_tensor(list(idx), dtype=torch.long, device=x[0].device)
    return tuple(level.index_select(0, index) for level in x)
