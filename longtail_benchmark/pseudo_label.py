"""Pseudo-labels for self-training: a detector's confident detections on
unlabeled images, written as an LVIS-format annotation file.

Self-training is part of stage 1 of the LVIS Challenge 2020 winners' recipe
(Tan et al., "1st Place Solution of LVIS Challenge 2020: A Good Box is not a
Guarantee of a Good Mask", arXiv:2009.01559); the report gives no detail, so
every rule below is OURS:

* a detection is kept when its score is at least ``score_thr``;
* ``max_per_class`` (optional) keeps at most that many detections of a class
  over the whole set, the highest-scoring ones, so a frequent class cannot
  flood the pseudo-labels; ``max_per_image`` (optional) then caps each image,
  again by score;
* masks are written as polygons by default (outer contours, OpenCV
  ``findContours``; holes are lost, as in LVIS's own polygon annotations),
  which the plugin's ``polygon_ms_train_pipeline`` loads; ``'rle'`` keeps
  holes but needs a pipeline with ``poly2mask=True``. A detection whose mask
  is empty (or gives no polygon of three points) is dropped. ``area`` is the
  mask's pixel count (the box area for detections without masks);
* the categories are copied from a given annotation file (the ground truth's,
  so both files share the label order), with ``image_count`` and
  ``instance_count`` recomputed over the pseudo-labels; ``frequency`` is kept
  from that file: a class's LVIS group is a property of the labelled training
  set;
* every image is listed (also those without a kept detection; MMDetection's
  ``filter_empty_gt`` skips them in training), with empty
  ``neg_category_ids`` / ``not_exhaustive_category_ids`` (nothing is
  verified absent), and ``coco_url`` = ``file_name`` = the image path
  relative to the data root (MMDetection's ``LVISV1Dataset`` reads the path
  from ``coco_url``);
* each annotation keeps its detector ``score``.

Label ``k`` of the detector is the ``k``-th category of the categories
file, in the file's order, as MMDetection's LVIS datasets map them (the LVIS
API's ``get_cat_ids`` keeps the file's order; LVIS v1 lists them by id); the
written file keeps that order, so a model trained on it labels alike.
"""
import json
import os
import os.path as osp
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np

__all__ = [
    'IMAGE_EXTENSIONS', 'MASK_FORMATS', 'predictions_to_lvis',
    'images_from_folder', 'images_from_lvis', 'mask_to_polygons',
    'predict_images', 'write_pseudo_labels'
]

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                    '.webp')
MASK_FORMATS = ('polygon', 'rle')
_COCO_URL_PREFIX = 'http://images.cocodataset.org/'


def mask_to_polygons(mask: np.ndarray) -> List[List[float]]:
    """Outer contours of a binary mask as COCO polygons
    ``[[x1, y1, x2, y2, ...], ...]`` (at least three points each)."""
    import cv2
    m = np.ascontiguousarray(np.asarray(mask, dtype=np.uint8))
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        c = c.reshape(-1, 2)
        if len(c) >= 3:
            polys.append([float(v) for v in c.flatten()])
    return polys


def _mask_to_rle(mask: np.ndarray) -> dict:
    import pycocotools.mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask,
                                                         dtype=np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def _check_prediction(i: int, pred: Dict[str, Any], num_classes: int
                      ) -> Dict[str, np.ndarray]:
    out = {}
    for key in ('bboxes', 'scores', 'labels'):
        if key not in pred:
            raise KeyError(f'prediction {i} has no {key!r} (needs bboxes '
                           '[n, 4] x1y1x2y2, scores [n], labels [n], '
                           'optionally masks [n, H, W])')
        out[key] = np.asarray(pred[key])
    n = len(out['scores'])
    out['bboxes'] = out['bboxes'].reshape(-1, 4).astype(np.float64)
    if len(out['bboxes']) != n or len(out['labels']) != n:
        raise ValueError(f'prediction {i}: bboxes, scores and labels differ '
                         f'in length ({len(out["bboxes"])}, {n}, '
                         f'{len(out["labels"])})')
    if n and (out['labels'].min() < 0 or out['labels'].max() >= num_classes):
        raise ValueError(
            f'prediction {i}: labels must be in [0, {num_classes}) (one per '
            f'category of the categories file), got {out["labels"].min()}..'
            f'{out["labels"].max()}')
    if pred.get('masks') is not None:
        out['masks'] = np.asarray(pred['masks']).astype(bool)
        if len(out['masks']) != n:
            raise ValueError(f'prediction {i}: {len(out["masks"])} masks for '
                             f'{n} detections')
    return out


