"""Flush the per-iteration gradient statistics of EFL / EQFL losses.

MMDetection's dense heads call the classification loss once per FPN level;
:class:`~longtail_plugin.models.losses.EqualizedFocalLoss` and
:class:`~longtail_plugin.models.losses.EqualizedQualityFocalLoss` buffer the
levels' gradient sums in a
:class:`~longtail_plugin.utils.grad_stats_buffer.BufferedGradientStatistics`
and add them to the statistics once per iteration. This hook is the
authoritative end of an iteration: in ``after_train_iter`` (after the
backward pass and the optimizer step) it flushes every such buffer in the
model, before ``GradRatioLoggerHook`` logs the ratios and before
``CheckpointHook`` saves them. Without the hook, a loss flushes at its first
call of the next iteration instead (see ``grad_stats_buffer.py``).

Config::

    custom_hooks = [dict(type='EFLStatsFlushHook')]
"""
from typing import Any, Optional

import torch.nn as nn
from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from ...utils.grad_stats_buffer import BufferedGradientStatistics

__all__ = ['EFLStatsFlushHook', 'flush_efl_statistics']


def flush_efl_statistics(model: nn.Module) -> int:
    """Flush every buffered statistics module in ``model`` (wrappers
    included), in module order.

    Returns:
        The number that added a step to their statistics.
    """
    flushed = 0
    for module in model.modules():
        if isinstance(module, BufferedGradientStatistics):
            flushed += int(module.flush())
    return flushed


@HOOKS.register_module()
class EFLStatsFlushHook(Hook):
    """Add each iteration's buffered EFL/EQFL gradient sums to the
    statistics at ``after_train_iter``.

    Every process flushes the same modules in the same order, so the
    all-reduce inside ``GradientStatistics.update`` matches across ranks.
    """

    # before GradRatioLoggerHook (NORMAL), LoggerHook (BELOW_NORMAL) and
    # CheckpointHook (VERY_LOW)
    priority = 'ABOVE_NORMAL'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[Any] = None,
                         outputs: Optional[dict] = None) -> None:
        flush_efl_statistics(runner.model)

    def after_train(self, runner) -> None:
        flush_efl_statistics(runner.model)
