"""Mask/box area ratio of the instances of an LVIS/COCO-format set.

The ratio of an instance is ``mask area / box area``: 1 for an axis-aligned
rectangle, pi/4 for a disk, and small for thin, hollow or diagonal objects
(a rod at 45 degrees, a thin ring, an L), whose RoI holds mostly background.
Those are the objects that ratio-aware mask-proposal assignment and a
foreground/background-balanced mask loss are meant for (LVIS Challenge 2020
winner's report, Tan et al., 2020), so the synthetic benchmark reports how
many it has (:func:`mask_box_ratios`, :func:`ratio_summary`,
``tools/mask_box_ratio.py``).

Both areas are those of the pycocotools rasterisation of the stored
segmentation (``mode='raster'``: what a Mask R-CNN target is made from,
and what the set's ``area``/``bbox`` fields hold), or of the exact polygon
geometry (``mode='polygon'``: shapely union of the polygons and its bounds).
A category's shape is the last ``_``-separated word of its name (the
synthetic set names categories ``<colour>_<texture>_<shape>``).
"""
import json
import os
from typing import Any, Dict, List, Sequence, Union

import numpy as np
import pycocotools.mask as mask_utils
from shapely.geometry import Polygon
from shapely.ops import unary_union

__all__ = ['RATIO_PERCENTILES', 'RATIO_THRESHOLDS', 'mask_box_ratios',
           'ratio_summary', 'thinnest_categories', 'format_ratio_summary']

#: Percentiles reported for every group.
RATIO_PERCENTILES = (5, 10, 25, 50, 75, 90, 95)
#: Shares of instances below these ratios are reported.
RATIO_THRESHOLDS = (0.2, 0.3)


def _polys(seg: Any) -> List[List[float]]:
    if not isinstance(seg, list) or not seg or not all(
            isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
            for p in seg):
        raise ValueError('mask/box ratios need polygon segmentations (a list '
                         'of [x1, y1, x2, y2, ...] lists with >= 3 points), '
                         f'got {str(seg)[:80]}')
    return seg


def _ratio(seg: Any, h: int, w: int, mode: str) -> float:
    polys = _polys(seg)
    if mode == 'raster':
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
        area = float(mask_utils.area(rle))
        _, _, bw, bh = mask_utils.toBbox(rle)
    else:
        geom = unary_union([
            Polygon(np.asarray(p, float).reshape(-1, 2)).buffer(0)
            for p in polys
        ])
        area = geom.area
        x0, y0, x1, y1 = geom.bounds if not geom.is_empty else (0, 0, 0, 0)
        bw, bh = x1 - x0, y1 - y0
    box = float(bw) * float(bh)
    return area / box if box > 0 else float('nan')


def mask_box_ratios(ann: Union[str, os.PathLike, Dict[str, Any]],
                    mode: str = 'raster') -> Dict[str, Any]:
    """Mask/box area ratio of every annotated instance.

    Args:
        ann: an LVIS/COCO-format annotation file, or its loaded dict.
        mode: ``'raster'`` (pycocotools masks) or ``'polygon'`` (exact
            polygon areas and bounds).

    Returns:
        ``{'ratio': float array, 'category_id': int array, 'categories':
        {id: category dict}}``, one entry per annotation with a non-empty
        box (empty masks are skipped).
    """
    if mode not in ('raster', 'polygon'):
        raise ValueError(f"mode must be 'raster' or 'polygon', got {mode!r}")
    if not isinstance(ann, dict):
        with open(ann) as f:
            ann = json.load(f)
    sizes = {im['id']: (im['height'], im['width']) for im in ann['images']}
    ratios, cats = [], []
    for a in ann['annotations']:
        h, w = sizes[a['image_id']]
        r = _ratio(a['segmentation'], h, w, mode)
        if np.isfinite(r):
            ratios.append(r)
            cats.append(a['category_id'])
    return {
        'ratio': np.asarray(ratios, np.float64),
        'category_id': np.asarray(cats, np.int64),
        'categories': {c['id']: c for c in ann['categories']},
    }


def _describe(r: np.ndarray) -> Dict[str, Any]:
    out: Dict[str, Any] = {'n': int(r.size)}
    if r.size:
        out.update({f'p{q}': float(v) for q, v in
                    zip(RATIO_PERCENTILES,
                        np.percentile(r, RATIO_PERCENTILES))})
        out['mean'] = float(r.mean())
        out.update({f'below_{t}': float((r < t).mean())
                    for t in RATIO_THRESHOLDS})
    return out


