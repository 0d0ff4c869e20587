#!/usr/bin/env python
"""Time LVIS evaluation on LVIS-shaped synthetic data: the metric end to end
against MMDetection's LVISMetric, or every backend on its own.

1,203 categories, 300 detections per image, at the sizes asked for; each
case runs in a fresh process and reports wall time and peak resident
memory. Prints a markdown table (and writes it with a JSON record to
--out). Examples::

    # LongTailLVISMetric.compute_metrics vs mmdet's LVISMetric
    python tools/benchmark_eval.py --end-to-end --sizes 1000 5000 \
        --metrics bbox segm
    python tools/benchmark_eval.py --end-to-end --sizes 20000 \
        --metrics bbox+segm --sides ours
    # the backends alone, from detections in memory
    python tools/benchmark_eval.py --sizes 1000 5000 --iou-types bbox segm
    # parity on existing results files (MMDetection's *.bbox.json/*.segm.json)
    python tools/benchmark_eval.py --parity-gt data/.../lvis_v1_val.json \
        --parity-results work_dirs/.../val.bbox.json \
        work_dirs/.../val.segm.json

The logic lives in ``longtail_benchmark.evaluation``.
"""
import argparse
import json
import os
import os.path as osp
import tempfile

from longtail_benchmark.evaluation.backend_timing import (
    CaseResult, as_dicts, markdown_table, parity_markdown, parity_rows,
    run_case_subprocess)
from longtail_benchmark.evaluation.cases import prepare_case
from longtail_benchmark.evaluation.end_to_end import (SIDES, E2EResult,
                                                      e2e_markdown,
                                                      run_e2e_subprocess)
from longtail_plugin.evaluation.backends import BACKENDS, available_backends


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[1000, 5000],
                   help='numbers of images')
    p.add_argument('--end-to-end', action='store_true',
                   help='time LongTailLVISMetric.compute_metrics against '
                   "mmdet's LVISMetric instead of the backends alone")
    p.add_argument('--metrics', nargs='+', default=['bbox', 'segm'],
                   help='end-to-end: metric lists, "+" joins several into '
                   'one case (e.g. bbox+segm)')
    p.add_argument('--sides', nargs='+', default=list(SIDES),
                   choices=list(SIDES), help='end-to-end: which metrics')
    p.add_argument('--iou-types', nargs='+', default=['bbox', 'segm'],
                   choices=['bbox', 'segm', 'boundary'])
    p.add_argument('--backends', nargs='+', default=None,
                   help=f'default: every installed one of {list(BACKENDS)}')
    p.add_argument('--dets-per-image', type=int, default=300)
    p.add_argument('--num-categories', type=int, default=1203)
    p.add_argument('--max-images', nargs='*', default=[],
                   metavar='NAME[:IOU]=N',
                   help='do not run backend (or end-to-end side) NAME (for '
                   'IOU only, if given) above N images, e.g. lvis=5000 '
                   '(its memory grows about 1.2 GiB per 1,000 images)')
    p.add_argument('--timeout', type=float, default=None,
                   help='seconds per case before it is reported skipped')
    p.add_argument('--cache-dir',
                   default=osp.join(tempfile.gettempdir(),
                                    'lt_benchmark_eval'),
                   help='where generated data is kept between runs')
    p.add_argument('--out', default=None,
                   help='folder for results.md / results.json')
    p.add_argument('--nice', type=int, default=0,
                   help='niceness of the evaluation processes')
    p.add_argument('--parity-gt', default=None,
                   help='instead of timing: LVIS annotation file of ...')
    p.add_argument('--parity-results', nargs='+', default=[],
                   help='...these results files, evaluated by every backend '
                   'and compared with the official API')
    return p.parse_args(argv)


def _limits(specs):
    out = {}
    for spec in specs:
        key, _, n = spec.partition('=')
        name, _, iou = key.partition(':')
        out[name, iou or None] = int(n)
    return out


def _limit(limits, name, iou, n):
    limit = limits.get((name, iou), limits.get((name, None)))
    return limit if limit is not None and n > limit else None


def _case(args, n, masks):
    print(f'[benchmark_eval] preparing {n} images (masks: {masks})',
          flush=True)
    return prepare_case(args.cache_dir, n, args.dets_per_image,
                        args.num_categories, with_masks=masks)


def _sweep(args, limits, kinds, names, row_cls, run_one):
    """Every (size, kind, name) case, skipping those over --max-images."""
    rows = []
    for n in args.sizes:
        for kind in kinds:
            files = _case(args, n, masks=kind != 'bbox')
            for name in names(kind):
                limit = _limit(limits, name, kind, n)
                if limit is not None:
                    rows.append(row_cls(n, kind, name, skipped=f'not run '
                                        f'above {limit} images '
                                        '(--max-images)'))
                    continue
                r = run_one(files['gt'], files['preds'], kind, name, n,
                            timeout=args.timeout, nice=args.nice)
                rows.append(r)
                state = (f'{r.seconds:.2f} s, {r.peak_rss_mb:.0f} MiB, '
                         f'AP {r.ap}' if r.seconds is not None
                         else r.skipped)
                print(f'[benchmark_eval] {n} {kind} {name}: {state}',
                      flush=True)
    return rows


def end_to_end(args, limits):
    rows = _sweep(args, limits, args.metrics, lambda kind: args.sides,
                  E2EResult, run_e2e_subprocess)
    return rows, e2e_markdown(rows), as_dicts(rows)


def backends_alone(args, limits):
    backends = args.backends or available_backends()
    rows = _sweep(args, limits, args.iou_types,
                  lambda iou: [b for b in backends
                               if iou in BACKENDS[b].iou_types],
                  CaseResult, run_case_subprocess)
    return rows, markdown_table(rows), as_dicts(rows)


def main(argv=None):
    args = parse_args(argv)
    limits = _limits(args.max_images)
    if args.parity_gt:
        rows = parity_rows(args.parity_gt, args.parity_results,
                           args.backends or available_backends())
        print(parity_markdown(rows))
        return
    run = end_to_end if args.end_to_end else backends_alone
    _, table, record = run(args, limits)
    print(table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(osp.join(args.out, 'results.md'), 'w') as f:
            f.write(table + '\n')
        with open(osp.join(args.out, 'results.json'), 'w') as f:
            json.dump(dict(args=vars(args), rows=record), f, indent=1)


if __name__ == '__main__':
    main()
