"""Test helper imported (through ``custom_imports``) by the training
processes that ``test_distributed_training.py`` starts; not a test module.

``DistStatsProbeHook`` saves every ``GradientStatistics`` buffer of the
model of each rank, at ``before_train`` (after ``--resume`` has loaded the
checkpoint) and at ``after_train`` (after EFL's final flush), to
``<work_dir>/probe/<event>_iter<N>_rank<R>.pt``.

With ``LT_TEST_DROP_STATS_ALLREDUCE=1`` in the environment, importing this
module replaces the statistics' cross-process sum by a no-op in that
process only: the control run showing that the test detects a missing
all-reduce.
"""
import os
import os.path as osp

import torch
from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from longtail_plugin.utils import GradientStatistics

DROP_ALLREDUCE_ENV = 'LT_TEST_DROP_STATS_ALLREDUCE'

if os.environ.get(DROP_ALLREDUCE_ENV) == '1':
    from longtail_plugin.utils import grad_stats as _grad_stats
    if not hasattr(_grad_stats, '_all_reduce_sum'):
        raise RuntimeError(
            'longtail_plugin.utils.grad_stats._all_reduce_sum not found: '
            'update tests/engine/dist_probe.py to the all-reduce it uses')
    _grad_stats._all_reduce_sum = lambda data: None


def statistics_buffers(model: torch.nn.Module) -> dict:
    """``{'<module path>.<buffer>': tensor}`` of every GradientStatistics."""
    model = getattr(model, 'module', model)
    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, GradientStatistics):
            for b, buf in mod.named_buffers(recurse=False):
                out[f'{name}.{b}'] = buf.detach().cpu().clone()
    return out


@HOOKS.register_module()
class DistStatsProbeHook(Hook):
    """Save the statistics buffers of this rank (see module docstring)."""

    priority = 'LOWEST'  # after EFLStatsFlushHook's after_train flush

    def _save(self, runner, event: str) -> None:
        stats = statistics_buffers(runner.model)
        if not stats:
            raise RuntimeError('DistStatsProbeHook: the model holds no '
                               'GradientStatistics')
        out = osp.join(runner.work_dir, 'probe')
        os.makedirs(out, exist_ok=True)
        torch.save(
            stats,
            osp.join(out, f'{event}_iter{runner.iter}_rank{runner.rank}.pt'))

    def before_train(self, runner) -> None:
        self._save(runner, 'before_train')

    def after_train(self, runner) -> None:
        self._save(runner, 'after_train')
