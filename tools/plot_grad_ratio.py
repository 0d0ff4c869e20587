"""Plot per-class gradient ratios g_j of checkpoints against class frequency.

Example::

    python tools/plot_grad_ratio.py \
        --checkpoint work_dirs/eqlv2/epoch_12.pth work_dirs/efl/epoch_24.pth \
        --labels "EQL v2" EFL \
        --ann-file data/lvis_v1/annotations/lvis_v1_train.json \
        --out grad_ratio.png

    # the logged per-group means over training, from runs' scalars.json
    python tools/plot_grad_ratio.py --trace \
        work_dirs/lt/atss_r18_fpn_efl_400it_synthetic-lvis/seed0/*/vis_data/scalars.json \
        --labels EFL --out efl_trace.png

One panel per checkpoint (and per statistics module when a checkpoint holds
several, e.g. cascade stages; ``--module`` selects by substring). The logic
lives in :mod:`longtail_benchmark.grad_ratio_plots`.
"""
import argparse
import sys
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--checkpoint', nargs='+')
    src.add_argument('--trace', nargs='+', metavar='SCALARS_JSON',
                     help="runs' vis_data/scalars.json: plot the per-group "
                     'means logged by GradRatioLoggerHook against iteration')
    p.add_argument('--quantity', default='grad_ratio',
                   help='with --trace: grad_ratio, focal_gamma, '
                   'weight_factor, ...')
    p.add_argument('--labels', nargs='+', help='one label per checkpoint')
    p.add_argument('--ann-file', help='training annotation file (x axis)')
    p.add_argument('--data-root', default=None)
    p.add_argument('--module', default=None,
                   help='only statistics whose key contains this')
    p.add_argument('--title', default=None)
    p.add_argument('--out', required=True)
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.trace:
        from longtail_benchmark.grad_ratio_plots import plot_group_traces
        labels = args.labels or args.trace
        if len(labels) != len(args.trace):
            sys.exit(f'{len(labels)} labels for {len(args.trace)} runs')
        plot_group_traces(list(zip(labels, args.trace)), args.out,
                          args.quantity, args.title)
        print(f'wrote {args.out}')
        return 0
    from longtail_benchmark.grad_ratio_plots import (group_shares,
                                                     load_grad_statistics,
                                                     plot_grad_ratios)
    from longtail_plugin.utils import load_category_info
    from longtail_plugin.utils.grad_ratio import group_means
    labels = args.labels or args.checkpoint
    if len(labels) != len(args.checkpoint):
        sys.exit(f'{len(labels)} labels for {len(args.checkpoint)} '
                 'checkpoints')
    info = (load_category_info(args.ann_file, args.data_root)
            if args.ann_file else None)
    series = []
    for ckpt, label in zip(args.checkpoint, labels):
        stats = load_grad_statistics(ckpt)
        keys = [k for k in stats if args.module is None or args.module in k]
        if not keys:
            sys.exit(f'{ckpt}: no statistics key contains {args.module!r} '
                     f'(found: {list(stats)})')
        for k in keys:
            name = label if len(keys) == 1 else f'{label}\n{k}'
            series.append((name, stats[k]['pos_neg']))
            print(f'{ckpt}: {k} ({stats[k]["pos_neg"].size} classes)')
            if info is not None:
                info.check_num_classes(stats[k]['pos_neg'].size,
                                       f'classes in {ckpt} ({k})')
                groups = info.group_indices()
                means = group_means(stats[k]['pos_neg'], groups)
                shares = (group_shares(stats[k]['pos_grad'], groups)
                          if 'pos_grad' in stats[k] else {})
                for g in means:
                    share = (f', {100 * shares[g]:.1f}% of the accumulated '
                             'positive gradient' if g in shares else '')
                    print(f'  {g}: mean g {means[g]:.3f}{share}')
    plot_grad_ratios(series, info, args.out, title=args.title)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
