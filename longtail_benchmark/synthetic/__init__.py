"""A small synthetic long-tailed instance-segmentation set in LVIS v1 format.

The set exists so that every long-tail method of the plugin can be trained and
compared for real on a laptop CPU, with nothing to download
(``tools/make_synthetic_lvis.py``; ``tools/lt_benchmark.py`` generates it for
the configs that name it). One module per concern:

- :mod:`.categories`: what each category looks like (shape, colour, texture;
  tail categories are one attribute away from a head category).
- :mod:`.planning`: how many training images each category gets (LVIS v1's
  rare/common/frequent proportions and ranges), which categories each train,
  val and image-level image holds, the dense-head crowds - all decided
  before any image is drawn.
- :mod:`.drawing`: geometry and painting of one image (occlusion-aware
  placement, exact visible-part polygons, textures, background, noise).
- :mod:`.writer`: the LVIS v1 files, ``meta.json``, the public
  :func:`make_synthetic_lvis` / :func:`ensure_synthetic_lvis`.
- :mod:`.folder`: which output folders the generator may write into (missing,
  empty or its own, marked with ``.synthetic_lvis.json``), what it may remove
  there (only its own image names), the lock.

*Dense head (``head_instances``, off by default).* With one instance per
image-category pair the rare and common categories hold about a quarter of
the training instances, several times their share in LVIS v1. With
``head_instances > 1`` every occurrence of a frequent category in an image
(train and val) gets on average ``head_instances - 1`` extra, smaller
instances (:func:`plan_crowds`, drawn after the image's other objects from
their own random stream); image counts, frequency groups and the rest of the
set are those of the default set with the same seed. ``head_instances = 3``
brings the tail to 10% of the training instances and about 10 instances per
image (LVIS v1: 12.7).

*Thin shapes (``thin_shapes``, off by default).* Adds seven thin, hollow or
diagonal shapes to the vocabulary (:data:`.categories.THIN_SHAPES`), so
about a third of the categories, in every frequency group, have a mask/box
area ratio well below 0.3 - the objects of a foreground/background-balanced
mask loss and a ratio-aware mask RoI assignment. :mod:`.stats` reports the
ratio distribution of any set.

*Image-level companion set.* One object per image and one label per image
(``pos_category_ids`` = [label], plus its box and mask), category-balanced
(``image_level_per_class`` images per category), for methods with image-level
supervision. It uses the training categories list.

Everything is drawn from ``numpy.random.default_rng`` streams derived from
``seed``, one per split and one per image, so a seed gives byte-identical
JSON (and images); the image-level set never changes train or val.
"""
from .categories import (COLOURS, DIAGONAL_SHAPES, SHAPES, TEXTURES,
                         THIN_SHAPES, CategorySpec, build_category_specs,
                         shape_names)
from .folder import MARKER, FolderNotOwnedError, check_output_folder
from .planning import (LVIS_GROUP_PROPORTIONS, MAX_CROWD_PER_OCCURRENCE,
                       plan_crowds, plan_set, plan_train_image_counts)
from .stats import (format_ratio_summary, mask_box_ratios, ratio_summary,
                    thinnest_categories)
from .writer import (COCO_URL_PREFIX, GENERATOR_VERSION,
                     ensure_synthetic_lvis, load_class_names,
                     make_synthetic_lvis)

__all__ = [
    'GENERATOR_VERSION', 'COCO_URL_PREFIX', 'LVIS_GROUP_PROPORTIONS',
    'MAX_CROWD_PER_OCCURRENCE', 'SHAPES', 'THIN_SHAPES', 'DIAGONAL_SHAPES',
    'shape_names', 'COLOURS', 'TEXTURES', 'mask_box_ratios', 'ratio_summary',
    'thinnest_categories', 'format_ratio_summary',
    'CategorySpec', 'plan_train_image_counts', 'build_category_specs',
    'plan_crowds', 'plan_set', 'make_synthetic_lvis', 'ensure_synthetic_lvis',
    'load_class_names', 'MARKER', 'FolderNotOwnedError',
    'check_output_folder'
]
