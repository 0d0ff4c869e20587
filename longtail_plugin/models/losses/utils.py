"""The reduction rule and small helpers shared by the plugin's losses.

One reduction / ``avg_factor`` rule for every loss: MMDetection's
``weight_reduce_loss`` (``mean`` with ``avg_factor`` is
``sum(loss * weight) / (avg_factor + eps)``, without it the plain mean;
``sum`` with ``avg_factor`` is an error), plus its derivative
:func:`reduction_scale`, which losses that compute their own gradients for
statistics (EQL v2, Softmax-EQL, EFL) need.
"""
from typing import Optional

import torch
from torch import Tensor

from mmdet.models.losses.utils import weight_reduce_loss

__all__ = [
    'REDUCTIONS', 'weighted_reduce', 'reduction_scale', 'upcast',
    'top1_accuracy'
]

REDUCTIONS = ('none', 'mean', 'sum')


def _check_reduction(reduction: str, avg_factor: Optional[float]) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f'unknown reduction {reduction!r} '
                         f'(valid: {", ".join(REDUCTIONS)})')
    if reduction == 'sum' and avg_factor is not None:
        raise ValueError('avg_factor can not be used with reduction="sum"')


def weighted_reduce(loss: Tensor,
                    weight: Optional[Tensor] = None,
                    reduction: str = 'mean',
                    avg_factor: Optional[float] = None) -> Tensor:
    """MMDetection's ``weight_reduce_loss`` with ``weight`` cast to the
    loss's dtype and broadcast over its trailing dimensions."""
    _check_reduction(reduction, avg_factor)
    if weight is not None:
        weight = weight.to(loss.dtype)
        if weight.dim() < loss.dim():
            weight = weight.reshape(weight.shape + (1, ) *
                                    (loss.dim() - weight.dim()))
    return weight_reduce_loss(loss, weight, reduction, avg_factor)


def reduction_scale(reduction: str,
                    avg_factor: Optional[float] = None,
                    num: int = 1) -> float:
    """``d(reduced loss) / d(one element's loss)`` for
    :func:`weighted_reduce` of ``num`` elements (before the label weight).
    """
    _check_reduction(reduction, avg_factor)
    if reduction == 'mean':
        if avg_factor is not None:
            return 1.0 / (float(avg_factor) + torch.finfo(torch.float32).eps)
        return 1.0 / max(int(num), 1)
    return 1.0


def upcast(x: Tensor) -> Tensor:
    """float16/bfloat16 logits to float32 (float32/64 are kept)."""
    if x.dtype in (torch.float16, torch.bfloat16):
        return x.float()
    return x


def top1_accuracy(score: Tensor, labels: Tensor) -> Tensor:
    """Top-1 accuracy in percent (0 for an empty input), no gradient."""
    if labels.numel() == 0:
        return score.new_tensor(0.)
    correct = (score.detach().argmax(dim=-1) == labels).float().sum()
    return correct * (100.0 / labels.numel())
