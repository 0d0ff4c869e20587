#!/usr/bin/env python
"""Time every LVIS evaluation backend on LVIS-scale synthetic data.

1,203 categories, 300 detections per image, bbox and segm, at the sizes
asked for; each case runs in a fresh process and reports wall time, peak
resident memory and the speed-up over the official LVIS API. Prints a
markdown table (and writes it with a JSON record to --out). Examples::

    python tools/benchmark_eval.py --sizes 1000 5000 20000
    python tools/benchmark_eval.py --sizes 200 --iou-types bbox   # quick
    # parity on existing results files (MMDetection's *.bbox.json/*.segm.json)
    python tools/benchmark_eval.py --parity-gt data/.../lvis_v1_val.json \
        --parity-results work_dirs/.../val.bbox.json \
        work_dirs/.../val.segm.json

The logic lives in ``longtail_plugin.evaluation.backends.benchmark``.
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from longtail_plugin.evaluation.backends import (  # noqa: E402
    BACKENDS, available_backends)
from longtail_plugin.evaluation.backends.benchmark import (  # noqa: E402
    CaseResult, as_dicts, markdown_table, parity_markdown, parity_rows,
    prepare_case, run_case_subprocess)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[1000, 5000,
                                                             20000],
                   help='numbers of images')
    p.add_argument('--iou-types', nargs='+', default=['bbox', 'segm'],
                   choices=['bbox', 'segm', 'boundary'])
    p.add_argument('--backends', nargs='+', default=None,
                   help=f'default: every installed one of {list(BACKENDS)}')
    p.add_argument('--dets-per-image', type=int, default=300)
    p.add_argument('--num-categories', type=int, default=1203)
    p.add_argument('--max-images', nargs='*', default=[],
                   metavar='BACKEND[:IOU]=N',
                   help='do not run BACKEND (for IOU only, if given) above '
                   'N images, e.g. lvis=5000 (its memory grows about 1.2 '
                   'GiB per 1,000 images)')
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


def main(argv=None):
    args = parse_args(argv)
    limits = _limits(args.max_images)
    backends = args.backends or available_backends()
    if args.parity_gt:
        rows = parity_rows(args.parity_gt, args.parity_results, backends)
        print(parity_markdown(rows))
        return
    rows = []
    for n in args.sizes:
        for iou in args.iou_types:
            print(f'[benchmark_eval] preparing {n} images ({iou})',
                  flush=True)
            files = prepare_case(args.cache_dir, n, iou,
                                 args.dets_per_image, args.num_categories)
            for b in backends:
                if iou not in BACKENDS[b].iou_types:
                    continue
                limit = limits.get((b, iou), limits.get((b, None)))
                if limit is not None and n > limit:
                    rows.append(CaseResult(
                        n, iou, b, skipped=f'not run above {limit} images '
                        '(--max-images)'))
                    continue
                r = run_case_subprocess(files['gt'], files['results'], iou,
                                        b, n, timeout=args.timeout,
                                        nice=args.nice)
                rows.append(r)
                state = (f'{r.seconds:.2f} s, {r.peak_rss_mb:.0f} MiB, '
                         f'AP {r.ap}' if r.seconds is not None
                         else r.skipped)
                print(f'[benchmark_eval] {n} {iou} {b}: {state}',
                      flush=True)
    table = markdown_table(rows)
    print(table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(osp.join(args.out, 'results.md'), 'w') as f:
            f.write(table + '\n')
        with open(osp.join(args.out, 'results.json'), 'w') as f:
            json.dump(dict(args=vars(args), rows=as_dicts(rows)), f,
                      indent=1)


if __name__ == '__main__':
    main()
