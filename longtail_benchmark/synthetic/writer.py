"""Writing the synthetic set: images, LVIS v1 annotation files, ``meta.json``.

The set is written in the exact LVIS v1 layout, so MMDetection's
``LVISV1Dataset`` reads it and the LVIS API evaluates on it unchanged::

    out_dir/
      annotations/lvis_v1_train.json
      annotations/lvis_v1_val.json
      annotations/lvis_v1_train_image_level.json   (optional companion set)
      train2017/000000000001.jpg ...
      val2017/...
      train_image_level/...
      meta.json                                    (generation parameters)
      .synthetic_lvis.json                         (the folder is ours)

``area``/``bbox`` come from the pycocotools rasterisation of the stored
segmentation. *Federated labels:* ``neg_category_ids`` lists categories
verified absent from an image (``num_neg_per_image`` of them, categories
confusable with a present one - sharing two attributes - three times as
likely); ``not_exhaustive_category_ids`` is true (see :mod:`.drawing`).

Every argument is checked and the whole set planned
(:func:`.planning.plan_set`) before anything is created; then the output folder is checked
(:func:`.folder.check_output_folder`: missing, empty or made by the
generator) and claimed with its marker before any other file is written.
"""
import inspect
import json
import numbers
import os
import os.path as osp
import time
from typing import (Any, Callable, Dict, List, Optional, Sequence, Tuple,
                    Union)

import cv2
import numpy as np
import pycocotools.mask as mask_utils

from longtail_plugin.utils.category_info import frequency_group

from .categories import COLOURS, TEXTURES, CategorySpec, shape_names
from .drawing import draw_image, rasterise
from .folder import (LOCK, FolderLock, check_output_folder, clear_images,
                     count_images, write_marker)
from .planning import MAX_CROWD_PER_OCCURRENCE, SetPlan, plan_set

__all__ = [
    'GENERATOR_VERSION', 'COCO_URL_PREFIX', 'make_synthetic_lvis',
    'ensure_synthetic_lvis', 'load_class_names'
]

#: Bump when the output for given parameters changes (invalidates meta.json).
GENERATOR_VERSION = 1
#: MMDetection's LVISV1Dataset strips this prefix from ``coco_url``.
COCO_URL_PREFIX = 'http://images.cocodataset.org/'
_GENERATOR = 'longtail_benchmark.synthetic'
# ``info.contributor`` of the annotation files: the generator's module when
# version 1 was written; kept so that a seed gives the same bytes as before.
_CONTRIBUTOR = 'longtail_plugin.datasets.synthetic_lvis'

ProgressFn = Optional[Callable[[str], None]]


def _siblings(specs: Sequence[CategorySpec]) -> List[np.ndarray]:
    keys = np.array([s.key for s in specs])
    return [
        np.nonzero((keys == keys[i]).sum(1) == 2)[0]
        for i in range(len(specs))
    ]


def _neg_ids(rng: np.random.Generator, present: Sequence[int],
             siblings: List[np.ndarray], num_classes: int,
             num_neg: int) -> List[int]:
    weight = np.ones(num_classes)
    for k in present:
        weight[siblings[k]] = 3.0
    weight[list(present)] = 0.0
    n = min(num_neg, int((weight > 0).sum()))
    if n <= 0:
        return []
    pick = rng.choice(num_classes, size=n, replace=False,
                      p=weight / weight.sum())
    return sorted(int(k) for k in pick)


