"""Generate the synthetic long-tailed LVIS v1-format set.

Example::

    python tools/make_synthetic_lvis.py --out data/synthetic_lvis --seed 0

writes ``annotations/lvis_v1_{train,val,train_image_level}.json`` and the
images under ``train2017/``, ``val2017/`` and ``train_image_level/``. The
output folder must be missing, empty or one the generator made (it replaces
COCO-named images there); anything else is refused before a file is touched.
``--thin-shapes`` adds thin, hollow and diagonal shapes (a third of the
categories); ``--stats`` prints the mask/box area ratio distribution of the
training set (also ``tools/mask_box_ratio.py`` for any annotation file).
See :mod:`longtail_benchmark.synthetic` for the design.
"""
import argparse
from typing import Callable, List, Optional

from longtail_benchmark.synthetic import (FolderNotOwnedError,
                                          ensure_synthetic_lvis,
                                          make_synthetic_lvis)
from longtail_benchmark.synthetic.stats import (format_ratio_summary,
                                                ratio_summary)


def _integer(lo: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'not an integer: {text!r}')
        if value < lo:
            raise argparse.ArgumentTypeError(f'must be >= {lo}, got {value}')
        return value

    return parse


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Generate a synthetic long-tailed LVIS v1-format set.')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--seed', type=_integer(0), default=0)
    p.add_argument('--num-classes', type=_integer(1), default=100)
    p.add_argument('--num-train-images', type=_integer(1), default=1200)
    p.add_argument('--num-val-images', type=_integer(1), default=240)
    p.add_argument('--image-size', type=_integer(32), nargs=2,
                   default=(160, 160), metavar=('H', 'W'))
    p.add_argument('--image-level', action=argparse.BooleanOptionalAction,
                   default=True,
                   help='also write the image-level companion set')
    p.add_argument('--image-level-per-class', type=_integer(0),
                   default=10)
    p.add_argument('--min-objects', type=_integer(1), default=2)
    p.add_argument('--max-objects', type=_integer(1), default=5)
    p.add_argument('--val-min-instances', type=_integer(1), default=5,
                   help='least validation images of every category')
    p.add_argument('--num-neg-per-image', type=_integer(0), default=10)
    p.add_argument('--image-format', choices=('jpg', 'png'), default='jpg')
    p.add_argument('--head-instances', type=float, default=1.0,
                   help='mean instances of a frequent category per image '
                   'that has it (extra ones are small); 1 = default set')
    p.add_argument('--thin-shapes', action='store_true',
                   help='add thin, hollow and diagonal shapes (rods, thin '
                   'rings and crescents, L/V/Z strokes, frames; mask/box '
                   'area ratio < 0.25) to the vocabulary: about a third of '
                   'the categories')
    p.add_argument('--stats', action='store_true',
                   help='print the mask/box area ratio distribution of the '
                   'training set')
    p.add_argument('--reuse', action='store_true',
                   help='keep an existing set generated with the same '
                   'parameters (meta.json) instead of regenerating')
    p.add_argument('--quiet', action='store_true', help='no progress lines')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    kwargs = dict(
        seed=args.seed,
        num_classes=args.num_classes,
        num_train_images=args.num_train_images,
        num_val_images=args.num_val_images,
        image_size=tuple(args.image_size),
        image_level=args.image_level,
        image_level_per_class=args.image_level_per_class,
        min_objects=args.min_objects,
        max_objects=args.max_objects,
        val_min_instances=args.val_min_instances,
        num_neg_per_image=args.num_neg_per_image,
        image_format=args.image_format,
        head_instances=args.head_instances,
        thin_shapes=args.thin_shapes,
        progress=None if args.quiet else print)
    try:
        if args.reuse:
            s = ensure_synthetic_lvis(args.out, **kwargs)
        else:
            s = make_synthetic_lvis(args.out, **kwargs)
    except (ValueError, FolderNotOwnedError, NotADirectoryError) as e:
        raise SystemExit(f'make_synthetic_lvis: {e}')
    freq = s['frequency_counts']
    print(f"{'reused' if s['reused'] else 'generated'} {s['data_root']}")
    print(f"  train: {s['num_train_images']} images, "
          f"{s['num_train_instances']} instances -> {s['train_ann']}")
    print(f"  val:   {s['num_val_images']} images, "
          f"{s['num_val_instances']} instances -> {s['val_ann']}")
    if s['image_level_ann']:
        print(f"  image-level: {s['num_image_level_images']} images "
              f"-> {s['image_level_ann']}")
    print(f"  categories: {s['num_categories']} "
          f"(r/c/f = {freq['r']}/{freq['c']}/{freq['f']}), "
          f"occluded instances: {s['occluded_instances']}")
    print(f"  time: {s['seconds']:.1f} s")
    if args.stats:
        print(format_ratio_summary(ratio_summary(s['train_ann'])))
    return s


if __name__ == '__main__':
    main()
