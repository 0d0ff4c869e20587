"""Image-level companion of a synthetic detection set: one object per image.

CLIS ("Collaborative Learning with Image-level Supervision", waveboo/CLIS)
and Detic (Zhou et al., "Detecting Twenty-thousand Classes using Image-level
Supervision", ECCV 2022) train a detector on LVIS together with image-level
data (ImageNet-21k images with class labels). The CLIS paper released no code;
this companion set, its layout and its numbers are OUR design.

*What it holds.* For each category of a synthetic detection set
(:mod:`longtail_benchmark.synthetic`), single-object images drawn by the very
code that draws the detection set (:func:`.drawing.draw_image`: background,
shape, colour, texture, colour jitter, pixel noise), so an object looks like
that category's objects in the detection images; objects are larger
(``size_range``, default that of the generator's own image-level split), as
in object-centric classification images.

*Tail over-represented.* ImageNet-21k holds images of many of LVIS's rare
categories (classification data is collected per class, not per scene), so
compared with the detection set image-level data is richest, relatively, for
the tail. Here every category gets ``images_per_group[g]`` images by its
frequency group ``g`` in the detection set (default rare 24, common 16,
frequent 8): on the dense-head set (28 / 38 / 34 categories) that is
672 / 608 / 272 = 1552 images, 43 % of them rare, against less than 2 % of
the detection set's image-category pairs.

*Recovering a category's look.* The generator names every category
``<colour>_<texture>_<shape>`` and those three attributes are all the
drawing uses, so the detection annotation file's ``categories`` (``id``,
``name``, ``frequency``) carry everything: the specs are parsed from the
names (:func:`category_specs`; a name outside the generator's vocabulary is
an error naming the file). The planned specs of the generator
(:func:`.planning.plan_set` on the ``generator_params`` the file records)
give the same shape, colour and texture per id (tested), so nothing has to be
re-planned.

Layout (the annotation file is the format of ``ImageLevelDataset``, Detic's
ImageNet-LVIS ``image_info`` files plus an optional ``bbox``)::

    out_dir/
      .synthetic_image_level.json     (marker: written first, parameters)
      annotations/image_level.json    {"info", "categories", "images"}
      images/000000000001.jpg ...
      meta.json                       (parameters and summary; written last)

Every image record: ``id``, ``file_name``, ``height``, ``width``,
``pos_category_ids`` (one LVIS category id) and, for ``box_fraction`` of the
images (an exact, seeded choice), ``bbox`` = ``[x, y, w, h]``: the tight box
of the object's pixels (pycocotools rasterisation of its polygon, the mask
that is painted).

*Folder rules* (as :mod:`.folder` for the detection generator, with its own
marker): the output folder must be missing, empty or one this generator made
(:data:`MARKER`); anything else, a detection set's folder included, raises
:class:`.folder.FolderNotOwnedError` before a file is touched. It may not be
inside the detection set's folder nor hold it. On regeneration only images
it named are removed.

*Determinism.* Everything is drawn from ``numpy.random.default_rng`` streams
``[seed, 16, ...]`` (the detection generator uses ``[seed, 0..5, ...]``),
one per image, so a seed gives byte-identical files; ``box_fraction``
changes the annotation file only, not the images.
"""
import hashlib
import json
import numbers
import os
import os.path as osp
import time
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import numpy as np
import pycocotools.mask as mask_utils

from longtail_plugin.utils.category_info import frequency_group

from .categories import COLOURS, SHAPES, TEXTURES, THIN_SHAPES, CategorySpec
from .drawing import draw_image, rasterise
from .folder import (FolderLock, FolderNotOwnedError, check_output_folder,
                     clear_images, count_images)
from .writer import _dump, _write_image

__all__ = [
    'IMAGE_LEVEL_VERSION', 'MARKER', 'LOCK', 'ANN_FILE', 'IMAGE_FOLDER',
    'DEFAULT_IMAGES_PER_GROUP', 'default_image_level_dir',
    'detection_ann_file', 'category_specs', 'check_image_level_folder',
    'image_level_args', 'make_image_level_set', 'ensure_image_level_set'
]

