"""Read gradient statistics back from checkpoints and logs, and plot them.

The statistics are the buffers of
:class:`~longtail_plugin.utils.grad_stats.GradientStatistics` (``pos_grad``,
``neg_grad``, ``pos_neg`` = the ratio ``g_j``); any state dict whose keys end
in those names is understood, including checkpoints of MMDetection's own
``EQLV2Loss``. ``tools/plot_grad_ratio.py`` is the command line.

Checkpoints are opened with ``torch.load(..., weights_only=True)``; the
non-tensor objects an MMEngine checkpoint carries are allow-listed with
:func:`longtail_plugin.compat.checkpoint.mmengine_safe_globals` (torch's
``safe_globals``), so no arbitrary code can run from a checkpoint file.
"""
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from longtail_plugin.utils.category_info import FREQUENCY_GROUPS, CategoryInfo

__all__ = [
    'STAT_NAMES', 'load_checkpoint_state_dict', 'extract_grad_statistics',
    'load_grad_statistics', 'group_shares', 'plot_grad_ratios',
    'read_group_traces', 'plot_group_traces'
]

STAT_NAMES = ('pos_neg', 'pos_grad', 'neg_grad')


def load_checkpoint_state_dict(path: str) -> Dict[str, Any]:
    """The model ``state_dict`` of a checkpoint, loaded weights-only."""
    from mmengine.fileio import get_local_path

    from longtail_plugin.compat.checkpoint import mmengine_safe_globals
    with get_local_path(path) as local, mmengine_safe_globals():
        ckpt = torch.load(local, map_location='cpu', weights_only=True)
    if isinstance(ckpt, Mapping) and isinstance(
            ckpt.get('state_dict'), Mapping):
        return dict(ckpt['state_dict'])
    if isinstance(ckpt, Mapping):
        return dict(ckpt)
    raise ValueError(f'{path!r} does not hold a state dict')


def extract_grad_statistics(
        state_dict: Mapping[str, Any]) -> 'OrderedDict[str, Dict]':
    """Group gradient-statistics entries of a state dict by module prefix.

    Returns:
        ``{prefix: {'pos_neg': array, 'pos_grad': array, 'neg_grad': array}}``
        (float64 numpy arrays, any subset present), e.g. with prefix
        ``'roi_head.bbox_head.loss_cls.grad_stats'``; in key order.
    """
    out: 'OrderedDict[str, Dict[str, np.ndarray]]' = OrderedDict()
    for key, value in state_dict.items():
        prefix, _, leaf = key.rpartition('.')
        if leaf not in STAT_NAMES or not torch.is_tensor(value):
            continue
        if value.dim() != 1:
            continue
        out.setdefault(prefix, {})[leaf] = value.detach().cpu().to(
            torch.float64).numpy()
    for prefix, stats in out.items():
        if 'pos_neg' not in stats and {'pos_grad', 'neg_grad'} <= set(stats):
            stats['pos_neg'] = stats['pos_grad'] / (stats['neg_grad'] + 1e-10)
    return OrderedDict((k, v) for k, v in out.items() if 'pos_neg' in v)


def load_grad_statistics(checkpoint: str) -> 'OrderedDict[str, Dict]':
    """:func:`extract_grad_statistics` of a checkpoint file.

    Raises:
        ValueError: naming the file when it holds no statistics.
    """
    stats = extract_grad_statistics(load_checkpoint_state_dict(checkpoint))
    if not stats:
        raise ValueError(
            f'{checkpoint!r} holds no gradient statistics (no state_dict key '
            f'ending in {STAT_NAMES})')
    return stats


def group_shares(values: np.ndarray,
                 groups: Dict[str, np.ndarray]) -> Dict[str, float]:
    """Fraction of ``sum(values)`` that falls in each frequency group.

    With the accumulated positive gradient (``pos_grad``) it says how much of
    the classifier's positive training signal went to each group, e.g. how
    far EQL v2's up-weighted tail positives outweigh the head's.
    """
    values = np.asarray(values, dtype=np.float64)
    total = float(values.sum())
    if not np.isfinite(total) or total <= 0:
        raise ValueError(f'shares of a non-positive total ({total})')
    return {g: float(values[idx].sum() / total) for g, idx in groups.items()}


