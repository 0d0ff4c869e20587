"""Per-frequency-group means of the gradient statistics in a model.

The statistics are the buffers of
:class:`~longtail_plugin.utils.grad_stats.GradientStatistics` (``pos_grad``,
``neg_grad``, ``pos_neg`` = the ratio ``g_j``). ``GradRatioLoggerHook`` logs
:func:`model_grad_scalars` during training; reading them back from
checkpoints and logs and plotting them is tooling
(:mod:`longtail_benchmark.grad_ratio_plots`).
"""
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from .grad_stats import find_gradient_statistics

__all__ = ['group_means', 'model_grad_scalars']


def group_means(values: np.ndarray,
                groups: Optional[Dict[str, np.ndarray]]) -> Dict[str, float]:
    """Mean of ``values`` per frequency group (empty groups are left out);
    ``{'all': mean}`` when no groups are known."""
    values = np.asarray(values, dtype=np.float64)
    if not groups:
        return {'all': float(values.mean())} if values.size else {}
    return {
        g: float(values[idx].mean())
        for g, idx in groups.items() if len(idx) > 0
    }


def model_grad_scalars(
    model: nn.Module,
    groups: Optional[Dict[str, np.ndarray]] = None
) -> Tuple[Dict[str, float], List[str]]:
    """Per-group means of every gradient statistic in a model.

    For each :class:`GradientStatistics` module, ``grad_ratio_<group>`` is
    the mean of ``min(g_j, 1)`` over the group; when the module's owner defines
    ``per_class_scalars()`` (EQL v2: ``pos_weight`` / ``neg_weight``), each of
    those is averaged too. With several modules (e.g. cascade stages) the
    owner's path is appended to every name.

    Returns:
        ``(scalars, notes)``; ``notes`` lists modules whose class count does
        not match ``groups`` (those are logged as ``<name>_all``).
    """
    found = find_gradient_statistics(model)
    inner = getattr(model, 'module', None)
    root = inner if isinstance(inner, nn.Module) else model
    modules = dict(root.named_modules())
    scalars: Dict[str, float] = {}
    notes: List[str] = []
    for path, stats in found:
        owner_path = path.rpartition('.')[0]
        owner = modules.get(owner_path) if path else None
        suffix = '' if len(found) == 1 else '/' + (owner_path or path)
        # a ratio above 1 (positive-dominated, or a class with no negative
        # gradient yet: ~1e10) counts as balanced, so that one such class
        # cannot swamp its group's mean
        per_class = {
            'grad_ratio': stats.ratio().clamp(max=1.0).cpu().numpy()
        }
        extra = getattr(owner, 'per_class_scalars', None)
        if callable(extra):
            for k, v in extra().items():
                per_class[k] = torch.as_tensor(v).detach().float().cpu(
                ).numpy()
        use_groups = groups
        if groups is not None:
            n = sum(len(i) for i in groups.values())
            if n != stats.num_classes:
                notes.append(f'{path or "model"}: {stats.num_classes} '
                             f'classes but the annotation file has {n}')
                use_groups = None
        for name, values in per_class.items():
            for g, m in group_means(values, use_groups).items():
                scalars[f'{name}_{g}{suffix}'] = m
    return scalars, notes
