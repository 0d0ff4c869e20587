"""Forward+backward time and peak memory of dense classification losses.

Example (the LVIS-scale run; each case runs in a fresh process)::

    python tools/benchmark_losses.py --reps 3
    python tools/benchmark_losses.py --sizes 2000 4000 --reps 2   # quick
    python tools/benchmark_losses.py --device cuda --reps 10

Prints a markdown table with ratios against BCE-with-logits; the logic is in
``longtail_plugin/utils/loss_benchmark.py``.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

try:
    from longtail_plugin.utils.loss_benchmark import (METHODS, ROI_METHODS,
                                                      format_table,
                                                      run_benchmark)
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from longtail_plugin.utils.loss_benchmark import (METHODS, ROI_METHODS,
                                                      format_table,
                                                      run_benchmark)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', type=int, nargs='+',
                   default=[20000, 40000, 80000],
                   help='numbers of anchors (rows of the logits)')
    p.add_argument('--num-classes', type=int, default=1203)
    p.add_argument('--methods', nargs='+', default=list(METHODS),
                   choices=METHODS + ROI_METHODS,
                   help='dense losses (default) or the RoI losses '
                   f'{ROI_METHODS}, compared with sigmoid_ce')
    p.add_argument('--device', default='cpu', help='cpu | cuda | cuda:1')
    p.add_argument('--reps', type=int, default=5,
                   help='timed repetitions per case (median reported)')
    p.add_argument('--threads', type=int, default=None,
                   help='torch CPU threads in the workers (default: torch)')
    p.add_argument('--timeout', type=float, default=300.0,
                   help='seconds allowed per case')
    p.add_argument('--out', default=None, help='also write the table here')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.device.startswith('cuda'):
        import torch
        if not torch.cuda.is_available():
            print('CUDA is not available', file=sys.stderr)
            return 1
    results = run_benchmark(
        args.sizes, args.num_classes, args.methods, args.device, args.reps,
        args.threads, args.timeout,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    threads = sorted({r['threads'] for r in results if 'threads' in r})
    header = (f'device: {args.device}, reps: {args.reps}, torch threads: '
              f"{','.join(map(str, threads)) or '?'}")
    table = format_table(results)
    print(header)
    print()
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(header + '\n\n' + table + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
