#!/usr/bin/env python
"""Time per training iteration of configs relative to the first, side by side.

All configs train in one process, their iterations interleaved (one of each
per round, the order rotated every round), so a change of the machine's load
touches all of them alike::

    python tools/benchmark_train_step.py \
        --configs configs/baselines/mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-densehead.py \
                  configs/clis/mask-rcnn_r18_fpn_clis_800it_synthetic-lvis-densehead.py \
        --warmup 3 --rounds 20 --threads 1 --out work_dirs/train_step_timing.json

Prints a markdown table (median and mean seconds per iteration with and
without data loading, images per iteration, ratios to the first config) and
writes it with the raw times as JSON to ``--out`` (the table also to the same
path with ``.md``). Logic: ``longtail_benchmark/train_step_timing.py``.
"""
import argparse
import sys
from typing import List, Optional

from mmengine.config import DictAction

from longtail_benchmark.train_step_timing import (format_timing_table,
                                                  measure_train_steps,
                                                  write_timing_results)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--configs', nargs='+', required=True,
                   help='config files; the first is the reference')
    p.add_argument('--warmup', type=int, default=3,
                   help='untimed iterations of each config first')
    p.add_argument('--rounds', type=int, default=20,
                   help='timed rounds (one iteration of every config each)')
    p.add_argument('--threads', type=int, default=1,
                   help='torch CPU threads (0: leave torch\'s default)')
    p.add_argument('--num-workers', type=int, default=0,
                   help='train dataloader workers of every config (default '
                   '0: data loaded in the timed process; -1: keep each '
                   'config\'s own)')
    p.add_argument('--data-root', default=None,
                   help='move every config\'s data (and image-level '
                   'companion) to this root')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--work-root', default=None,
                   help='keep the runners\' work directories here (default: '
                   'a temporary directory, removed)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='overrides merged into every config')
    p.add_argument('--out', default=None,
                   help='JSON file of the results (table: same name, .md)')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    overrides = [args.cfg_options] * len(args.configs)
    summary = measure_train_steps(
        args.configs,
        warmup=args.warmup,
        rounds=args.rounds,
        threads=args.threads or None,
        work_root=args.work_root,
        data_root=args.data_root,
        overrides=overrides,
        num_workers=None if args.num_workers < 0 else args.num_workers,
        seed=args.seed,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(format_timing_table(summary))
    if args.out:
        paths = write_timing_results(summary, args.out)
        print(f"\nwritten: {paths['json']}, {paths['markdown']}",
              file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
