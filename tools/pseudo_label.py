#!/usr/bin/env python
"""Write a detector's confident detections as LVIS-format pseudo-labels.

For self-training (stage 1 of the LVIS Challenge 2020 recipe, see
configs/lvis_traveler/README.md). The images are a folder (searched
recursively) or the images of an LVIS-format file; the categories are copied
from the ground truth's annotation file. Example::

    python tools/pseudo_label.py CONFIG CHECKPOINT \\
        --images data/lvis_v1/unlabeled/ --data-root data/lvis_v1/ \\
        --categories data/lvis_v1/annotations/lvis_v1_train.json \\
        --out data/lvis_v1/annotations/lvis_v1_pseudo.json --score-thr 0.5

Image paths in the output are relative to --data-root (the ``data_root`` of
the config that trains on the file). The rules (threshold, caps, polygon or
RLE masks) are documented in :mod:`longtail_benchmark.pseudo_label`.
"""
import argparse
import sys
from typing import List, Optional

from longtail_benchmark.pseudo_label import (MASK_FORMATS, images_from_folder,
                                             images_from_lvis,
                                             write_pseudo_labels)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config', help='detector config')
    p.add_argument('checkpoint', help='detector checkpoint')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--images', help='folder of unlabeled images')
    src.add_argument('--image-list',
                     help='LVIS-format file whose images are labelled '
                     '(paths from coco_url / file_name, under --data-root)')
    p.add_argument('--data-root', default='',
                   help='image paths are written relative to this folder')
    p.add_argument('--categories', required=True,
                   help='LVIS-format file whose categories are copied')
    p.add_argument('--out', required=True, help='output LVIS-format file')
    p.add_argument('--score-thr', type=float, default=0.5)
    p.add_argument('--max-per-class', type=int, default=None,
                   help='at most this many labels per class over the set')
    p.add_argument('--max-per-image', type=int, default=None)
    p.add_argument('--mask-format', choices=MASK_FORMATS, default='polygon')
    p.add_argument('--device', default='cpu')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        images = (images_from_folder(args.images, args.data_root)
                  if args.images else images_from_lvis(args.image_list))
        counts = write_pseudo_labels(
            args.out, args.config, args.checkpoint, args.categories, images,
            data_root=args.data_root, device=args.device,
            score_thr=args.score_thr, max_per_class=args.max_per_class,
            max_per_image=args.max_per_image, mask_format=args.mask_format)
    except (FileNotFoundError, NotADirectoryError, KeyError,
            ValueError) as e:
        print(f'pseudo_label: {e}', file=sys.stderr)
        return 1
    print(f'{args.out}: {counts["annotations"]} pseudo-labels on '
          f'{counts["images"]} images, {counts["categories_with_labels"]} '
          'categories labelled')
    return 0


if __name__ == '__main__':
    sys.exit(main())
