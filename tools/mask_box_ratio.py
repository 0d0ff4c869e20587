"""Mask/box area ratio distribution of an LVIS/COCO-format annotation file.

Example::

    python tools/mask_box_ratio.py \\
        data/synthetic_lvis_densehead_thin/annotations/lvis_v1_val.json \\
        --thinnest 10 --min-instances 5

prints percentiles of ``mask area / box area`` overall, per frequency group
and per shape (last word of the category name), the share of instances below
0.2 and 0.3, the number of categories whose median is below 0.3, and the
categories with the lowest median (see
:mod:`longtail_benchmark.synthetic.stats`).
"""
import argparse
import json
from typing import List, Optional

from longtail_benchmark.synthetic.stats import (format_ratio_summary,
                                                ratio_summary)


def main(argv: Optional[List[str]] = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('ann_file', help='LVIS/COCO-format annotation file')
    p.add_argument('--mode', choices=('raster', 'polygon'), default='raster',
                   help='areas of the pycocotools masks (default) or of the '
                   'exact polygons')
    p.add_argument('--thinnest', type=int, default=10,
                   help='list this many categories of lowest median ratio')
    p.add_argument('--min-instances', type=int, default=1,
                   help='least instances of a listed category')
    p.add_argument('--json', default=None,
                   help='also write the full summary to this file')
    args = p.parse_args(argv)
    try:
        summary = ratio_summary(args.ann_file, args.mode)
    except (OSError, ValueError, KeyError) as e:
        raise SystemExit(f'mask_box_ratio: {args.ann_file}: {e}')
    print(format_ratio_summary(summary, args.thinnest, args.min_instances))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(summary, f, indent=1)
    return summary


if __name__ == '__main__':
    main()