def plot_grad_ratios(series: Sequence[Tuple[str, np.ndarray]],
                     info: Optional[CategoryInfo],
                     out: str,
                     title: Optional[str] = None) -> None:
    """Scatter per-class ``g_j`` against training image count (log x).

    Args:
        series: ``(label, ratio[C])`` pairs, one panel each.
        info: category counts and groups of the training set; without it
            the x axis is the class index.
        out: output image path.
        title: optional figure title.
    """
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt

    colours = {'r': 'tab:red', 'c': 'tab:orange', 'f': 'tab:blue'}
    n = len(series)
    fig, axes = plt.subplots(
        1, n, figsize=(5 * n, 4), squeeze=False, sharey=True)
    for ax, (label, ratio) in zip(axes[0], series):
        ratio = np.asarray(ratio, dtype=np.float64)
        if info is not None:
            if info.num_classes != ratio.size:
                raise ValueError(
                    f'{label}: {ratio.size} classes in the checkpoint but '
                    f'{info.num_classes} in {info.source!r}')
            # a class absent from the training set is drawn at x = 1
            x = np.maximum(np.asarray(info.image_count, np.float64), 1.0)
            groups = np.asarray(info.groups)
            for g in FREQUENCY_GROUPS:
                m = groups == g
                if m.any():
                    ax.scatter(
                        x[m], ratio[m], s=8, c=colours[g],
                        label=f'{g} ({int(m.sum())}), mean '
                        f'{ratio[m].mean():.3f}')
            ax.set_xscale('log')
            ax.set_xlabel('training images of the class')
            ax.legend(fontsize=8)
        else:
            ax.scatter(np.arange(ratio.size), ratio, s=8)
            ax.set_xlabel('class index')
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel('gradient ratio g_j = pos / neg')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def read_group_traces(scalars_file: str,
                      prefix: str = 'grad_ratio') -> Dict[str, np.ndarray]:
    """Per-group values logged by ``GradRatioLoggerHook`` over training.

    Args:
        scalars_file: a run's ``vis_data/scalars.json`` (MMEngine's local
            visualiser backend, one JSON record per logged step).
        prefix: which logged quantity: ``grad_ratio``, ``focal_gamma``,
            ``weight_factor`` ...

    Returns:
        ``{'step': (S,), 'r': (S,), 'c': (S,), 'f': (S,)}`` (groups that
        were logged).
    """
    import json
    steps: List[float] = []
    vals: Dict[str, List[float]] = {}
    with open(scalars_file) as f:
        for line in f:
            rec = json.loads(line)
            keys = [k for k in rec if k.startswith(prefix + '_')]
            if not keys or 'step' not in rec:
                continue
            steps.append(rec['step'])
            for k in keys:
                vals.setdefault(k[len(prefix) + 1:], []).append(rec[k])
    out = {'step': np.asarray(steps, dtype=float)}
    out.update({g: np.asarray(v, dtype=float) for g, v in vals.items()})
    return out


def plot_group_traces(runs: Sequence[Tuple[str, str]],
                      out: str,
                      prefix: str = 'grad_ratio',
                      title: Optional[str] = None) -> None:
    """Plot the logged per-group values of several runs against iteration.

    Args:
        runs: ``(label, scalars.json path)`` pairs.
        out: image file to write.
        prefix: the logged quantity (see :func:`read_group_traces`).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    colours = {'r': 'tab:red', 'c': 'tab:orange', 'f': 'tab:blue'}
    styles = ['-', '--', ':', '-.']
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (label, path) in enumerate(runs):
        tr = read_group_traces(path, prefix)
        for g in ('r', 'c', 'f'):
            if g in tr:
                ax.plot(tr['step'], tr[g], styles[i % len(styles)],
                        color=colours[g], label=f'{label} ({g})')
    ax.set_xlabel('iteration')
    ax.set_ylabel(f'{prefix} (group mean)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
