"""Boundary-aware refinement (BAR) loss of RefineMask.

Zhang et al., "RefineMask: Towards High-Quality Instance Segmentation with
Fine-Grained Features", CVPR 2021, Sec. 3.4. For mask logits ``x``, binary
targets ``y`` and a region ``R`` (the boundary band, see
:func:`longtail_plugin.models.roi_heads.refine_mask.boundary_band`):

    L_BAR = loss_weight * sum_{p in R} BCE(x_p, y_p) / max(|R|, 1)

With ``region=None`` the loss is the plain mean BCE over all pixels, which is
what RefineMask uses for its coarse stages and its semantic head. Logits are
evaluated in float32 (safe under bf16/fp16 autocast).
"""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS
from ..roi_heads.refine_mask.boundary import boundary_band

__all__ = ['BARCrossEntropyLoss', 'bar_cross_entropy']


def bar_cross_entropy(pred: Tensor,
                      target: Tensor,
                      region: Optional[Tensor] = None) -> Tensor:
    """Sum of BCE-with-logits over ``region`` divided by ``max(|R|, 1)``.

    Args:
        pred (Tensor): Logits of any shape.
        target (Tensor): Targets in [0, 1], same number of elements as
            ``pred``.
        region (Tensor, optional): Bool (or {0,1}) mask with the number of
            elements of ``pred``. ``None`` means every pixel (mean BCE).
    """
    pred = pred.float()
    target = target.float().reshape(pred.shape)
    loss = F.binary_cross_entropy_with_logits(pred, target, reduction='none')
    if region is None:
        # mean over all pixels; an empty input gives 0 (keeps the graph)
        return loss.sum() / max(loss.numel(), 1)
    region = region.reshape(pred.shape).to(loss.dtype)
    return (loss * region).sum() / region.sum().clamp(min=1.0)


@MODELS.register_module()
class BARCrossEntropyLoss(nn.Module):
    """Boundary-aware binary cross-entropy (RefineMask's BAR loss).

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        boundary_width (int): Band width used when the region is derived
            from ``target`` itself (``forward(..., region='target')``).
            Defaults to 2, the value of the paper.
        ratio (float): Band threshold (fraction of the window of the other
            class). Defaults to 0.1.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 boundary_width: int = 2,
                 ratio: float = 0.1) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.boundary_width = boundary_width
        self.ratio = ratio

    def forward(self,
                pred: Tensor,
                target: Tensor,
                region=None,
                **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): Mask logits ``(N, H, W)`` or ``(N, 1, H, W)``.
            target (Tensor): Binary targets of the same number of elements.
            region (Tensor | str | None): Bool region ``R``. ``'target'``
                uses the boundary band of ``target``; ``None`` all pixels.
        """
        if isinstance(region, str):
            if region != 'target':
                raise ValueError(f'unknown region {region!r}')
            tgt = target.reshape(-1, *target.shape[-2:])
            region = boundary_band(tgt, self.boundary_width, self.ratio)
        return self.loss_weight * bar_cross_entropy(pred, target, region)