def _write_image(path: str, rgb: np.ndarray, fmt: str) -> None:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    # 4:4:4 chroma: the default 4:2:0 subsampling would bleed the colour of
    # small and thin objects over their (exact) mask boundary
    params = ([cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
               cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444] if fmt == 'jpg' else
              [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not cv2.imwrite(path, bgr, params):
        raise OSError(f'could not write {path}')


def _write_split(out_dir: str, folder: str, image_labels: List[List[int]],
                 specs: Sequence[CategorySpec], cat_ids: Sequence[int],
                 seed: int, stream: int, first_image_id: int,
                 first_ann_id: int, params: Dict[str, Any],
                 size_range: Tuple[float, float], min_visible: float,
                 not_exhaustive_prob: float, progress: ProgressFn,
                 extra_image_fields: bool = False,
                 crowds: Optional[List[List[int]]] = None) -> Dict[str, Any]:
    h, w = params['image_size']
    fmt = params['image_format']
    siblings = _siblings(specs)
    os.makedirs(osp.join(out_dir, folder), exist_ok=True)
    # stale images of an earlier set go; the others are overwritten below
    clear_images(osp.join(out_dir, folder), [
        f'{first_image_id + i:012d}.{fmt}' for i in range(len(image_labels))
    ])
    images, annotations = [], []
    ann_id, occluded = first_ann_id, 0
    noise = np.random.default_rng([seed, stream, 1 << 30]).standard_normal(
        (2 * h, 2 * w, 3), dtype=np.float32)
    n = len(image_labels)
    step = max(1, n // 10)
    for i, labels in enumerate(image_labels):
        rng = np.random.default_rng([seed, stream, i])
        image_id = first_image_id + i
        file_name = f'{image_id:012d}.{fmt}'
        drawn = draw_image(rng, labels, specs, noise, h, w, size_range,
                            min_visible, not_exhaustive_prob,
                            crowds[i] if crowds else ())
        _write_image(osp.join(out_dir, folder, file_name), drawn.image, fmt)
        occluded += drawn.occluded
        present = sorted(set(labels))
        secs = int(rng.integers(0, 365 * 86400))
        info = {
            'id': image_id,
            'width': w,
            'height': h,
            'file_name': file_name,
            'coco_url': f'{COCO_URL_PREFIX}{folder}/{file_name}',
            'flickr_url': '',
            'license': 1,
            'date_captured': time.strftime('%Y-%m-%d %H:%M:%S',
                                           time.gmtime(1609459200 + secs)),
            'neg_category_ids': [
                cat_ids[k] for k in _neg_ids(rng, present, siblings,
                                             len(specs),
                                             params['num_neg_per_image'])
            ],
            'not_exhaustive_category_ids':
            [cat_ids[k] for k in drawn.not_exhaustive],
        }
        if extra_image_fields:
            info['pos_category_ids'] = [cat_ids[k] for k in present]
        images.append(info)
        for label, polys in drawn.anns:
            rle = rasterise(polys, h, w)
            annotations.append({
                'id': ann_id,
                'image_id': image_id,
                'category_id': cat_ids[label],
                'segmentation': polys,
                'area': float(mask_utils.area(rle)),
                'bbox': [float(x) for x in mask_utils.toBbox(rle)],
            })
            ann_id += 1
        if progress is not None and ((i + 1) % step == 0 or i + 1 == n):
            progress(f'[synthetic_lvis] {folder}: {i + 1}/{n} images')
    return {'images': images, 'annotations': annotations,
            'occluded': occluded}


def _category_dicts(specs: Sequence[CategorySpec], order: Sequence[int],
                    train_anns: List[dict],
                    cat_ids: Sequence[int]) -> List[dict]:
    id_to_label = {cid: k for k, cid in enumerate(cat_ids)}
    img_sets: List[set] = [set() for _ in specs]
    inst = np.zeros(len(specs), np.int64)
    for a in train_anns:
        k = id_to_label[a['category_id']]
        img_sets[k].add(a['image_id'])
        inst[k] += 1
    cats = []
    for k in order:  # by category id
        s = specs[k]
        cats.append({
            'id': cat_ids[k],
            'name': s.name,
            'synset': f'{s.name}.n.01',
            'synonyms': [s.name, f'{s.colour}_{s.shape}'],
            'def': s.describe(),
            'frequency': frequency_group(len(img_sets[k])),
            'image_count': len(img_sets[k]),
            'instance_count': int(inst[k]),
        })
    return cats


def _dump(path: str, data: Any) -> None:
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        f.write(json.dumps(data, separators=(',', ':')))  # C encoder
    os.replace(tmp, path)


def _lvis_file(images: List[dict], anns: List[dict], cats: List[dict],
               params: Dict[str, Any], split: str) -> Dict[str, Any]:
    return {
        'info': {
            'description': ('Synthetic long-tailed instance segmentation '
                            f'set in LVIS v1 format ({split})'),
            'url': '',
            'version': f'synthetic-lvis-{GENERATOR_VERSION}',
            'year': 2024,
            'contributor': _CONTRIBUTOR,
            'date_created': '2024-01-01',
            'generator_params': params,
        },
        'licenses': [{
            'id': 1,
            'name': 'Synthetic images, generated procedurally',
            'url': ''
        }],
        'categories': cats,
        'images': images,
        'annotations': anns,
    }


def _integer(name: str, value: Any, lo: int) -> int:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or value != int(value) or int(value) < lo):
        option = '--' + name.replace('_', '-')
        raise ValueError(
            f'{name} ({option}) must be an integer >= {lo}, got {value!r}')
    return int(value)


def _normalise_params(seed: int, num_classes: int, num_train_images: int,
                      num_val_images: int, image_size: Sequence[int],
                      image_level: bool, image_level_per_class: int,
                      min_objects: int, max_objects: int,
                      val_min_instances: int, num_neg_per_image: int,
                      not_exhaustive_prob: float,
                      image_format: str,
                      head_instances: float = 1.0,
                      thin_shapes: bool = False) -> Dict[str, Any]:
    """Check every argument (naming it and its range) and normalise them.

    ``thin_shapes`` is recorded only when true, so the parameters (and the
    files that carry them) of a set without it are those written before the
    option existed.
    """
    if not isinstance(thin_shapes, (bool, np.bool_)):
        raise ValueError('thin_shapes (--thin-shapes) must be True or False, '
                         f'got {thin_shapes!r}')
    fmt = image_format.lower().lstrip('.')
    fmt = 'jpg' if fmt == 'jpeg' else fmt
    if fmt not in ('jpg', 'png'):
        raise ValueError(f'image_format must be jpg or png, not {fmt!r}')
    if len(image_size) != 2:
        raise ValueError(f'image_size must be (height, width), got '
                         f'{image_size!r}')
    h, w = (_integer('image_size', x, 32) for x in image_size)
    max_classes = (len(shape_names(bool(thin_shapes))) * len(COLOURS) *
                   len(TEXTURES))
    if not 1 <= _integer('num_classes', num_classes, 1) <= max_classes:
        raise ValueError(f'num_classes (--num-classes) must be in [1, '
                         f'{max_classes}], got {num_classes}')
    min_objects = _integer('min_objects', min_objects, 1)
    max_objects = _integer('max_objects', max_objects, 1)
    if not min_objects <= max_objects:
        raise ValueError('need 1 <= min_objects <= max_objects, got '
                         f'min_objects={min_objects}, '
                         f'max_objects={max_objects}')
    if not 0.0 <= float(not_exhaustive_prob) <= 1.0:
        raise ValueError('not_exhaustive_prob must be in [0, 1], got '
                         f'{not_exhaustive_prob}')
    if not 1.0 <= float(head_instances) <= 1.0 + MAX_CROWD_PER_OCCURRENCE:
        raise ValueError(
            'head_instances (mean instances of a frequent category in an '
            f'image that has it) must be in [1, '
            f'{1 + MAX_CROWD_PER_OCCURRENCE}], got {head_instances}')
    params = {
        'seed': _integer('seed', seed, 0),
        'num_classes': int(num_classes),
        'num_train_images': _integer('num_train_images', num_train_images,
                                     1),
        'num_val_images': _integer('num_val_images', num_val_images, 1),
        'image_size': [h, w],
        'image_level': bool(image_level),
        'image_level_per_class': _integer('image_level_per_class',
                                          image_level_per_class, 0),
        'min_objects': min_objects,
        'max_objects': max_objects,
        'val_min_instances': _integer('val_min_instances', val_min_instances,
                                      1),
        'num_neg_per_image': _integer('num_neg_per_image', num_neg_per_image,
                                      0),
        'not_exhaustive_prob': float(not_exhaustive_prob),
        'image_format': fmt,
        'head_instances': float(head_instances),
    }
    if thin_shapes:
        params['thin_shapes'] = True
    return params


def make_synthetic_lvis(out_dir: str,
                        seed: int = 0,
                        num_classes: int = 100,
                        num_train_images: int = 1200,
                        num_val_images: int = 240,
                        image_size: Sequence[int] = (160, 160),
                        image_level: bool = True,
                        image_level_per_class: int = 10,
                        min_objects: int = 2,
                        max_objects: int = 5,
                        val_min_instances: int = 5,
                        num_neg_per_image: int = 10,
                        not_exhaustive_prob: float = 0.02,
                        image_format: str = 'jpg',
                        head_instances: float = 1.0,
                        thin_shapes: bool = False,
                        progress: ProgressFn = None) -> Dict[str, Any]:
    """Generate the synthetic long-tailed LVIS v1-format set into ``out_dir``.

    Args:
        out_dir: output folder: missing, empty, or one the generator made
            (its marker ``.synthetic_lvis.json``); images this generator
            wrote before are replaced, nothing else is removed.
        seed: random seed; the same seed gives byte-identical JSON.
        num_classes: number of categories (at most 1176).
        num_train_images, num_val_images: split sizes.
        image_size: (height, width) of every image.
        image_level: also write the image-level companion set.
        image_level_per_class: its images per category (category-balanced).
        min_objects, max_objects: distinct categories per image (a few
            images carry a second instance of a category on top).
        val_min_instances: least validation images (thus instances) per
            category.
        num_neg_per_image: ``neg_category_ids`` per image.
        not_exhaustive_prob: fraction of images with one (true)
            ``not_exhaustive_category_ids`` entry.
        image_format: 'jpg' (quality 95) or 'png'.
        head_instances: mean number of instances of a frequent category in
            each image that contains it (train and val). 1.0 (default) keeps
            one, plus the occasional second instance; larger values add
            small extra instances of the frequent categories only, as in
            LVIS, where head categories come in groups and make up almost
            all instances (see :func:`plan_crowds`).
        thin_shapes: add seven thin, hollow or diagonal shapes (rods and
            frames near a diagonal, thin rings and crescents, L, V, Z;
            mask/box area ratio < 0.25) to the shape vocabulary, so that
            about a third of the categories are thin
            (:data:`.categories.THIN_SHAPES`). Off (default), the set is
            byte-identical to the one written before the option existed.
        progress: called with progress messages (e.g. ``print``).

    Returns:
        Summary dict: ``data_root``, ``train_ann``, ``val_ann``,
        ``image_level_ann`` (or None), image/instance counts per split,
        ``frequency_counts`` ({'r', 'c', 'f'} -> number of categories),
        ``train_image_counts`` (by category id order), ``occluded_instances``,
        ``seconds``, ``params`` and ``reused`` (False).

    Raises:
        ValueError: an argument out of its range, naming it (nothing is
            created).
        FolderNotOwnedError: ``out_dir`` holds files the generator did not
            write, e.g. a real LVIS folder (nothing is changed).
    """
    params = _normalise_params(seed, num_classes, num_train_images,
                               num_val_images, image_size, image_level,
                               image_level_per_class, min_objects,
                               max_objects, val_min_instances,
                               num_neg_per_image, not_exhaustive_prob,
                               image_format, head_instances, thin_shapes)
    return _generate(out_dir, params, progress)


def _generate(out_dir: str, params: Dict[str, Any], progress: ProgressFn,
              plan: Optional[SetPlan] = None) -> Dict[str, Any]:
    start = time.perf_counter()
    p = params
    seed, k = p['seed'], p['num_classes']
    h, w = p['image_size']
    # everything that can fail on the arguments fails here, before the
    # folder is checked and anything is created
    if plan is None:
        plan = plan_set(p)
    check_output_folder(out_dir)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    write_marker(out_dir, _GENERATOR, GENERATOR_VERSION, p)
    meta_path = osp.join(out_dir, 'meta.json')
    if osp.exists(meta_path):
        os.remove(meta_path)  # the set is incomplete until it is rewritten

    specs, cat_ids = plan.specs, plan.cat_ids
    # a little smaller objects in busy images keep occlusion moderate
    size_range = (0.05, 0.22)
    min_visible = 0.6
    common = dict(specs=specs, cat_ids=cat_ids, seed=seed, params=p,
                  min_visible=min_visible, progress=progress)
    n_train, n_val = p['num_train_images'], p['num_val_images']
    train = _write_split(out_dir, 'train2017', plan.train_labels, stream=1,
                         first_image_id=1, first_ann_id=1,
                         size_range=size_range,
                         not_exhaustive_prob=p['not_exhaustive_prob'],
                         crowds=plan.train_crowds, **common)
    val = _write_split(out_dir, 'val2017', plan.val_labels, stream=2,
                       first_image_id=n_train + 1,
                       first_ann_id=len(train['annotations']) + 1,
                       size_range=size_range,
                       not_exhaustive_prob=p['not_exhaustive_prob'],
                       crowds=plan.val_crowds, **common)
    cats = _category_dicts(specs, plan.order, train['annotations'], cat_ids)
    ann_dir = osp.join(out_dir, 'annotations')
    train_ann = osp.join(ann_dir, 'lvis_v1_train.json')
    val_ann = osp.join(ann_dir, 'lvis_v1_val.json')
    _dump(train_ann, _lvis_file(train['images'], train['annotations'], cats,
                                p, 'train'))
    _dump(val_ann, _lvis_file(val['images'], val['annotations'], cats, p,
                              'val'))

    il_ann, il = None, None
    il_path = osp.join(ann_dir, 'lvis_v1_train_image_level.json')
    if plan.image_level_labels:
        il = _write_split(out_dir, 'train_image_level',
                          plan.image_level_labels, stream=3,
                          first_image_id=n_train + n_val + 1,
                          first_ann_id=len(train['annotations']) +
                          len(val['annotations']) + 1,
                          size_range=(0.18, 0.38), not_exhaustive_prob=0.0,
                          extra_image_fields=True, **common)
        il_ann = il_path
        _dump(il_ann, _lvis_file(il['images'], il['annotations'], cats, p,
                                 'train, image-level'))
    else:
        if osp.exists(il_path):
            os.remove(il_path)
        clear_images(osp.join(out_dir, 'train_image_level'))

    freq = {g: sum(c['frequency'] == g for c in cats) for g in 'rcf'}
    summary = {
        'data_root': osp.abspath(out_dir),
        'train_ann': osp.abspath(train_ann),
        'val_ann': osp.abspath(val_ann),
        'image_level_ann': osp.abspath(il_ann) if il_ann else None,
        'num_categories': k,
        'num_train_images': len(train['images']),
        'num_train_instances': len(train['annotations']),
        'num_val_images': len(val['images']),
        'num_val_instances': len(val['annotations']),
        'num_image_level_images': len(il['images']) if il else 0,
        'frequency_counts': freq,
        'train_image_counts': [c['image_count'] for c in cats],
        'occluded_instances': train['occluded'] + val['occluded'],
        'image_size': [h, w],
        'seconds': round(time.perf_counter() - start, 2),
        'params': p,
        'reused': False,
    }
    _dump(meta_path, {
        'generator': _GENERATOR,
        'version': GENERATOR_VERSION,
        'params': p,
        'summary': summary,
    })
    return summary


def _complete(out_dir: str, meta: Dict[str, Any]) -> bool:
    s = meta.get('summary', {})
    p = meta['params']
    checks = [('train2017', s.get('train_ann'), p['num_train_images']),
              ('val2017', s.get('val_ann'), p['num_val_images'])]
    if s.get('image_level_ann'):
        checks.append(('train_image_level', s['image_level_ann'],
                       s.get('num_image_level_images', -1)))
    for folder, ann, n in checks:
        ann = osp.join(out_dir, 'annotations', osp.basename(ann or ''))
        d = osp.join(out_dir, folder)
        if not osp.isfile(ann) or not osp.isdir(d):
            return False
        if count_images(d) != n:
            return False
    return True


def ensure_synthetic_lvis(out_dir: str,
                          progress: ProgressFn = None,
                          **kwargs: Any) -> Dict[str, Any]:
    """Reuse the set in ``out_dir`` if it was generated with these parameters.

    Takes the keyword arguments of :func:`make_synthetic_lvis`. The set is
    reused when ``out_dir/meta.json`` records the same generator version and
    parameters and every file is in place; otherwise it is regenerated, which
    needs a folder that is missing, empty or made by the generator (checked
    before anything is created, the lock file included). Concurrent callers
    on one machine are serialised with a lock file.

    Returns:
        The summary of :func:`make_synthetic_lvis`, with ``reused`` telling
        whether the existing set was kept (paths point into ``out_dir``).

    Raises:
        ValueError: an argument out of its range (nothing is created).
        FolderNotOwnedError: ``out_dir`` holds files the generator did not
            write (nothing is changed).
    """
    sig = inspect.signature(make_synthetic_lvis)
    unknown = set(kwargs) - set(sig.parameters)
    if unknown:
        raise TypeError(f'unknown arguments: {sorted(unknown)}')
    bound = sig.bind('', **kwargs)
    bound.apply_defaults()
    args = dict(bound.arguments)
    args.pop('out_dir')
    args.pop('progress')
    params = _normalise_params(**args)
    start = time.perf_counter()
    plan = plan_set(params)  # an infeasible plan fails before any write
    check_output_folder(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    with FolderLock(osp.join(out_dir, LOCK)):
        meta_path = osp.join(out_dir, 'meta.json')
        try:
            with open(meta_path) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            meta = None
        if (meta and meta.get('version') == GENERATOR_VERSION
                and meta.get('params') == params and _complete(out_dir, meta)):
            summary = dict(meta['summary'])
            root = osp.abspath(out_dir)
            summary['data_root'] = root
            for key in ('train_ann', 'val_ann', 'image_level_ann'):
                if summary.get(key):
                    summary[key] = osp.join(root, 'annotations',
                                            osp.basename(summary[key]))
            summary['reused'] = True
            summary['generation_seconds'] = summary.get('seconds')
            summary['seconds'] = round(time.perf_counter() - start, 2)
            if progress is not None:
                progress(f'[synthetic_lvis] reusing {root}')
            return summary
        return _generate(out_dir, params, progress, plan)


def load_class_names(ann_file: Union[str, os.PathLike]) -> Tuple[str, ...]:
    """Category names of an LVIS-format file in category-id order.

    That is MMDetection's label order, so the result can be passed as
    ``metainfo=dict(classes=...)`` to ``LVISV1Dataset``.
    """
    with open(ann_file) as f:
        cats = json.load(f)['categories']
    return tuple(c['name'] for c in sorted(cats, key=lambda c: c['id']))
