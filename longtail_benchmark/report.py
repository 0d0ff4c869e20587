"""Tables and plots of benchmark results (mean and spread over seeds)."""
import json
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Sequence

import numpy as np

__all__ = ['summarize', 'markdown_table', 'plot_groups', 'write_report',
           'subset_ap',
           'COLUMNS']

# (group, key): LVIS APs are ``lvis/{group}_{key}`` fractions, boundary
# F-scores (runner.boundary_metrics, matched instances) ``boundary/{key}``;
# all are shown in percent. Columns no run has are left out of the table.
COLUMNS = [('bbox', k) for k in ('AP', 'APr', 'APc', 'APf')] + \
    [('segm', k) for k in ('AP', 'APr', 'APc', 'APf')] + \
    [('boundary', k) for k in ('F@1', 'F@3')]


def _metric_key(group: str, key: str) -> str:
    return f'boundary/{key}' if group == 'boundary' else f'lvis/{group}_{key}'


def summarize(results: Sequence[dict]) -> 'OrderedDict[str, dict]':
    """Group run results by config name: mean, std and per-seed values.

    AP values are turned into percentages (LVIS API gives fractions).
    """
    rows: 'OrderedDict[str, dict]' = OrderedDict()
    for r in results:
        row = rows.setdefault(r['name'], dict(seeds=[], values={}, time=[]))
        row['seeds'].append(r['seed'])
        row['time'].append(r['wall_time_s'])
        for iou, k in COLUMNS:
            v = r['metrics'].get(_metric_key(iou, k))
            row['values'].setdefault(f'{iou}_{k}', []).append(
                np.nan if v is None else 100.0 * v)
    for row in rows.values():
        vals = row['values']
        row['mean'] = {k: float(np.mean(v)) for k, v in vals.items()}
        row['std'] = {
            k: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
            for k, v in vals.items()
        }
        row['mean_time_s'] = float(np.mean(row['time']))
    return rows


def markdown_table(rows: Dict[str, dict]) -> str:
    """One line per config: mean (+- std over seeds when > 1 seed)."""
    cols = [(i, k) for i, k in COLUMNS if any(
        not np.isnan(row['mean'][f'{i}_{k}']) for row in rows.values())]
    head = ['config', 'seeds'] + [f'{i} {k}' for i, k in cols] + \
        ['train+eval time']
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '---|' * len(head)]
    for name, row in rows.items():
        cells = [name, str(len(row['seeds']))]
        for iou, k in cols:
            key = f'{iou}_{k}'
            m, s = row['mean'][key], row['std'][key]
            cells.append(f'{m:.1f}' if len(row['seeds']) == 1 else
                         f'{m:.1f} ± {s:.1f}')
        cells.append(f"{row['mean_time_s'] / 60:.1f} min")
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot_groups(rows: Dict[str, dict], path: str) -> None:
    """Grouped bars: AP per frequency group (r/c/f) for bbox and segm."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, axes = plt.subplots(
        1, 2, figsize=(12, 4.5 + 0.25 * len(names)), sharey=True)
    width = 0.8 / max(len(names), 1)
    groups = ['APr', 'APc', 'APf', 'AP']
    x = np.arange(len(groups))
    for ax, iou in zip(axes, ('bbox', 'segm')):
        for i, name in enumerate(names):
            row = rows[name]
            means = [row['mean'][f'{iou}_{g}'] for g in groups]
            stds = [row['std'][f'{iou}_{g}'] for g in groups]
            ax.bar(x + (i - (len(names) - 1) / 2) * width, means, width,
                   yerr=stds if len(row['seeds']) > 1 else None,
                   capsize=2, label=name)
        ax.set_xticks(x)
        ax.set_xticklabels(['rare', 'common', 'frequent', 'all'])
        ax.set_title(f'{iou} AP by frequency group')
        ax.grid(axis='y', alpha=0.3)
    axes[0].set_ylabel('AP (%)')
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc='lower center', ncol=2)
    fig.tight_layout(rect=(0, 0.06 + 0.045 * ((len(names) + 1) // 2), 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(results: List[dict], out_dir: str) -> str:
    """Write results.json, results.md and ap_by_group.png; return the table."""
    rows = summarize(results)
    table = markdown_table(rows)
    with open(osp.join(out_dir, 'results.json'), 'w') as f:
        json.dump(dict(runs=results, summary=rows), f, indent=1)
    with open(osp.join(out_dir, 'results.md'), 'w') as f:
        f.write('# Synthetic long-tailed LVIS benchmark\n\n')
        f.write('AP in %, LVIS metric on the validation split; '
                'mean ± sample std over seeds. boundary F@d: boundary '
                'F-score (%) of the matched ground-truth masks at d px '
                '(tools/eval_boundary.py protocol).\n\n')
        f.write(table + '\n')
    plot_groups(rows, osp.join(out_dir, 'ap_by_group.png'))
    return table


def subset_ap(per_category_files: Sequence[str],
              suffixes: Sequence[str],
              iou: str = 'segm',
              groups: Sequence[str] = ('r', 'c', 'f')) -> Dict[str, float]:
    """Mean AP over the categories whose name ends with one of ``suffixes``
    and whose frequency group is in ``groups``, for each run's
    ``per_category_ap.json`` (the LVIS metric's per-category file), then
    mean and sample std over the runs (seeds), in percent.

    Categories without an AP in a run (no validation instance: the metric
    writes ``nan`` or ``-1``) are left out of that run's mean. Raises
    ``ValueError`` when no category matches, naming the file.
    """
    key = f'{iou}_AP'
    per_run: List[float] = []
    for path in per_category_files:
        with open(path) as f:
            cats = json.load(f)['categories']
        vals = [c[key] for c in cats
                if c['name'].endswith(tuple(suffixes))
                and c.get('group', 'f') in groups
                and c.get(key) is not None and c[key] >= 0
                and np.isfinite(c[key])]
        if not vals:
            raise ValueError(f'{path}: no category name ends with any of '
                             f'{list(suffixes)} (key {key!r})')
        per_run.append(100.0 * float(np.mean(vals)))
    arr = np.asarray(per_run)
    return dict(mean=float(arr.mean()),
                std=float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
                runs=len(arr), num_categories=len(vals),
                values=[float(v) for v in arr])
