"""A small synthetic long-tailed instance-segmentation set in LVIS v1 format.

The set exists so that every long-tail method of the plugin can be trained and
compared for real on a laptop CPU, with nothing to download. It is written in
the exact LVIS v1 layout, so MMDetection's ``LVISV1Dataset`` reads it and the
LVIS API evaluates on it unchanged::

    out_dir/
      annotations/lvis_v1_train.json
      annotations/lvis_v1_val.json
      annotations/lvis_v1_train_image_level.json   (optional companion set)
      train2017/000000000001.jpg ...
      val2017/...
      train_image_level/...
      meta.json                                    (generation parameters)

Design
------
*Categories.* Every category is a combination of a shape, a colour and a
texture, named ``<colour>_<texture>_<shape>`` (e.g. ``red_striped_star``).
Shapes include thin ones (``bar``), concave ones (``star``, ``cross``,
``elbow``, ``tee``, ``arrow``, ``crescent``) and a ring. COCO polygons cannot
have holes, so the ring is a "C": an annulus with a slit, drawn as one simple
polygon. The frequent (head) categories are random distinct combinations; each
common and rare (tail) category is derived from one head category by changing
exactly one attribute, so it shares two of its three attributes with a class
that has 10-100 times more training data. Head-class negatives therefore
really suppress tail classes, which is the effect long-tail methods fix.

*Training counts (planned before any image is drawn).* Categories are split
into LVIS v1's group proportions (28% rare, 38% common, 34% frequent, largest
remainder rounding). Inside each group the number of training *images* of a
category falls from the top of the group's range to its bottom along a convex
curve in log space (``exp(log lo + (log hi - log lo) * (1 - t) ** 2)``):
a steep, piecewise power law with most categories near the bottom of each
range. Rare categories get 10..1 images, common ones 100..11 and frequent ones
``F``..101, where ``F`` is the largest top count that keeps the mean number
of distinct categories per image at ``max_objects - 0.8`` (4.2 with the
default of 5 objects). On small custom sizes the ranges cannot be met; the
counts are then scaled to what the images can hold and the frequency labels
follow the counts actually drawn. Images are then filled by a Havel-Hakimi
style assignment: each image gets a number of distinct categories (between
``min_objects`` and ``max_objects``, summing to the planned total) and the
categories, most frequent first, take the images with most free slots left
(random tie-break). The plan is therefore met exactly.

*Validation.* Mildly long-tailed by design: every category appears in at
least ``val_min_instances`` (5) validation images, and the remaining
validation slots (3.5 distinct categories per image on average) are shared in
proportion to the square root of the training image count. Validation uses
the training ``categories`` list (train ``frequency``/``image_count``).

*Images.* A different mild background per image (grey-ish base colour, linear
gradient, Gaussian noise). Objects (small and medium: radius 5%-22% of the
shorter image side, random rotation and aspect) are placed at random and
painted in order; a placement is rejected when it would hide more than 40% of
an earlier object or punch a hole into it (holes cannot be stored as COCO
polygons). The stored segmentation of an occluded object is its *visible*
part, computed exactly as a polygon difference (shapely), so it may be several
polygons. Pixels are painted from the pycocotools rasterisation of the same
(rounded) polygons, and ``area``/``bbox`` come from the pycocotools
rasterisation of the stored segmentation: masks are exact up to the one-pixel
seam where two polygons meet.

*Dense head (``head_instances``, off by default).* With one instance per
image-category pair the rare and common categories hold about a quarter of
the training instances, several times their share in LVIS v1 (where they
have at most 49,470 image-category pairs against 1.27M instances). With
``head_instances > 1`` every occurrence of a frequent category in an image
(train and val) gets on average ``head_instances - 1`` extra, smaller
instances (:func:`plan_crowds`, drawn after the image's other objects from
their own random stream), as LVIS's head categories come in groups; image
counts, frequency groups and the rest of the set are those of the default
set with the same seed. ``head_instances = 3`` brings the tail to 10% of
the training instances and about 10 instances per image (LVIS v1: 12.7).

*Federated labels.* ``neg_category_ids`` lists categories verified absent
from an image (``num_neg_per_image`` of them, categories confusable with a
present one - sharing two attributes - three times as likely). A small
fraction of images (2%) carries one ``not_exhaustive_category_ids`` entry and
it is true: an extra small instance of a category present in the image is
painted under the annotated objects and left unannotated, as in LVIS.

*Image-level companion set.* One object per image and one label per image
(``pos_category_ids`` = [label], plus its box and mask), category-balanced
(``image_level_per_class`` images per category), for methods with image-level
supervision. It uses the training categories list.

Everything is drawn from ``numpy.random.default_rng`` streams derived from
``seed``, one per split and one per image, so a seed gives byte-identical
JSON (and images); the image-level set never changes train or val.
"""
import json
import math
import os
import os.path as osp
import re
import time
from dataclasses import dataclass
from typing import (Any, Callable, Dict, List, Optional, Sequence, Tuple,
                    Union)