def predictions_to_lvis(images: Sequence[Dict[str, Any]],
                        predictions: Sequence[Dict[str, Any]],
                        categories: Sequence[Dict[str, Any]],
                        score_thr: float = 0.5,
                        max_per_class: Optional[int] = None,
                        max_per_image: Optional[int] = None,
                        mask_format: str = 'polygon') -> Dict[str, Any]:
    """LVIS-format pseudo-label file (a ``dict``) from detections.

    Args:
        images: one LVIS image entry per prediction (``id``, ``width``,
            ``height``, ``file_name``; ``coco_url`` is set to the path).
        predictions: per image ``bboxes`` ``[n, 4]`` (x1, y1, x2, y2),
            ``scores`` ``[n]``, ``labels`` ``[n]`` (0-based, the k-th
            category of ``categories``) and optionally ``masks`` ``[n, H, W]`` (bool).
        categories: the categories of an LVIS file (copied; counts
            recomputed).
        score_thr, max_per_class, max_per_image, mask_format: see the module
            docstring.
    """
    if len(images) != len(predictions):
        raise ValueError(f'{len(images)} images but {len(predictions)} '
                         'predictions')
    if not 0.0 <= float(score_thr) <= 1.0:
        raise ValueError(f'score_thr must be in [0, 1], got {score_thr}')
    for name, cap in (('max_per_class', max_per_class),
                      ('max_per_image', max_per_image)):
        if cap is not None and (int(cap) != cap or cap < 1):
            raise ValueError(f'{name} must be a positive integer or None, '
                             f'got {cap}')
    if mask_format not in MASK_FORMATS:
        raise ValueError(f'mask_format must be one of {MASK_FORMATS}, got '
                         f'{mask_format!r}')
    if not categories:
        raise ValueError('categories is empty: copy them from the ground '
                         "truth's annotation file")
    cats = [dict(c) for c in categories]  # label order = the file's order
    preds = [_check_prediction(i, p, len(cats))
             for i, p in enumerate(predictions)]

    # candidates (score, image index, detection index) above the threshold
    cand = [(float(s), i, j) for i, p in enumerate(preds)
            for j, s in enumerate(p['scores']) if s >= score_thr]
    # highest score first; ties by image then detection, so the file does
    # not depend on sort stability
    cand.sort(key=lambda t: (-t[0], t[1], t[2]))
    if max_per_class is not None:
        per_class: Dict[int, int] = {}
        kept = []
        for t in cand:
            k = int(preds[t[1]]['labels'][t[2]])
            if per_class.get(k, 0) < max_per_class:
                per_class[k] = per_class.get(k, 0) + 1
                kept.append(t)
        cand = kept
    if max_per_image is not None:
        per_image: Dict[int, int] = {}
        kept = []
        for t in cand:
            if per_image.get(t[1], 0) < max_per_image:
                per_image[t[1]] = per_image.get(t[1], 0) + 1
                kept.append(t)
        cand = kept
    cand.sort(key=lambda t: (t[1], -t[0], t[2]))

    out_images = []
    for img in images:
        path = img.get('file_name') or img.get('coco_url', '')
        out_images.append(
            dict(id=img['id'], width=int(img['width']),
                 height=int(img['height']), file_name=path, coco_url=path,
                 neg_category_ids=[], not_exhaustive_category_ids=[]))
    anns = []
    for score, i, j in cand:
        p = preds[i]
        x1, y1, x2, y2 = (float(v) for v in p['bboxes'][j])
        ann = dict(image_id=images[i]['id'],
                   category_id=cats[int(p['labels'][j])]['id'],
                   bbox=[x1, y1, x2 - x1, y2 - y1], score=score)
        if 'masks' in p:
            mask = p['masks'][j]
            area = float(mask.sum())
            if area == 0:
                continue
            if mask_format == 'polygon':
                seg = mask_to_polygons(mask)
                if not seg:
                    continue
            else:
                seg = _mask_to_rle(mask)
            ann['segmentation'] = seg
        else:
            area = max(x2 - x1, 0.0) * max(y2 - y1, 0.0)
        ann['area'] = area
        ann['id'] = len(anns) + 1
        anns.append(ann)

    imgs_of: Dict[int, set] = {c['id']: set() for c in cats}
    inst_of: Dict[int, int] = {c['id']: 0 for c in cats}
    for a in anns:
        imgs_of[a['category_id']].add(a['image_id'])
        inst_of[a['category_id']] += 1
    for c in cats:
        c['image_count'] = len(imgs_of[c['id']])
        c['instance_count'] = inst_of[c['id']]
    return dict(
        info=dict(description='pseudo-labels (longtail_benchmark.'
                  'pseudo_label)', score_thr=float(score_thr),
                  max_per_class=max_per_class, max_per_image=max_per_image),
        licenses=[],
        images=out_images,
        annotations=anns,
        categories=cats)


