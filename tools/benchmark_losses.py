"""Forward+backward time and peak memory of dense classification losses.

Example (the LVIS-scale run; each case runs in a fresh process)::

    python tools/benchmark_losses.py --methods bce efl --reps 5 --rounds 3
    python tools/benchmark_losses.py --sizes 2000 4000 --reps 2   # quick
    python tools/benchmark_losses.py --device cuda --reps 10

Prints a markdown table with ratios against BCE-with-logits at the same size
and thread count (by default 1, 2 and all CPU threads); the logic is in
``longtail_benchmark/loss_benchmark.py``. ``efl_fused`` (the Triton kernel)
is measured on CUDA only; on CPU its row says so.
"""
import argparse
import platform
import sys
from typing import List, Optional

from longtail_benchmark.loss_benchmark import (METHODS, ROI_METHODS,
                                               format_table, run_benchmark)


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
    p.add_argument('--threads', nargs='+', default=None,
                   help='torch CPU thread counts to measure, integers or '
                   '"all" (default: 1 2 all)')
    p.add_argument('--rounds', type=int, default=1,
                   help='repeat every case this many times; time ratios are '
                   'the median of the per-round ratios')
    p.add_argument('--unpaired', action='store_true',
                   help='time each method only in its own process (default: '
                   'alternating with the reference in the same process)')
    p.add_argument('--timeout', type=float, default=300.0,
                   help='seconds allowed per case')
    p.add_argument('--out', default=None, help='also write the table here')
    return p.parse_args(argv)


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    import torch
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        print('CUDA is not available', file=sys.stderr)
        return 1
    results = run_benchmark(
        args.sizes, args.num_classes, args.methods, args.device, args.reps,
        args.threads, args.timeout,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
        rounds=args.rounds, paired=not args.unpaired)
    where = (torch.cuda.get_device_name(args.device)
             if args.device.startswith('cuda') else _cpu_name())
    pairing = 'unpaired' if args.unpaired else 'paired with the reference'
    header = (f'device: {args.device} ({where}), torch {torch.__version__}, '
              f'reps: {args.reps}, rounds: {args.rounds}, time ratios: '
              f'{pairing}')
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