import cv2
import numpy as np
import pycocotools.mask as mask_utils
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

from ..utils.category_info import frequency_group

__all__ = [
    'GENERATOR_VERSION', 'COCO_URL_PREFIX', 'LVIS_GROUP_PROPORTIONS',
    'SHAPES', 'COLOURS', 'TEXTURES', 'CategorySpec', 'plan_train_image_counts',
    'build_category_specs', 'plan_crowds', 'make_synthetic_lvis',
    'ensure_synthetic_lvis',
    'load_class_names'
]

#: Bump when the output for given parameters changes (invalidates meta.json).
GENERATOR_VERSION = 1
# extra head instances (``head_instances``): drawn smaller, as crowds are
CROWD_SIZE_RANGE = (0.04, 0.10)
MAX_CROWD_PER_OCCURRENCE = 4
#: MMDetection's LVISV1Dataset strips this prefix from ``coco_url``.
COCO_URL_PREFIX = 'http://images.cocodataset.org/'
#: Fractions of rare / common / frequent categories in LVIS v1.
LVIS_GROUP_PROPORTIONS = (0.28, 0.38, 0.34)
#: LVIS group ranges of training image counts, (lo, hi) per group.
_GROUP_RANGES = {'r': (1, 10), 'c': (11, 100), 'f': (101, None)}

ProgressFn = Optional[Callable[[str], None]]

# ----------------------------------------------------------------- attributes
#: Colour name -> RGB.
COLOURS: Dict[str, Tuple[int, int, int]] = {
    'red': (220, 40, 40),
    'orange': (245, 140, 20),
    'yellow': (235, 220, 40),
    'lime': (150, 230, 40),
    'green': (30, 150, 50),
    'teal': (20, 150, 150),
    'cyan': (60, 215, 235),
    'blue': (40, 70, 220),
    'purple': (120, 50, 190),
    'magenta': (225, 50, 200),
    'pink': (250, 160, 190),
    'brown': (130, 75, 30),
    'white': (245, 245, 245),
    'black': (25, 25, 25),
}
#: Texture names (the pattern is drawn in the object's own frame).
TEXTURES: Tuple[str, ...] = ('plain', 'striped', 'checkered', 'dotted',
                             'gradient', 'halved')


def _circle(n: int = 32, rx: float = 1.0, ry: float = 1.0) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([rx * np.cos(t), ry * np.sin(t)], 1)


def _regular(n: int, phase: float = -np.pi / 2) -> np.ndarray:
    t = phase + np.arange(n) * 2 * np.pi / n
    return np.stack([np.cos(t), np.sin(t)], 1)


def _star(points: int = 5, inner: float = 0.42) -> np.ndarray:
    t = -np.pi / 2 + np.arange(2 * points) * np.pi / points
    rad = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([rad * np.cos(t), rad * np.sin(t)], 1)


def _c_ring(outer: float = 1.0, inner: float = 0.6,
            gap_deg: float = 50.0, n: int = 28) -> np.ndarray:
    """Annulus with a slit: one simple polygon (COCO has no holes)."""
    half = np.deg2rad(gap_deg / 2)
    t = np.linspace(half, 2 * np.pi - half, n)
    out = np.stack([outer * np.cos(t), outer * np.sin(t)], 1)
    inn = np.stack([inner * np.cos(t[::-1]), inner * np.sin(t[::-1])], 1)
    return np.concatenate([out, inn])


def _crescent() -> np.ndarray:
    geom = Point(0, 0).buffer(1.0, quad_segs=10).difference(
        Point(0.45, -0.05).buffer(0.8, quad_segs=10))
    return np.asarray(geom.exterior.coords)[:-1]


#: Shape name -> unit polygon (vertices within the unit disk, no holes).
SHAPES: Dict[str, np.ndarray] = {
    'disk': _circle(32),
    'ellipse': _circle(32, 1.0, 0.55),
    'triangle': _regular(3),
    'square': _regular(4, np.pi / 4),
    'diamond': np.array([[0, -1], [0.6, 0], [0, 1], [-0.6, 0]], float),
    'hexagon': _regular(6, 0.0),
    'star': _star(),
    'cross': np.array([[-0.28, -1], [0.28, -1], [0.28, -0.28], [1, -0.28],
                       [1, 0.28], [0.28, 0.28], [0.28, 1], [-0.28, 1],
                       [-0.28, 0.28], [-1, 0.28], [-1, -0.28],
                       [-0.28, -0.28]], float),
    'bar': np.array([[-1, -0.16], [1, -0.16], [1, 0.16], [-1, 0.16]], float),
    'elbow': np.array([[-0.7, -1], [-0.25, -1], [-0.25, 0.55], [0.8, 0.55],
                       [0.8, 1], [-0.7, 1]], float),
    'tee': np.array([[-0.9, -1], [0.9, -1], [0.9, -0.55], [0.22, -0.55],
                     [0.22, 1], [-0.22, 1], [-0.22, -0.55], [-0.9, -0.55]],
                    float),
    'ring': _c_ring(),
    'crescent': _crescent(),
    'arrow': np.array([[-1, -0.18], [0.2, -0.18], [0.2, -0.55], [1, 0],
                       [0.2, 0.55], [0.2, 0.18], [-1, 0.18]], float),
}
_ATTRS = ('shape', 'colour', 'texture')