def ratio_summary(ann: Union[str, os.PathLike, Dict[str, Any]],
                  mode: str = 'raster') -> Dict[str, Any]:
    """Distribution of the mask/box ratio, overall and by group.

    Returns:
        ``overall``, ``by_shape`` (last word of the category name),
        ``by_frequency`` (the categories' ``frequency`` field, r/c/f) and
        ``by_category`` (name -> statistics), each statistics dict holding
        ``n``, percentiles ``p5`` ... ``p95``, ``mean`` and the shares
        ``below_0.2`` / ``below_0.3``; ``thin_categories``: share of
        categories whose median ratio is below 0.3, overall and per
        frequency group.
    """
    d = mask_box_ratios(ann, mode)
    r, cid, cats = d['ratio'], d['category_id'], d['categories']
    names = np.array([cats[int(c)]['name'] for c in cid], dtype=object)
    shapes = np.array([n.rsplit('_', 1)[-1] for n in names], dtype=object)
    freqs = np.array([cats[int(c)].get('frequency', '?') for c in cid],
                     dtype=object)

    def groups(keys: np.ndarray) -> Dict[str, Dict[str, Any]]:
        return {str(k): _describe(r[keys == k]) for k in sorted(set(keys))}

    by_category = groups(names)
    cat_freq = {c['name']: c.get('frequency', '?') for c in cats.values()}
    thin: Dict[str, Any] = {}
    for g in ['all'] + sorted({cat_freq[n] for n in by_category}):
        meds = [s['p50'] for n, s in by_category.items()
                if g == 'all' or cat_freq[n] == g]
        thin[g] = {'categories': len(meds),
                   'thin': int(sum(m < 0.3 for m in meds))}
    return {
        'mode': mode,
        'overall': _describe(r),
        'by_shape': groups(shapes),
        'by_frequency': groups(freqs),
        'by_category': by_category,
        'thin_categories': thin,
    }


def _row(name: str, s: Dict[str, Any]) -> str:
    if not s['n']:
        return f'{name:<16}{0:>7}'
    qs = ''.join(f"{s[f'p{q}']:>6.2f}" for q in RATIO_PERCENTILES)
    below = ''.join(f"{100 * s[f'below_{t}']:>7.1f}"
                    for t in RATIO_THRESHOLDS)
    return f"{name:<16}{s['n']:>7}{qs}{below}"


def format_ratio_summary(summary: Dict[str, Any], thinnest: int = 10,
                         min_instances: int = 1) -> str:
    """The summary as a text table (shares in per cent), with the
    ``thinnest`` categories of lowest median ratio among those with at
    least ``min_instances`` instances."""
    qs = ''.join(f'{"p" + str(q):>6}' for q in RATIO_PERCENTILES)
    below = ''.join(f'{"<" + str(t) + "%":>7}' for t in RATIO_THRESHOLDS)
    head = f"{'group':<16}{'n':>7}{qs}{below}"
    lines = [f"mask/box area ratio ({summary['mode']})", head,
             _row('all', summary['overall'])]
    for title, key in (('frequency', 'by_frequency'), ('shape', 'by_shape')):
        lines.append(f'-- by {title}')
        lines += [_row(k, s) for k, s in summary[key].items()]
    thin = summary['thin_categories']
    lines.append('-- categories with median ratio < 0.3: ' + ', '.join(
        f"{g} {v['thin']}/{v['categories']}" for g, v in thin.items()))
    lines.append(f'-- {thinnest} thinnest categories (lowest median, '
                 f'>= {min_instances} instances)')
    lines += [f"{_row('', summary['by_category'][k])}  {k}"
              for k in thinnest_categories(summary, thinnest, min_instances)]
    return '\n'.join(lines)


def thinnest_categories(summary: Dict[str, Any], n: int = 10,
                        min_instances: int = 1) -> Sequence[str]:
    """Names of the ``n`` categories with the lowest median ratio (among
    those with at least ``min_instances`` instances)."""
    cats = [(s['p50'], k) for k, s in summary['by_category'].items()
            if s['n'] >= min_instances]
    return [k for _, k in sorted(cats)[:n]]

