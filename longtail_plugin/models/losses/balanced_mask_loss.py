"""Balanced mask loss: foreground/background re-balanced BCE inside each RoI.

Motivated by Tan et al., "1st Place Solution of LVIS Challenge 2020: A Good
Box is not a Guarantee of a Good Mask" (arXiv:2009.01559): thin, hollow or
diagonal objects give RoI mask targets that are mostly background, so the
per-pixel BCE of the mask head is dominated by background pixels. The report
gives no formula; the one below is OURS.

For RoI ``i`` with ``P`` pixels, targets ``t_p`` in ``[0, 1]`` (the selected
class channel) and foreground fraction ``f = (1/P) sum_p t_p``:

.. math::

    \\tilde f = \\mathrm{clamp}(f, \\epsilon, 1 - \\epsilon), \\quad
    u_{fg} = \\tilde f^{-\\gamma}, \\quad u_{bg} = (1 - \\tilde f)^{-\\gamma},

    Z = f\\, u_{fg} + (1 - f)\\, u_{bg}, \\quad
    w_p = \\frac{t_p u_{fg} + (1 - t_p) u_{bg}}{Z},

    L_i = \\frac{1}{P} \\sum_p w_p\\, \\mathrm{BCE}(x_p, t_p).

* ``gamma = 1`` (default): inverse-frequency weights; unclamped they are
  ``w_fg = 1 / (2 f)`` and ``w_bg = 1 / (2 (1 - f))``, so foreground and
  background pixels each carry half of the RoI's weight.
  ``gamma = 0`` is plain BCE; values in between interpolate.
* The pixel weights of every RoI average to exactly one (``Z``), so the
  loss keeps the scale of plain BCE (the ``loss_weight`` tuned for
  MMDetection's mask loss still applies) and a RoI that is all foreground
  or all background is plain BCE.
* When ``f = 1/2`` every weight is 1: plain BCE.
* ``epsilon`` (``min_fraction``) bounds the weight ratio
  ``w_fg / w_bg`` by ``((1 - epsilon) / epsilon) ** gamma``.
* The weights depend on the targets only (no gradient through them).

Works as MMDetection's ``FCNMaskHead.loss_mask``: the head calls
``loss_mask(mask_preds [N, K, H, W], mask_targets [N, H, W], labels [N])``
and the loss takes channel ``labels[i]`` of RoI ``i`` (class-agnostic heads
pass zeros). Reduction over RoIs follows MMDetection's ``weight_reduce_loss``
(``weight`` one value per RoI, ``avg_factor`` a number of RoIs); 'mean'
without ``avg_factor`` equals ``mask_cross_entropy``'s mean over all pixels
when ``gamma = 0``.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS
from .utils import REDUCTIONS, upcast, weighted_reduce

__all__ = ['BalancedMaskLoss', 'balanced_pixel_weights']


def balanced_pixel_weights(target: Tensor,
                           gamma: float = 1.0,
                           min_fraction: float = 0.02) -> Tensor:
    """Pixel weights ``w_p`` of ``[N, *]`` targets (see the module doc)."""
    t = target.reshape(target.size(0), -1)
    f = t.mean(dim=1, keepdim=True)
    fc = f.clamp(min_fraction, 1.0 - min_fraction)
    u_fg = fc.pow(-gamma)
    u_bg = (1.0 - fc).pow(-gamma)
    z = f * u_fg + (1.0 - f) * u_bg
    w = (t * u_fg + (1.0 - t) * u_bg) / z
    return w.reshape(target.shape)


@MODELS.register_module()
class BalancedMaskLoss(nn.Module):
    """Foreground/background balanced BCE for mask heads (our formula, see
    the module docstring).

    Args:
        gamma: strength of the re-balancing (0 = plain BCE, 1 = inverse
            frequency).
        min_fraction: ``epsilon``, the foreground fraction is clamped to
            ``[epsilon, 1 - epsilon]`` in the weights; in ``(0, 0.5]``.
        reduction: 'none' (one loss per RoI) | 'mean' | 'sum'.
        loss_weight: weight of the loss.
    """

    def __init__(self,
                 gamma: float = 1.0,
                 min_fraction: float = 0.02,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        name = type(self).__name__
        if not (float(gamma) >= 0.0 and float(gamma) < float('inf')):
            raise ValueError(f'{name}: gamma must be a finite number >= 0, '
                             f'got {gamma!r}')
        if not 0.0 < float(min_fraction) <= 0.5:
            raise ValueError(f'{name}: min_fraction must be in (0, 0.5], '
                             f'got {min_fraction!r}')
        if reduction not in REDUCTIONS:
            raise ValueError(f'{name}: reduction must be one of '
                             f'{REDUCTIONS}, got {reduction!r}')
        self.gamma = float(gamma)
        self.min_fraction = float(min_fraction)
        self.reduction = reduction
        self.loss_weight = float(loss_weight)

    def extra_repr(self) -> str:
        return f'gamma={self.gamma}, min_fraction={self.min_fraction}'

    def _select(self, pred: Tensor, target: Tensor,
                label: Optional[Tensor]) -> Tensor:
        """``[N, H, W]`` logits of each RoI's class channel, checked."""
        name = type(self).__name__
        if pred.dim() == 4:
            if label is None:
                raise ValueError(
                    f'{name}: mask_pred has shape {tuple(pred.shape)} '
                    '([N, K, H, W]): labels are needed to pick the channel')
            n, k = pred.shape[:2]
            if label.dtype.is_floating_point or label.dtype == torch.bool \
                    or label.numel() != n:
                raise ValueError(
                    f'{name}: labels must be {n} integers (one per RoI), '
                    f'got shape {tuple(label.shape)} dtype {label.dtype}')
            label = label.reshape(n).long()
            if n and (int(label.min()) < 0 or int(label.max()) >= k):
                raise ValueError(
                    f'{name}: labels must be in [0, {k - 1}] (the mask '
                    f'channels), got [{int(label.min())}, '
                    f'{int(label.max())}]')
            pred = pred[torch.arange(n, device=pred.device), label]
        elif pred.dim() != 3:
            raise ValueError(
                f'{name}: mask_pred must be [N, K, H, W] (with labels) or '
                f'[N, H, W], got shape {tuple(pred.shape)}')
        if target.shape != pred.shape:
            raise ValueError(
                f'{name}: mask_target has shape {tuple(target.shape)}, '
                f'expected {tuple(pred.shape)}')
        return pred

    def forward(self,
                mask_pred: Tensor,
                mask_target: Tensor,
                label: Optional[Tensor] = None,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """The loss.

        Args:
            mask_pred: ``[N, K, H, W]`` mask logits (``label`` picks the
                channel) or ``[N, H, W]``.
            mask_target: ``[N, H, W]`` targets in ``[0, 1]``.
            label: ``[N]`` class of each RoI (channel of ``mask_pred``).
            weight: optional ``[N]`` RoI weights.
            avg_factor: normaliser (a number of RoIs) for 'mean'.
            reduction_override: 'none' | 'mean' | 'sum'.

        Returns:
            The loss (``[N]`` per RoI for 'none').
        """
        name = type(self).__name__
        if reduction_override not in (None, ) + REDUCTIONS:
            raise ValueError(
                f'{name}: reduction_override must be None or one of '
                f'{REDUCTIONS}, got {reduction_override!r}')
        reduction = reduction_override or self.reduction
        pred = self._select(mask_pred, mask_target, label)
        n = pred.size(0)
        if weight is not None:
            if weight.numel() != n:
                raise ValueError(
                    f'{name}: weight has shape {tuple(weight.shape)}, '
                    f'expected one value per RoI ({n})')
            weight = weight.reshape(n)
        if n == 0 or pred[0].numel() == 0:
            zero = mask_pred.sum() * 0.0
            return zero.expand(n).clone() if reduction == 'none' else zero
        logits = upcast(pred)
        target = mask_target.to(logits.dtype)
        if bool(((target < 0) | (target > 1)).any()):
            raise ValueError(f'{name}: mask_target values must be in [0, 1]')
        with torch.no_grad():
            w = balanced_pixel_weights(target, self.gamma,
                                       self.min_fraction)
        bce = F.binary_cross_entropy_with_logits(
            logits, target, reduction='none')
        per_roi = (w * bce).reshape(n, -1).mean(dim=1)
        return self.loss_weight * weighted_reduce(per_roi, weight, reduction,
                                                  avg_factor)
