"""Generate the image-level companion of a synthetic detection set.

Example::

    python tools/make_synthetic_image_level.py \\
        --detection data/synthetic_lvis_densehead

writes ``data/synthetic_lvis_densehead_imagelevel/`` (``--out`` to choose):
``annotations/image_level.json`` (the ``ImageLevelDataset`` format) and
``images/``, one object per image, drawn like the detection set's objects;
rare categories get the most images (``--images-per-group R C F``, default
24 16 8). The output folder must be missing, empty or one this tool made.
See :mod:`longtail_benchmark.synthetic.image_level` for the design.
"""
import argparse
import os.path as osp
from typing import List, Optional

from longtail_benchmark.synthetic import FolderNotOwnedError
from longtail_benchmark.synthetic.image_level import (
    default_image_level_dir, ensure_image_level_set, make_image_level_set)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Generate the image-level companion of a synthetic '
        'detection set.')
    p.add_argument('--detection', required=True,
                   help='the detection set\'s folder or its '
                   'annotations/lvis_v1_train.json')
    p.add_argument('--out', help='output folder (default: '
                   '<detection folder>_imagelevel)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--images-per-group', type=int, nargs=3,
                   default=(24, 16, 8), metavar=('R', 'C', 'F'),
                   help='images per rare / common / frequent category')
    p.add_argument('--box-fraction', type=float, default=1.0,
                   help='fraction of the images whose record has a bbox')
    p.add_argument('--image-size', type=int, nargs='+', default=[160],
                   metavar='S', help='side, or height and width')
    p.add_argument('--image-format', choices=('jpg', 'png'), default='jpg')
    p.add_argument('--reuse', action='store_true',
                   help='keep an existing set made with the same parameters')
    p.add_argument('--quiet', action='store_true', help='no progress lines')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    out = args.out
    if out is None:
        det = args.detection
        if osp.isfile(det):  # <root>/annotations/<file>
            det = osp.dirname(osp.dirname(osp.abspath(det)))
        out = default_image_level_dir(det)
    size = args.image_size[0] if len(args.image_size) == 1 else \
        args.image_size
    kwargs = dict(seed=args.seed,
                  images_per_group=dict(zip('rcf', args.images_per_group)),
                  box_fraction=args.box_fraction, image_size=size,
                  image_format=args.image_format,
                  progress=None if args.quiet else print)
    make = ensure_image_level_set if args.reuse else make_image_level_set
    try:
        s = make(out, args.detection, **kwargs)
    except (ValueError, FileNotFoundError, FolderNotOwnedError,
            NotADirectoryError) as e:
        raise SystemExit(f'make_synthetic_image_level: {e}')
    groups = s['images_per_group']
    cats = s['categories_per_group']
    print(f"{'reused' if s['reused'] else 'generated'} {s['data_root']}")
    print(f"  {s['num_images']} images ({s['num_boxed']} with a box) -> "
          f"{s['ann_file']}")
    print('  per group (categories x images each = images): ' + ', '.join(
        f"{g} {cats[g]} x {s['params']['images_per_group'][g]} = {groups[g]}"
        for g in 'rcf'))
    print(f"  time: {s['seconds']:.1f} s")
    return s


if __name__ == '__main__':
    main()