#: Bump when the output for given parameters changes.
IMAGE_LEVEL_VERSION = 1
#: Written first into every folder this generator makes.
MARKER = '.synthetic_image_level.json'
#: Lock file serialising concurrent generators on one folder.
LOCK = '.synthetic_image_level.lock'
#: Annotation file, relative to the output folder.
ANN_FILE = 'annotations/image_level.json'
#: Image folder, relative to the output folder (the dataset's img prefix).
IMAGE_FOLDER = 'images'
#: Images per category of each frequency group (rare, common, frequent).
DEFAULT_IMAGES_PER_GROUP = {'r': 24, 'c': 16, 'f': 8}
_GENERATOR = 'longtail_benchmark.synthetic.image_level'
_STREAM = 16  # [seed, 16, 1, i] image i, [seed, 16, 2] plan, 3 boxes, 4 noise
_DETECTION_TRAIN = osp.join('annotations', 'lvis_v1_train.json')

ProgressFn = Optional[Callable[[str], None]]
PathLike = Union[str, os.PathLike]


def default_image_level_dir(detection_root: PathLike) -> str:
    """Default folder of the companion of the set in ``detection_root``:
    its sibling ``<detection_root>_imagelevel``
    (``data/synthetic_lvis_densehead`` ->
    ``data/synthetic_lvis_densehead_imagelevel``)."""
    root = osp.normpath(os.fspath(detection_root))
    return root + '_imagelevel'


def detection_ann_file(detection: PathLike) -> str:
    """The detection training annotation file named by ``detection``: the
    file itself, or a set's folder (its ``annotations/lvis_v1_train.json``).
    """
    path = os.fspath(detection)
    if osp.isdir(path):
        path = osp.join(path, _DETECTION_TRAIN)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'detection annotation file {path!r} not found (pass the '
            'synthetic set\'s folder or its annotations/lvis_v1_train.json)')
    return path


def _spec_from_name(name: Any, ann_file: str, index: int) -> CategorySpec:
    parts = name.split('_') if isinstance(name, str) else []
    if len(parts) == 3:
        colour, texture, shape = parts
        if (colour in COLOURS and texture in TEXTURES
                and (shape in SHAPES or shape in THIN_SHAPES)):
            return CategorySpec(shape, colour, texture)
    raise ValueError(
        f'{ann_file}: category {index} is named {name!r}, not '
        '<colour>_<texture>_<shape> of the synthetic generator\'s vocabulary'
        ': the image-level companion draws only synthetic categories')


def category_specs(ann_file: PathLike) -> List[Dict[str, Any]]:
    """Categories of a synthetic detection annotation file, by id.

    Returns:
        One dict per category, sorted by id: ``id``, ``name``, ``frequency``
        (``'r'``/``'c'``/``'f'``: the file's ``frequency`` field, else the
        LVIS group of its ``image_count``) and ``spec`` (the
        :class:`CategorySpec` parsed from the name: what the drawing uses).

    Raises:
        ValueError: naming the file and the category for bad json, a missing
            ``categories`` list, a category without ``id``/``name``, or with
            neither ``frequency`` nor ``image_count``, duplicated ids, or a
            name that is not a synthetic category.
    """
    path = os.fspath(ann_file)
    try:
        with open(path) as f:
            data = json.load(f)
    except ValueError as e:
        raise ValueError(f'{path}: not valid json ({e})') from None
    cats = data.get('categories') if isinstance(data, dict) else None
    if not isinstance(cats, list) or not cats:
        raise ValueError(f'{path}: no "categories" list')
    out, seen = [], set()
    for i, c in enumerate(cats):
        if not isinstance(c, dict) or 'id' not in c or 'name' not in c:
            raise ValueError(f'{path}: category {i} has no "id" or "name"')
        cid = c['id']
        if isinstance(cid, bool) or not isinstance(cid, int) or cid in seen:
            raise ValueError(f'{path}: category {i} has a bad or repeated '
                             f'id {cid!r}')
        seen.add(cid)
        group = c.get('frequency')
        if group is None and isinstance(c.get('image_count'), int):
            group = frequency_group(c['image_count'])
        if group not in ('r', 'c', 'f'):
            raise ValueError(
                f'{path}: category {i} ({c["name"]!r}) has no frequency group '
                f'(frequency {c.get("frequency")!r}, image_count '
                f'{c.get("image_count")!r})')
        out.append({'id': cid, 'name': c['name'], 'frequency': group,
                    'spec': _spec_from_name(c['name'], path, i)})
    return sorted(out, key=lambda c: c['id'])


def _integer(name: str, value: Any, lo: int) -> int:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or value != int(value) or int(value) < lo):
        raise ValueError(f'{name} must be an integer >= {lo}, got {value!r}')
    return int(value)


