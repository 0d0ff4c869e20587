"""Remove or re-initialise the classifier weights of a checkpoint.

For stage 2 of decoupled training (BAGS, the LVIS 2020 recipe; see
configs/lvis_traveler/README.md)::

    python tools/ckpt_surgery.py work_dirs/stage1/iter_800.pth \
        work_dirs/stage1/iter_800_no-fc-cls.pth --method remove
    python tools/ckpt_surgery.py in.pth out.pth --method reinit --seed 0

Keys selected by ``--pattern`` (a regular expression, default
``^roi_head\\.bbox_head\\.fc_cls\\.``). The logic lives in
:mod:`longtail_benchmark.ckpt_surgery`.
"""
import argparse
import sys
from typing import List, Optional

from longtail_benchmark.ckpt_surgery import (DEFAULT_CLASSIFIER_PATTERN,
                                             classifier_surgery)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('checkpoint', help='input MMEngine checkpoint')
    p.add_argument('out', help='output checkpoint')
    p.add_argument('--method', choices=['remove', 'reinit'], default='remove')
    p.add_argument('--pattern', default=DEFAULT_CLASSIFIER_PATTERN,
                   help='regular expression selecting the classifier keys')
    p.add_argument('--std', type=float, default=0.01,
                   help='reinit: weight standard deviation')
    p.add_argument('--bias', type=float, default=0.0,
                   help='reinit: bias value')
    p.add_argument('--seed', type=int, default=0, help='reinit: seed')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        keys = classifier_surgery(args.checkpoint, args.out, args.method,
                                  args.pattern, args.std, args.bias,
                                  args.seed)
    except (ValueError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    verb = 'removed' if args.method == 'remove' else 're-initialised'
    print(f'{verb} {len(keys)} keys ({", ".join(keys)}); wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