def _attr_values(attr: str) -> List[str]:
    return list({'shape': SHAPES, 'colour': COLOURS,
                 'texture': TEXTURES}[attr])


@dataclass(frozen=True)
class CategorySpec:
    """Appearance of one category.

    Attributes:
        shape, colour, texture: the three attributes.
        parent: name of the head category this one was derived from (None for
            head categories).
        changed: the attribute in which it differs from ``parent``.
    """
    shape: str
    colour: str
    texture: str
    parent: Optional[str] = None
    changed: Optional[str] = None

    @property
    def name(self) -> str:
        return f'{self.colour}_{self.texture}_{self.shape}'

    @property
    def key(self) -> Tuple[str, str, str]:
        return (self.shape, self.colour, self.texture)

    def describe(self) -> str:
        text = f'a {self.colour} {self.texture} {self.shape}'
        if self.parent:
            text += (f'; looks like {self.parent} except for its '
                     f'{self.changed}')
        return text


# ----------------------------------------------------------------- planning
def _largest_remainder(weights: Sequence[float], total: int) -> np.ndarray:
    w = np.asarray(weights, float)
    raw = w / w.sum() * total if w.sum() > 0 else np.zeros_like(w)
    out = np.floor(raw).astype(np.int64)
    rest = int(total - out.sum())
    if rest > 0:
        order = np.argsort(-(raw - out), kind='stable')
        out[order[:rest]] += 1
    return out


def _group_sizes(num_classes: int,
                 proportions: Sequence[float]) -> Tuple[int, int, int]:
    n_r, n_c, n_f = _largest_remainder(proportions, num_classes)
    return int(n_r), int(n_c), int(n_f)


def _log_ramp(n: int, hi: float, lo: float, steepness: float) -> np.ndarray:
    """``n`` values falling from ``hi`` to ``lo`` (convex in log space)."""
    if n <= 0:
        return np.zeros(0)
    t = np.arange(n) / max(n - 1, 1)
    return np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) *
                  (1.0 - t)**steepness)


def plan_train_image_counts(
        num_classes: int,
        num_images: int,
        max_objects: int = 5,
        proportions: Sequence[float] = LVIS_GROUP_PROPORTIONS,
        steepness: float = 2.0,
        mean_categories: Optional[float] = None) -> np.ndarray:
    """Number of training images of each category, most frequent first.

    Args:
        num_classes: number of categories K.
        num_images: number of training images N.
        max_objects: most distinct categories in one image.
        proportions: fractions of rare, common and frequent categories.
        steepness: exponent of the within-group curve (1 = log-linear).
        mean_categories: target mean of distinct categories per image that
            bounds the frequent categories' top count (default
            ``max_objects - 0.8``).

    Returns:
        int64 array of length K, non-increasing, each in [1, N]; its sum is
        at least N and at most ``N * min(max_objects, K)``.
    """
    if num_classes < 1 or num_images < 1:
        raise ValueError('num_classes and num_images must be positive')
    n_r, n_c, n_f = _group_sizes(num_classes, proportions)
    hi_mean = float(min(max_objects, num_classes))
    if mean_categories is None:
        mean_categories = max(1.0, hi_mean - 0.8)
    target = num_images * min(mean_categories, hi_mean)
    tail = np.concatenate([_log_ramp(n_c, 100, 11, steepness),
                           _log_ramp(n_r, 10, 1, steepness)])

    def counts(top: float) -> np.ndarray:
        return np.concatenate([_log_ramp(n_f, top, 101, steepness), tail])

    lo_top, hi_top = 101.0, float(max(num_images, 101))
    if counts(lo_top).sum() <= target:
        for _ in range(60):  # largest top count that fits the target
            mid = (lo_top + hi_top) / 2
            if counts(mid).sum() <= target:
                lo_top = mid
            else:
                hi_top = mid
    raw = np.clip(counts(lo_top), 1, num_images)
    # Small custom sizes: scale what cannot fit (or is too little to give
    # every image one category); the groups then follow the drawn counts.
    for _ in range(50):
        total = raw.sum()
        if total > num_images * hi_mean + 1e-9:
            raw = np.clip(raw * (num_images * mean_categories / total), 1,
                          num_images)
        elif total < num_images:
            raw = np.clip(raw * (num_images / total) * 1.001, 1, num_images)
        else:
            break
    out = np.clip(np.floor(raw + 0.5), 1, num_images).astype(np.int64)
    # rounding may step just outside the bounds: fix on the largest counts
    cap = int(num_images * hi_mean)
    while out.sum() > cap:
        out[int(np.argmax(out))] -= 1
    while out.sum() < num_images:
        j = int(np.argmin(np.where(out < num_images, out, 1 << 60)))
        out[j] += 1
    return np.sort(out)[::-1].copy()