def image_level_args(seed: int = 0,
                     images_per_group: Optional[Mapping[str, int]] = None,
                     box_fraction: float = 1.0,
                     image_size: Union[int, Sequence[int]] = 160,
                     size_range: Sequence[float] = (0.18, 0.38),
                     image_format: str = 'jpg') -> Dict[str, Any]:
    """Check the generator arguments (naming the bad one) and normalise them
    (the JSON-able dict recorded in the marker and ``meta.json``)."""
    if images_per_group is None:
        images_per_group = DEFAULT_IMAGES_PER_GROUP
    if (not isinstance(images_per_group, Mapping)
            or set(images_per_group) != {'r', 'c', 'f'}):
        raise ValueError('images_per_group must be a dict with exactly the '
                         f"keys 'r', 'c', 'f', got {images_per_group!r}")
    per_group = {
        g: _integer(f'images_per_group[{g!r}]', images_per_group[g], 0)
        for g in 'rcf'
    }
    if isinstance(box_fraction, bool) or not isinstance(
            box_fraction, numbers.Real) or not 0.0 <= box_fraction <= 1.0:
        raise ValueError(f'box_fraction must be in [0, 1], got '
                         f'{box_fraction!r}')
    if isinstance(image_size, numbers.Real) and not isinstance(
            image_size, bool):
        image_size = (image_size, image_size)
    if not isinstance(image_size, Sequence) or len(image_size) != 2:
        raise ValueError('image_size must be an integer or (height, width), '
                         f'got {image_size!r}')
    h, w = (_integer('image_size', x, 32) for x in image_size)
    if (not isinstance(size_range, Sequence) or len(size_range) != 2
            or not all(isinstance(x, numbers.Real) for x in size_range)
            or not 0.0 < size_range[0] <= size_range[1] <= 0.5):
        raise ValueError('size_range (object radius / shorter image side) '
                         'must be (lo, hi) with 0 < lo <= hi <= 0.5, got '
                         f'{size_range!r}')
    fmt = str(image_format).lower().lstrip('.')
    fmt = 'jpg' if fmt == 'jpeg' else fmt
    if fmt not in ('jpg', 'png'):
        raise ValueError(f'image_format must be jpg or png, not {fmt!r}')
    return {
        'seed': _integer('seed', seed, 0),
        'images_per_group': per_group,
        'box_fraction': float(box_fraction),
        'image_size': [h, w],
        'size_range': [float(size_range[0]), float(size_range[1])],
        'image_format': fmt,
    }


def _signature(cats: List[Dict[str, Any]]) -> str:
    """What the companion depends on in the detection set: ids, names and
    groups of its categories (not its path: a moved set is the same)."""
    text = json.dumps([[c['id'], c['name'], c['frequency']] for c in cats])
    return hashlib.sha256(text.encode()).hexdigest()


def _made_here(out_dir: str) -> bool:
    return osp.isfile(osp.join(out_dir, MARKER))


def check_image_level_folder(out_dir: PathLike,
                             detection_root: Optional[PathLike] = None
                             ) -> None:
    """Refuse an output folder this generator may not write into.

    Allowed: a missing folder, an empty one (a lone :data:`LOCK` counts as
    empty) and one it made (:data:`MARKER`), neither inside
    ``detection_root`` nor holding it. Reads only.

    Raises:
        ValueError: ``out_dir`` and ``detection_root`` are nested.
        NotADirectoryError: ``out_dir`` is a file.
        FolderNotOwnedError: the folder holds anything else (a detection
            set, a real data folder); the message names it and its entries.
    """
    out = osp.abspath(os.fspath(out_dir))
    if detection_root is not None:
        det = osp.abspath(os.fspath(detection_root))
        if osp.commonpath([out, det]) in (out, det):
            raise ValueError(
                f'the image-level set {out!r} and the detection set {det!r} '
                'must be separate folders (neither inside the other); the '
                'default is ' + default_image_level_dir(det))
    check_output_folder(out, owned=_made_here,
                        what='synthetic image-level set', marker=MARKER,
                        suggestion='<detection set>_imagelevel')


def _plan(cats: List[Dict[str, Any]], p: Dict[str, Any]
          ) -> Tuple[List[int], List[bool]]:
    """Label of each image (shuffled) and whether its record gets a box."""
    counts = [p['images_per_group'][c['frequency']] for c in cats]
    labels = np.repeat(np.arange(len(cats)), counts)
    if len(labels) == 0:
        raise ValueError('images_per_group gives no image for the groups of '
                         f'this detection set ({p["images_per_group"]})')
    rng = np.random.default_rng([p['seed'], _STREAM, 2])
    labels = labels[rng.permutation(len(labels))]
    n_box = int(np.floor(p['box_fraction'] * len(labels) + 0.5))
    boxed = np.zeros(len(labels), bool)
    boxed[np.random.default_rng([p['seed'], _STREAM, 3]).permutation(
        len(labels))[:n_box]] = True
    return [int(x) for x in labels], [bool(x) for x in boxed]