def images_from_folder(folder: str, data_root: str = '') -> List[dict]:
    """LVIS image entries of the images under ``folder`` (recursively,
    sorted by path; ids from 1), paths relative to ``data_root``."""
    from PIL import Image
    if not osp.isdir(folder):
        raise NotADirectoryError(f'{folder} is not a folder of images')
    paths = sorted(
        osp.join(d, f) for d, _, files in os.walk(folder) for f in files
        if f.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise FileNotFoundError(f'no image ({", ".join(IMAGE_EXTENSIONS)}) '
                                f'under {folder}')
    out = []
    for k, p in enumerate(paths, 1):
        with Image.open(p) as im:
            w, h = im.size
        rel = osp.relpath(p, data_root) if data_root else p
        out.append(dict(id=k, width=w, height=h, file_name=rel))
    return out


def images_from_lvis(ann_file: str) -> List[dict]:
    """The image entries of an LVIS-format file, with ``file_name`` the path
    MMDetection's ``LVISV1Dataset`` reads (``coco_url`` without the COCO
    host)."""
    with open(ann_file) as f:
        images = json.load(f)['images']
    out = []
    for img in images:
        path = img.get('coco_url') or img.get('file_name')
        if not path:
            raise KeyError(f'{ann_file}: image {img.get("id")} has neither '
                           'coco_url nor file_name')
        out.append(dict(id=img['id'], width=img['width'],
                        height=img['height'],
                        file_name=path.replace(_COCO_URL_PREFIX, '')))
    return out


def predict_images(config: str, checkpoint: str, paths: Iterable[str],
                   device: str = 'cpu') -> Iterator[Dict[str, np.ndarray]]:
    """Run a detector (MMDetection's ``init_detector`` /
    ``inference_detector``) on each image; yield numpy predictions."""
    from mmdet.apis import inference_detector, init_detector
    model = init_detector(config, checkpoint, device=device)
    for p in paths:
        inst = inference_detector(model, p).pred_instances
        pred = dict(bboxes=inst.bboxes.cpu().numpy(),
                    scores=inst.scores.cpu().numpy(),
                    labels=inst.labels.cpu().numpy())
        if 'masks' in inst:
            pred['masks'] = inst.masks.cpu().numpy()
        yield pred


def write_pseudo_labels(out: str, config: str, checkpoint: str,
                        categories_file: str,
                        images: Sequence[dict],
                        data_root: str = '',
                        device: str = 'cpu',
                        **kwargs) -> Dict[str, int]:
    """Label ``images`` with the detector and write the LVIS file ``out``;
    ``kwargs`` go to :func:`predictions_to_lvis`. Returns counts."""
    with open(categories_file) as f:
        categories = json.load(f)['categories']
    paths = [osp.join(data_root, img['file_name']) for img in images]
    thr = kwargs.get('score_thr', 0.5)
    preds = []
    for pred in predict_images(config, checkpoint, paths, device):
        # keep only what can pass the threshold (full-image masks are big)
        keep = np.asarray(pred['scores']) >= thr
        preds.append({k: np.asarray(v)[keep] for k, v in pred.items()})
    ann = predictions_to_lvis(images, preds, categories, **kwargs)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(ann, f)
    return dict(images=len(ann['images']),
                annotations=len(ann['annotations']),
                categories_with_labels=sum(
                    c['instance_count'] > 0 for c in ann['categories']))
