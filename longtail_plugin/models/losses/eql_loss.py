"""Equalization Loss (EQL v1).

Tan et al., "Equalization Loss for Long-Tailed Object Recognition",
CVPR 2020 (arXiv:2003.05176).

A sigmoid classifier over the ``C`` foreground classes (background RoIs have
an all-zero target). For RoI ``i`` and class ``j``:

.. math::

    w_{ij} = 1 - E(i)\\, T_\\lambda(f_j)\\, (1 - y_{ij}),

    L = \\frac{1}{N} \\sum_i \\sum_{j<C} w_{ij}\\,
        \\mathrm{BCE}(z_{ij}, y_{ij}),

with ``E(i) = 1`` when RoI ``i`` is foreground, ``f_j`` the fraction of
training images containing class ``j`` and ``T_lambda(f) = 1`` when
``f < lambda``: a foreground RoI does not push down the scores of tail
classes it does not belong to; background RoIs still suppress every class.

Frequencies come from the training annotation file (LVIS ``image_count`` /
number of images, through :func:`longtail_plugin.utils.load_category_info`)
or an explicit ``image_frequency`` list - never from a built-in table.

Classifier layout (our design, via MMDetection's ``custom_cls_channels``
protocol, so the stock ``Shared2FCBBoxHead`` is unchanged): the head has
``C`` output channels, one sigmoid per class and no background logit,
exactly the formula above. :meth:`EqualizationLoss.get_activation` returns
``C + 1`` scores, the last being ``prod_j (1 - p_j)`` (the probability that
no class fires), which MMDetection's NMS drops. For heads that do not follow
the protocol and emit ``C + 1`` logits, the last column is ignored by the
loss (it receives no gradient) and by the activation.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS
from .utils import (check_head_num_classes, top1_accuracy, upcast,
                    weighted_reduce)

__all__ = ['EqualizationLoss']


def resolve_image_frequency(num_classes: int,
                            ann_file: Optional[str],
                            data_root: Optional[str],
                            image_frequency: Optional[Sequence[float]],
                            owner: str) -> np.ndarray:
    """Per-class image frequency from ``ann_file`` or an explicit list."""
    if ann_file is not None and image_frequency is not None:
        raise ValueError(f'{owner}: give either `ann_file` or '
                         '`image_frequency`, not both')
    if image_frequency is not None:
        freq = np.asarray(image_frequency, dtype=np.float64).reshape(-1)
        if freq.size != num_classes:
            raise ValueError(
                f'{owner}: `image_frequency` has {freq.size} entries but '
                f'num_classes={num_classes}')
        return freq
    if ann_file is None:
        raise ValueError(
            f'{owner} needs the class frequencies: set `ann_file` (the '
            'training annotation file, LVIS `image_count` is used) or '
            '`image_frequency` (one value per class)')
    from ...utils.category_info import load_category_info
    info = load_category_info(ann_file, data_root)
    info.check_num_classes(num_classes, f'{owner}: num_classes')
    return np.asarray(info.image_frequency, dtype=np.float64)


@MODELS.register_module()
class EqualizationLoss(nn.Module):
    """Equalization Loss v1 (Tan et al., CVPR 2020) for two-stage heads.

    Args:
        num_classes: number of foreground classes ``C``.
        lambda_: frequency threshold ``lambda`` of ``T``; classes with image
            frequency below it are "tail". 1.76e-3 is the paper's LVIS v0.5
            value; the authors' LVIS v1 config uses 1.1e-3.
        ann_file: training annotation file (COCO/LVIS format) to read image
            counts from; joined to ``data_root`` when relative.
        data_root: optional data root for ``ann_file``.
        image_frequency: explicit per-class image frequency (alternative
            to ``ann_file``).
        use_sigmoid: kept for config compatibility; must be True.
        reduction: 'none' | 'mean' | 'sum'.
        loss_weight: weight of the loss.
    """

    def __init__(self,
                 num_classes: int,
                 lambda_: float = 1.76e-3,
                 ann_file: Optional[str] = None,
                 data_root: Optional[str] = None,
                 image_frequency: Optional[Sequence[float]] = None,
                 use_sigmoid: bool = True,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if not use_sigmoid:
            raise ValueError('EqualizationLoss is a sigmoid loss: '
                             'use_sigmoid must be True')
        self.use_sigmoid = True
        self.num_classes = int(num_classes)
        self.lambda_ = float(lambda_)
        self.reduction = reduction
        self.loss_weight = float(loss_weight)
        freq = resolve_image_frequency(self.num_classes, ann_file, data_root,
                                       image_frequency, 'EqualizationLoss')
        # derived from the data set, so not stored in checkpoints
        self.register_buffer(
            'tail_mask',
            torch.as_tensor(freq < self.lambda_, dtype=torch.float32),
            persistent=False)
        # MMDetection's custom classifier protocol (see BBoxHead)
        self.custom_cls_channels = True
        self.custom_activation = True
        self.custom_accuracy = True

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, lambda_={self.lambda_}, '
                f'num_tail={int(self.tail_mask.sum())}')

    def get_cls_channels(self, num_classes: int) -> int:
        """Classifier channels: one sigmoid per foreground class."""
        check_head_num_classes('EqualizationLoss', self.num_classes,
                               num_classes)
        return num_classes

    def _fg(self, cls_score: Tensor) -> Tensor:
        c = cls_score.size(-1)
        if c not in (self.num_classes, self.num_classes + 1):
            raise ValueError(
                f'EqualizationLoss: cls_score has {c} columns, expected '
                f'num_classes={self.num_classes} (or {self.num_classes + 1} '
                'with an ignored background column)')
        return cls_score[..., :self.num_classes]

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """``[..., C+1]``: ``sigmoid(z_j)`` and ``prod_j (1 - sigmoid(z_j))``.
        """
        fg = self._fg(cls_score)
        bg = F.logsigmoid(-fg).sum(dim=-1, keepdim=True).exp()
        return torch.cat([fg.sigmoid(), bg], dim=-1)

    def get_accuracy(self, cls_score: Tensor,
                     labels: Tensor) -> Dict[str, Tensor]:
        """Top-1 accuracy of the foreground RoIs over the ``C`` classes."""
        fg = self._fg(cls_score)
        pos = (labels >= 0) & (labels < self.num_classes)
        return dict(acc_classes=top1_accuracy(fg[pos], labels[pos]))

    def class_weights(self, labels: Tensor) -> Tuple[Tensor, Tensor]:
        """``(w, y)``: ``w_ij = 1 - E(i) T(f_j) (1 - y_ij)`` and the
        ``[N, C]`` binary targets (all zero for background RoIs)."""
        n, c = labels.numel(), self.num_classes
        is_fg = (labels >= 0) & (labels < c)
        dtype = self.tail_mask.dtype
        target = torch.zeros((n, c), device=labels.device, dtype=dtype)
        target[is_fg.nonzero(as_tuple=True)[0], labels[is_fg]] = 1.0
        excl = is_fg.float()[:, None] * self.tail_mask[None, :]
        return 1.0 - excl * (1.0 - target), target

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """EQL loss.

        Args:
            cls_score: ``[N, C]`` logits (or ``[N, C+1]``, last ignored).
            label: ``[N]`` labels in ``[0, C]``, ``C`` = background.
            weight: optional ``[N]`` label weights.
            avg_factor: normaliser for 'mean' (the bbox head passes the
                number of RoIs with a positive label weight).
            reduction_override: 'none' | 'mean' | 'sum'.

        Returns:
            The loss (``[N]`` per RoI for reduction 'none').
        """
        assert reduction_override in (None, 'none', 'mean', 'sum')
        reduction = reduction_override or self.reduction
        fg = self._fg(cls_score)
        if fg.numel() == 0:
            # zero loss that keeps the graph (DDP needs every parameter used)
            if reduction == 'none':
                return fg.sum(dim=-1) * 0.0
            return cls_score.sum() * 0.0
        fg = upcast(fg)
        w, target = self.class_weights(label.long())
        bce = F.binary_cross_entropy_with_logits(
            fg, target.to(fg.dtype), reduction='none')
        per_roi = (bce * w).sum(dim=-1)
        loss = weighted_reduce(per_roi, weight, reduction, avg_factor)
        return self.loss_weight * loss