def _prepare(out_dir: PathLike, detection: PathLike,
             kwargs: Dict[str, Any]):
    """Everything that can fail on the arguments, before a file is touched.
    """
    unknown = set(kwargs) - {'seed', 'images_per_group', 'box_fraction',
                             'image_size', 'size_range', 'image_format'}
    if unknown:
        raise TypeError(f'unknown image-level arguments: {sorted(unknown)}')
    args = image_level_args(**kwargs)
    ann_file = detection_ann_file(detection)
    cats = category_specs(ann_file)
    params = dict(args, detection_categories=_signature(cats))
    labels, boxed = _plan(cats, params)
    ann_dir = osp.dirname(osp.abspath(ann_file))
    det_root = (osp.dirname(ann_dir)
                if osp.basename(ann_dir) == 'annotations' else None)
    check_image_level_folder(out_dir, det_root)
    return ann_file, cats, params, labels, boxed


def _generate(out_dir: str, ann_file: str, cats: List[Dict[str, Any]],
              params: Dict[str, Any], labels: List[int], boxed: List[bool],
              progress: ProgressFn) -> Dict[str, Any]:
    start = time.perf_counter()
    p = params
    h, w = p['image_size']
    fmt = p['image_format']
    seed = p['seed']
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    _dump(osp.join(out_dir, MARKER), {'generator': _GENERATOR,
                                      'version': IMAGE_LEVEL_VERSION,
                                      'params': p})
    meta_path = osp.join(out_dir, 'meta.json')
    if osp.exists(meta_path):
        os.remove(meta_path)  # incomplete until it is rewritten
    img_dir = osp.join(out_dir, IMAGE_FOLDER)
    os.makedirs(img_dir, exist_ok=True)
    names = [f'{i + 1:012d}.{fmt}' for i in range(len(labels))]
    clear_images(img_dir, names)  # stale images of an earlier set go
    specs = [c['spec'] for c in cats]
    noise = np.random.default_rng([seed, _STREAM, 4]).standard_normal(
        (2 * h, 2 * w, 3), dtype=np.float32)
    size_range = tuple(p['size_range'])
    images = []
    step = max(1, len(labels) // 10)
    for i, (label, name) in enumerate(zip(labels, names)):
        rng = np.random.default_rng([seed, _STREAM, 1, i])
        drawn = draw_image(rng, [label], specs, noise, h, w, size_range,
                           1.0, 0.0)
        _write_image(osp.join(img_dir, name), drawn.image, fmt)
        record = {'id': i + 1, 'file_name': name, 'height': h, 'width': w,
                  'pos_category_ids': [cats[label]['id']]}
        if boxed[i]:
            (_, polys), = drawn.anns
            box = mask_utils.toBbox(rasterise(polys, h, w))
            record['bbox'] = [float(x) for x in box]
        images.append(record)
        if progress is not None and ((i + 1) % step == 0
                                     or i + 1 == len(labels)):
            progress(f'[image_level] {i + 1}/{len(labels)} images')
    per_group = {g: 0 for g in 'rcf'}
    for label in labels:
        per_group[cats[label]['frequency']] += 1
    ann_path = osp.join(out_dir, ANN_FILE)
    _dump(ann_path, {
        'info': {
            'description': ('Synthetic image-level companion set: one '
                            'object per image'),
            'generator': _GENERATOR,
            'version': IMAGE_LEVEL_VERSION,
            'params': p,
        },
        'categories': [{'id': c['id'], 'name': c['name'],
                        'frequency': c['frequency']} for c in cats],
        'images': images,
    })
    summary = {
        'data_root': osp.abspath(out_dir),
        'ann_file': osp.abspath(ann_path),
        'img_prefix': IMAGE_FOLDER + '/',
        'detection_ann_file': osp.abspath(ann_file),
        'num_images': len(images),
        'num_boxed': int(sum(boxed)),
        'images_per_group': per_group,
        'categories_per_group': {
            g: sum(c['frequency'] == g for c in cats) for g in 'rcf'},
        'seconds': round(time.perf_counter() - start, 2),
        'params': p,
        'reused': False,
    }
    _dump(meta_path, {'generator': _GENERATOR,
                      'version': IMAGE_LEVEL_VERSION, 'params': p,
                      'summary': summary})
    return summary


def make_image_level_set(out_dir: PathLike,
                         detection: PathLike,
                         seed: int = 0,
                         images_per_group: Optional[Mapping[str, int]] = None,
                         box_fraction: float = 1.0,
                         image_size: Union[int, Sequence[int]] = 160,
                         size_range: Sequence[float] = (0.18, 0.38),
                         image_format: str = 'jpg',
                         progress: ProgressFn = None) -> Dict[str, Any]:
    """Generate the image-level companion of a synthetic detection set.

    Args:
        out_dir: output folder: missing, empty or made by this generator
            (:data:`MARKER`); separate from the detection set's folder
            (default name: :func:`default_image_level_dir`).
        detection: the detection set's training annotation file, or its
            folder (``annotations/lvis_v1_train.json`` inside).
        seed: random seed; the same seed gives byte-identical files.
        images_per_group: images per category of each detection frequency
            group, ``{'r': 24, 'c': 16, 'f': 8}`` by default.
        box_fraction: fraction of the images whose record carries the
            object's ``bbox`` (exact count, rounded; seeded choice).
        image_size: side, or (height, width), of every image.
        size_range: object radius range, as a fraction of the shorter side
            (the detection images use (0.05, 0.22)).
        image_format: 'jpg' (quality 95, 4:4:4, as the detection set) or
            'png'.
        progress: called with progress messages (e.g. ``print``).

    Returns:
        Summary: ``data_root``, ``ann_file``, ``img_prefix``,
        ``detection_ann_file``, ``num_images``, ``num_boxed``,
        ``images_per_group`` (images of each group), ``categories_per_group``,
        ``seconds``, ``params``, ``reused`` (False).

    Raises:
        ValueError: a bad argument or detection file (naming it); nothing is
            created.
        FolderNotOwnedError: ``out_dir`` holds files this generator did not
            write (nothing is changed).
    """
    prepared = _prepare(out_dir, detection, dict(
        seed=seed, images_per_group=images_per_group,
        box_fraction=box_fraction, image_size=image_size,
        size_range=size_range, image_format=image_format))
    return _generate(os.fspath(out_dir), *prepared, progress)


def _complete(out_dir: str, meta: Dict[str, Any]) -> bool:
    img_dir = osp.join(out_dir, IMAGE_FOLDER)
    return (osp.isfile(osp.join(out_dir, ANN_FILE)) and osp.isdir(img_dir)
            and count_images(img_dir) == meta.get('summary', {}).get(
                'num_images', -1))


def ensure_image_level_set(out_dir: PathLike,
                           detection: PathLike,
                           progress: ProgressFn = None,
                           **kwargs: Any) -> Dict[str, Any]:
    """Reuse the companion in ``out_dir`` if made with these parameters.

    Takes the keyword arguments of :func:`make_image_level_set`. Reused when
    ``meta.json`` records this version and the same parameters (the
    detection set's categories included) and every image is in place;
    otherwise regenerated under the folder rules. Concurrent callers on one
    machine are serialised with a lock file.

    Returns:
        The summary of :func:`make_image_level_set`; ``reused`` tells
        whether the existing set was kept.
    """
    out_dir = os.fspath(out_dir)
    start = time.perf_counter()
    ann_file, cats, params, labels, boxed = _prepare(out_dir, detection,
                                                     kwargs)
    os.makedirs(out_dir, exist_ok=True)
    with FolderLock(osp.join(out_dir, LOCK)):
        try:
            with open(osp.join(out_dir, 'meta.json')) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            meta = None
        if (isinstance(meta, dict)
                and meta.get('version') == IMAGE_LEVEL_VERSION
                and meta.get('params') == params and _complete(out_dir, meta)):
            summary = dict(meta['summary'])
            root = osp.abspath(out_dir)
            summary.update(data_root=root,
                           ann_file=osp.join(root, ANN_FILE),
                           detection_ann_file=osp.abspath(ann_file),
                           reused=True,
                           generation_seconds=summary.get('seconds'),
                           seconds=round(time.perf_counter() - start, 2))
            if progress is not None:
                progress(f'[image_level] reusing {root}')
            return summary
        # the lock file alone must not make the folder look foreign
        return _generate(out_dir, ann_file, cats, params, labels, boxed,
                         progress)