def build_category_specs(num_classes: int, num_head: int,
                         rng: np.random.Generator) -> List[CategorySpec]:
    """Category appearances in planned-frequency order (head first).

    The first ``num_head`` categories are distinct random combinations; each
    later one is a random head category with exactly one attribute changed
    (never repeating a combination).
    """
    values = {a: _attr_values(a) for a in _ATTRS}
    combos = [(s, c, t) for s in values['shape'] for c in values['colour']
              for t in values['texture']]
    if num_classes > len(combos):
        raise ValueError(f'at most {len(combos)} categories can be made '
                         f'(asked for {num_classes})')
    num_head = max(1, min(num_head, num_classes))
    order = rng.permutation(len(combos))
    specs = [CategorySpec(*combos[i]) for i in order[:num_head]]
    used = {s.key for s in specs}
    while len(specs) < num_classes:
        spec = None
        for _ in range(200):
            parent = specs[int(rng.integers(num_head))]
            attr = _ATTRS[int(rng.integers(3))]
            options = [v for v in values[attr] if v != getattr(parent, attr)]
            rng.shuffle(options)
            for v in options:
                key = dict(zip(_ATTRS, parent.key))
                key[attr] = v
                cand = (key['shape'], key['colour'], key['texture'])
                if cand not in used:
                    spec = CategorySpec(*cand, parent=parent.name,
                                        changed=attr)
                    break
            if spec is not None:
                break
        if spec is None:  # every neighbour of every head is taken
            free = [c for c in combos if c not in used]
            spec = CategorySpec(*free[int(rng.integers(len(free)))])
        specs.append(spec)
        used.add(spec.key)
    return specs


def _split_total(total: int, n: int, lo: int, hi: int,
                 rng: np.random.Generator) -> np.ndarray:
    """``n`` integers in [lo, hi] summing to ``total`` (random)."""
    d = rng.integers(lo, hi + 1, n)
    for _ in range(10000):
        diff = int(total - d.sum())
        if diff == 0:
            break
        cand = np.nonzero(d < hi)[0] if diff > 0 else np.nonzero(d > lo)[0]
        pick = rng.choice(cand, size=min(abs(diff), len(cand)), replace=False)
        d[pick] += 1 if diff > 0 else -1
    assert d.sum() == total
    return d


