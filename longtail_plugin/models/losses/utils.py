"""Helpers shared by the plugin's classification losses.

MMDetection's own ``weight_reduce_loss`` lives in ``mmdet.models.losses``,
whose import pulls in every mmdet model; these small equivalents keep the
losses importable on their own and add the derivative of the reduction,
which losses that compute their own gradients (statistics) need.
"""
from typing import Optional

import torch
from torch import Tensor

__all__ = [
    'weighted_reduce', 'reduction_scale', 'upcast', 'top1_accuracy',
    'check_head_num_classes'
]


def weighted_reduce(loss: Tensor,
                    weight: Optional[Tensor] = None,
                    reduction: str = 'mean',
                    avg_factor: Optional[float] = None) -> Tensor:
    """Weight and reduce an element-wise loss like MMDetection's losses.

    ``mean`` with ``avg_factor`` gives ``sum(loss * weight) / avg_factor``;
    without it the plain mean; ``sum`` with ``avg_factor`` is an error.
    """
    if weight is not None:
        weight = weight.to(loss.dtype)
        if weight.dim() < loss.dim():
            weight = weight.reshape(weight.shape + (1, ) *
                                    (loss.dim() - weight.dim()))
        loss = loss * weight
    if reduction not in ('none', 'mean', 'sum'):
        raise ValueError(f'unknown reduction {reduction!r}')
    if avg_factor is None:
        if reduction == 'mean':
            return loss.mean()
        return loss.sum() if reduction == 'sum' else loss
    if reduction == 'mean':
        return loss.sum() / (avg_factor + torch.finfo(torch.float32).eps)
    if reduction == 'sum':
        raise ValueError('avg_factor can not be used with reduction="sum"')
    return loss


def reduction_scale(num: int,
                    reduction: str,
                    avg_factor: Optional[float] = None) -> float:
    """d(reduced loss) / d(one sample's loss) for :func:`weighted_reduce`."""
    if reduction == 'mean':
        if avg_factor is not None:
            return 1.0 / (avg_factor + torch.finfo(torch.float32).eps)
        return 1.0 / max(num, 1)
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


def check_head_num_classes(owner: str, loss_classes: int,
                           head_classes: int) -> None:
    """Clear error when a loss and its head disagree on ``num_classes``."""
    if head_classes != loss_classes:
        raise ValueError(
            f'{owner}: num_classes={loss_classes} but the head has '
            f'num_classes={head_classes}')