def _assign(counts: np.ndarray, num_images: int, min_objects: int,
            max_objects: int, rng: np.random.Generator) -> List[List[int]]:
    """Categories of each image: category k in exactly counts[k] images."""
    total = int(counts.sum())
    hi = min(max_objects, len(counts))
    lo = max(1, min(min_objects, total // num_images, hi))
    if not num_images * lo <= total <= num_images * hi:
        raise ValueError(f'{total} image-category pairs do not fit '
                         f'{num_images} images with {lo}-{hi} categories')
    cap = _split_total(total, num_images, lo, hi, rng)
    members: List[List[int]] = [[] for _ in range(num_images)]
    for k in np.argsort(-counts, kind='stable'):
        n = int(counts[k])
        chosen = np.lexsort((rng.random(num_images), -cap))[:n]
        if cap[chosen[-1]] <= 0:
            raise RuntimeError('category assignment failed (infeasible plan)')
        cap[chosen] -= 1
        for i in chosen:
            members[int(i)].append(int(k))
    return members


def _val_counts(train_counts: np.ndarray, num_images: int, min_count: int,
                max_objects: int) -> np.ndarray:
    k = len(train_counts)
    hi = min(max_objects, k)
    if num_images * hi < k * min_count or num_images < min_count:
        raise ValueError(
            f'{num_images} validation images cannot hold {min_count} images '
            f'of each of {k} categories with at most {hi} per image: use at '
            f'least {math.ceil(max(k * min_count / hi, min_count))}')
    total = int(min(num_images * hi, max(k * min_count,
                                         round(num_images * 3.5))))
    total = max(total, num_images)
    extra = _largest_remainder(np.sqrt(train_counts.astype(float)),
                               total - k * min_count)
    out = np.minimum(min_count + extra, num_images)
    while out.sum() < total:  # only when capped at num_images
        out[int(np.argmin(out))] += 1
    return out


# ----------------------------------------------------------------- drawing
@dataclass
class _Obj:
    label: int  # index into the specs list
    full: np.ndarray  # (n, 2) polygon, rounded
    geom: BaseGeometry
    vis: BaseGeometry
    center: Tuple[float, float]
    radius: float
    angle: float
    jitter: np.ndarray


def _instance_polygon(shape: str, radius: float, angle: float, aspect: float,
                      rng: np.random.Generator, h: int,
                      w: int) -> Tuple[np.ndarray, Tuple[float, float]]:
    pts = SHAPES[shape] * np.array([aspect, 1.0 / aspect])
    c, s = math.cos(angle), math.sin(angle)
    pts = pts @ np.array([[c, s], [-s, c]]) * radius
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    lo_x, hi_x = 1.0 - x0, w - 1.0 - x1
    lo_y, hi_y = 1.0 - y0, h - 1.0 - y1
    tx = rng.uniform(lo_x, hi_x) if hi_x > lo_x else w / 2
    ty = rng.uniform(lo_y, hi_y) if hi_y > lo_y else h / 2
    return np.round(pts + (tx, ty), 2), (tx, ty)


def _parts(geom: BaseGeometry, min_area: float) -> Optional[List[Polygon]]:
    """Polygons of ``geom`` above ``min_area``; None if one has a hole."""
    if geom.is_empty:
        return []
    if geom.geom_type == 'Polygon':
        polys = [geom]
    else:
        polys = [g for g in getattr(geom, 'geoms', [])
                 if g.geom_type == 'Polygon']
    out = [p for p in polys if p.area >= min_area]
    if any(len(p.interiors) for p in out):
        return None
    return out


def _place(rng: np.random.Generator, spec: CategorySpec, placed: List[_Obj],
           label: int, h: int, w: int, size_range: Tuple[float, float],
           min_visible: float, attempts: int = 80) -> Optional[_Obj]:
    short = min(h, w)
    radius = short * math.exp(rng.uniform(*np.log(size_range)))
    for attempt in range(attempts):
        if attempt and attempt % 10 == 0:
            radius = max(radius * 0.8, short * size_range[0] * 0.6)
        angle = rng.uniform(0, 2 * np.pi)
        aspect = rng.uniform(0.85, 1.15)
        poly, center = _instance_polygon(spec.shape, radius, angle, aspect,
                                         rng, h, w)
        geom = Polygon(poly)
        if not geom.is_valid:
            geom = geom.buffer(0)
        if geom.area < 12:
            continue
        updates = []
        ok = True
        for o in placed:
            if not o.vis.intersects(geom):
                continue
            vis = o.vis.difference(geom)
            parts = _parts(vis, 2.0)
            if (parts is None or not parts or
                    sum(p.area for p in parts) < min_visible * o.geom.area):
                ok = False
                break
            updates.append((o, vis))
        if not ok:
            continue
        for o, vis in updates:
            o.vis = vis
        return _Obj(label, poly, geom, geom, center, radius, angle,
                    rng.uniform(-8, 8, 3))
    return None


def _texture(kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Fraction of the secondary colour at object-frame coords (u, v)."""
    if kind == 'plain':
        return np.zeros_like(u)
    if kind == 'striped':
        return (np.floor(u * 2.5) % 2).astype(np.float32)
    if kind == 'checkered':
        return ((np.floor(u * 2.2) + np.floor(v * 2.2)) % 2).astype(
            np.float32)
    if kind == 'dotted':
        du, dv = (u % 0.6) - 0.3, (v % 0.6) - 0.3
        return (du * du + dv * dv < 0.17**2).astype(np.float32)
    if kind == 'gradient':
        return np.clip((u + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)
    if kind == 'halved':
        return (v > 0).astype(np.float32)
    raise KeyError(kind)


def _secondary(rgb: np.ndarray) -> np.ndarray:
    lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    target = 255.0 if lum < 110 else 0.0
    return rgb + 0.55 * (target - rgb)


def _rasterise(polys: Sequence[Sequence[float]], h: int, w: int) -> dict:
    return mask_utils.merge(mask_utils.frPyObjects([list(p) for p in polys],
                                                   h, w))


def _paint(img: np.ndarray, o: _Obj, spec: CategorySpec) -> None:
    h, w = img.shape[:2]
    mask = mask_utils.decode(_rasterise([o.full.ravel()], h, w)).astype(bool)
    x0, y0 = np.floor(o.full.min(0)).astype(int).clip(0)
    x1, y1 = np.ceil(o.full.max(0)).astype(int) + 1
    x1, y1 = min(x1, w), min(y1, h)
    m = mask[y0:y1, x0:x1]
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] + (0.5 - o.center[0])
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] + (0.5 - o.center[1])
    c, s = math.cos(o.angle), math.sin(o.angle)
    u = (dx * c + dy * s) / o.radius  # inverse of the instance rotation
    v = (-dx * s + dy * c) / o.radius
    p = _texture(spec.texture, u, v)[..., None]
    base = np.array(COLOURS[spec.colour], np.float32)
    primary = np.clip(base + o.jitter, 0, 255)
    secondary = np.clip(_secondary(base) + o.jitter, 0, 255)
    colour = primary * (1 - p) + secondary * p
    region = img[y0:y1, x0:x1]
    region[m] = colour[m]


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = rng.uniform(80, 170) + rng.uniform(-15, 15, 3)
    phi = rng.uniform(0, 2 * np.pi)
    amp = rng.uniform(8, 35)
    xx = np.arange(w, dtype=np.float32)[None, :] - w / 2
    yy = np.arange(h, dtype=np.float32)[:, None] - h / 2
    grad = amp * (xx * math.cos(phi) + yy * math.sin(phi)) / (max(h, w) / 2)
    return (base[None, None, :] + grad[..., None]).astype(np.float32)


@dataclass
class _Drawn:
    image: np.ndarray  # uint8 RGB
    anns: List[Tuple[int, List[List[float]]]]  # (label, polygons)
    occluded: int
    not_exhaustive: List[int]


def _draw_image(rng: np.random.Generator, labels: Sequence[int],
                specs: Sequence[CategorySpec], noise: np.ndarray, h: int,
                w: int,
                size_range: Tuple[float, float], min_visible: float,
                not_exhaustive_prob: float,
                small_labels: Sequence[int] = ()) -> _Drawn:
    img = _background(rng, h, w)
    placed: List[_Obj] = []
    sizes = [size_range] * len(labels) + [CROWD_SIZE_RANGE] * len(small_labels)
    for label, sizes_k in zip(list(labels) + list(small_labels), sizes):
        obj = None
        for _ in range(4):  # practically always succeeds at the first try
            obj = _place(rng, specs[label], placed, label, h, w, sizes_k,
                         min_visible)
            if obj is not None:
                break
        if obj is None:
            raise RuntimeError(
                f'could not place {len(labels) + len(small_labels)} objects '
                f'in a {h}x{w} image; '
                'use fewer objects or a larger image')
        placed.append(obj)
    hidden: List[_Obj] = []
    if placed and rng.random() < not_exhaustive_prob:
        # a small extra instance of a present category, left unannotated
        label = placed[int(rng.integers(len(placed)))].label
        small = (size_range[0], size_range[0] * 1.3)
        for _ in range(20):
            o = _place(rng, specs[label], [], label, h, w, small, 1.0, 1)
            if o is not None and not any(o.geom.intersects(p.geom)
                                         for p in placed):
                hidden.append(o)
                break
    for o in hidden + placed:
        _paint(img, o, specs[o.label])
    # pixel noise: a random window of the split's noise bank (drawing
    # fresh normals for every image costs as much as the rest of it)
    oy = int(rng.integers(noise.shape[0] - h + 1))
    ox = int(rng.integers(noise.shape[1] - w + 1))
    img += rng.uniform(2.0, 6.0) * noise[oy:oy + h, ox:ox + w]
    anns, occluded = [], 0
    for o in placed:
        if o.vis is o.geom:
            polys = [o.full.ravel().tolist()]
        else:
            occluded += 1
            parts = _parts(o.vis, 2.0) or []
            polys = [
                np.round(np.asarray(p.exterior.coords)[:-1], 2).ravel()
                .tolist() for p in parts
            ]
        anns.append((o.label, polys))
    return _Drawn(np.clip(img + 0.5, 0, 255).astype(np.uint8), anns, occluded,
                  sorted({o.label for o in hidden}))


# ----------------------------------------------------------------- writing
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


_IMAGE_NAME = re.compile(r'^\d{12}\.(jpg|png)$')


def _clear_images(folder: str, keep: Sequence[str] = ()) -> None:
    """Remove images this generator wrote (and nothing else) but ``keep``.
    """
    if osp.isdir(folder):
        keep = set(keep)
        for name in os.listdir(folder):
            if _IMAGE_NAME.match(name) and name not in keep:
                os.remove(osp.join(folder, name))


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
    _clear_images(osp.join(out_dir, folder), [
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
        drawn = _draw_image(rng, labels, specs, noise, h, w, size_range,
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
            rle = _rasterise(polys, h, w)
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
            'contributor': 'longtail_plugin.datasets.synthetic_lvis',
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


def _normalise_params(seed: int, num_classes: int, num_train_images: int,
                      num_val_images: int, image_size: Sequence[int],
                      image_level: bool, image_level_per_class: int,
                      min_objects: int, max_objects: int,
                      val_min_instances: int, num_neg_per_image: int,
                      not_exhaustive_prob: float,
                      image_format: str,
                      head_instances: float = 1.0) -> Dict[str, Any]:
    fmt = image_format.lower().lstrip('.')
    fmt = 'jpg' if fmt == 'jpeg' else fmt
    if fmt not in ('jpg', 'png'):
        raise ValueError(f'image_format must be jpg or png, not {fmt!r}')
    h, w = (int(x) for x in image_size)
    if min(h, w) < 32:
        raise ValueError('images must be at least 32x32')
    if not 1 <= min_objects <= max_objects:
        raise ValueError('need 1 <= min_objects <= max_objects')
    if not 1.0 <= float(head_instances) <= 1.0 + MAX_CROWD_PER_OCCURRENCE:
        raise ValueError(
            'head_instances (mean instances of a frequent category in an '
            f'image that has it) must be in [1, '
            f'{1 + MAX_CROWD_PER_OCCURRENCE}], got {head_instances}')
    return {
        'seed': int(seed),
        'num_classes': int(num_classes),
        'num_train_images': int(num_train_images),
        'num_val_images': int(num_val_images),
        'image_size': [h, w],
        'image_level': bool(image_level),
        'image_level_per_class': int(image_level_per_class),
        'min_objects': int(min_objects),
        'max_objects': int(max_objects),
        'val_min_instances': int(val_min_instances),
        'num_neg_per_image': int(num_neg_per_image),
        'not_exhaustive_prob': float(not_exhaustive_prob),
        'image_format': fmt,
        'head_instances': float(head_instances),
    }


def _with_duplicates(members: List[List[int]], min_objects: int,
                     max_objects: int, dup_prob: float,
                     rng: np.random.Generator) -> List[List[int]]:
    """Per image painting order: its categories plus a few second instances.
    """
    out = []
    for cats in members:
        labels = list(cats)
        while len(labels) < min_objects:
            labels.append(cats[int(rng.integers(len(cats)))])
        if len(labels) < max_objects and rng.random() < dup_prob:
            labels.append(cats[int(rng.integers(len(cats)))])
        out.append([labels[j] for j in rng.permutation(len(labels))])
    return out


def plan_crowds(members: List[List[int]], head: np.ndarray,
                head_instances: float,
                rng: np.random.Generator) -> List[List[int]]:
    """Extra small instances of the frequent categories of each image.

    Every occurrence of a frequent (head) category in an image gets
    ``Poisson(head_instances - 1)`` extra instances, at most
    ``MAX_CROWD_PER_OCCURRENCE``, so a head category has on average about
    ``head_instances`` instances in each image that contains it. Rare and
    common categories get none, and image counts (hence the frequency groups)
    do not change. This shifts the instance share towards the head as in
    LVIS v1, where rare and common categories (at most 10 x 337 + 100 x 461 =
    49,470 image-category pairs) are a few per cent of its 1.27M training
    instances; with one instance per occurrence they are about a quarter of
    the default synthetic set's. ``head_instances == 1`` draws nothing.

    Args:
        members: categories of each image (indices into ``head``).
        head: bool per category, True for frequent ones.
        head_instances: mean instances per head occurrence (>= 1).
        rng: random generator (used only when ``head_instances > 1``).

    Returns:
        Per image, the category of every extra instance.
    """
    if head_instances <= 1.0:
        return [[] for _ in members]
    out = []
    for cats in members:
        extra: List[int] = []
        for k in cats:
            if head[k]:
                n = min(int(rng.poisson(head_instances - 1.0)),
                        MAX_CROWD_PER_OCCURRENCE)
                extra.extend([k] * n)
        out.append(extra)
    return out


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
                        progress: ProgressFn = None) -> Dict[str, Any]:
    """Generate the synthetic long-tailed LVIS v1-format set into ``out_dir``.

    Args:
        out_dir: output folder (created; images this generator wrote before
            are replaced, nothing else is removed).
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
        progress: called with progress messages (e.g. ``print``).

    Returns:
        Summary dict: ``data_root``, ``train_ann``, ``val_ann``,
        ``image_level_ann`` (or None), image/instance counts per split,
        ``frequency_counts`` ({'r', 'c', 'f'} -> number of categories),
        ``train_image_counts`` (by category id order), ``occluded_instances``,
        ``seconds``, ``params`` and ``reused`` (False).
    """
    params = _normalise_params(seed, num_classes, num_train_images,
                               num_val_images, image_size, image_level,
                               image_level_per_class, min_objects,
                               max_objects, val_min_instances,
                               num_neg_per_image, not_exhaustive_prob,
                               image_format, head_instances)
    return _generate(out_dir, params, progress)


def _generate(out_dir: str, params: Dict[str, Any],
              progress: ProgressFn) -> Dict[str, Any]:
    start = time.perf_counter()
    p = params
    seed, k = p['seed'], p['num_classes']
    h, w = p['image_size']
    meta_path = osp.join(out_dir, 'meta.json')
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    if osp.exists(meta_path):
        os.remove(meta_path)  # the set is incomplete until it is rewritten

    rng = np.random.default_rng([seed, 0])
    train_counts = plan_train_image_counts(k, p['num_train_images'],
                                           p['max_objects'])
    val_counts = _val_counts(train_counts, p['num_val_images'],
                             p['val_min_instances'], p['max_objects'])
    head = np.array([frequency_group(int(c)) == 'f' for c in train_counts])
    specs = build_category_specs(k, max(int(head.sum()), 1), rng)
    # LVIS numbers its categories in alphabetical order of their names
    order = sorted(range(k), key=lambda i: specs[i].name)
    cat_ids = [0] * k
    for new_id, i in enumerate(order, 1):
        cat_ids[i] = new_id

    # a little smaller objects in busy images keep occlusion moderate
    size_range = (0.05, 0.22)
    min_visible = 0.6
    rng_train = np.random.default_rng([seed, 1])
    train_members = _assign(train_counts, p['num_train_images'],
                            p['min_objects'], p['max_objects'], rng_train)
    train_labels = _with_duplicates(train_members, p['min_objects'],
                                    p['max_objects'], 0.25, rng_train)
    rng_val = np.random.default_rng([seed, 2])
    val_members = _assign(val_counts, p['num_val_images'], p['min_objects'],
                          p['max_objects'], rng_val)
    val_labels = _with_duplicates(val_members, p['min_objects'],
                                  p['max_objects'], 0.25, rng_val)
    # own streams: the default set (head_instances = 1) is unchanged
    train_crowds = plan_crowds(train_members, head, p['head_instances'],
                               np.random.default_rng([seed, 4]))
    val_crowds = plan_crowds(val_members, head, p['head_instances'],
                             np.random.default_rng([seed, 5]))

    common = dict(specs=specs, cat_ids=cat_ids, seed=seed, params=p,
                  min_visible=min_visible, progress=progress)
    n_train, n_val = p['num_train_images'], p['num_val_images']
    train = _write_split(out_dir, 'train2017', train_labels, stream=1,
                         first_image_id=1, first_ann_id=1,
                         size_range=size_range,
                         not_exhaustive_prob=p['not_exhaustive_prob'],
                         crowds=train_crowds, **common)
    val = _write_split(out_dir, 'val2017', val_labels, stream=2,
                       first_image_id=n_train + 1,
                       first_ann_id=len(train['annotations']) + 1,
                       size_range=size_range,
                       not_exhaustive_prob=p['not_exhaustive_prob'],
                       crowds=val_crowds, **common)
    cats = _category_dicts(specs, order, train['annotations'], cat_ids)
    ann_dir = osp.join(out_dir, 'annotations')
    train_ann = osp.join(ann_dir, 'lvis_v1_train.json')
    val_ann = osp.join(ann_dir, 'lvis_v1_val.json')
    _dump(train_ann, _lvis_file(train['images'], train['annotations'], cats,
                                p, 'train'))
    _dump(val_ann, _lvis_file(val['images'], val['annotations'], cats, p,
                              'val'))

    il_ann, il = None, None
    il_path = osp.join(ann_dir, 'lvis_v1_train_image_level.json')
    if p['image_level'] and p['image_level_per_class'] > 0:
        rng_il = np.random.default_rng([seed, 3])
        labels = np.repeat(np.arange(k), p['image_level_per_class'])
        labels = [[int(x)] for x in labels[rng_il.permutation(len(labels))]]
        il = _write_split(out_dir, 'train_image_level', labels, stream=3,
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
        _clear_images(osp.join(out_dir, 'train_image_level'))

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
        'generator': __name__,
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
        if sum(bool(_IMAGE_NAME.match(f)) for f in os.listdir(d)) != n:
            return False
    return True


def ensure_synthetic_lvis(out_dir: str,
                          progress: ProgressFn = None,
                          **kwargs: Any) -> Dict[str, Any]:
    """Reuse the set in ``out_dir`` if it was generated with these parameters.

    Takes the keyword arguments of :func:`make_synthetic_lvis`. The set is
    reused when ``out_dir/meta.json`` records the same generator version and
    parameters and every file is in place; otherwise it is regenerated.
    Concurrent callers on one machine are serialised with a lock file.

    Returns:
        The summary of :func:`make_synthetic_lvis`, with ``reused`` telling
        whether the existing set was kept (paths point into ``out_dir``).
    """
    import inspect
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
    os.makedirs(out_dir, exist_ok=True)
    with _Lock(osp.join(out_dir, '.lock')):
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
        return _generate(out_dir, params, progress)


class _Lock:
    """Advisory exclusive lock on a file (no-op where fcntl is missing)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: Optional[int] = None

    def __enter__(self) -> '_Lock':
        try:
            import fcntl
        except ImportError:  # pragma: no cover (Windows)
            return self
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            import fcntl
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def load_class_names(ann_file: Union[str, os.PathLike]) -> Tuple[str, ...]:
    """Category names of an LVIS-format file in category-id order.

    That is MMDetection's label order, so the result can be passed as
    ``metainfo=dict(classes=...)`` to ``LVISV1Dataset``.
    """
    with open(ann_file) as f:
        cats = json.load(f)['categories']
    return tuple(c['name'] for c in sorted(cats, key=lambda c: c['id']))
