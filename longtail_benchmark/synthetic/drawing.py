"""Geometry and painting of one synthetic image.

A different mild background per image (grey-ish base colour, linear
gradient, Gaussian noise). Objects (small and medium: radius 5%-22% of the
shorter image side, random rotation and aspect; the shapes of
:data:`.categories.DIAGONAL_SHAPES` within 22.5 degrees of a diagonal) are
placed at random and
painted in order; a placement is rejected when it would hide more than 40% of
an earlier object or punch a hole into it (holes cannot be stored as COCO
polygons). The stored segmentation of an occluded object is its *visible*
part, computed exactly as a polygon difference (shapely), so it may be
several polygons. Pixels are painted from the pycocotools rasterisation of
the same (rounded) polygons, so masks are exact up to the one-pixel seam
where two polygons meet. A true ``not_exhaustive_category_ids`` entry is an
extra small instance of a present category painted under the annotated
objects and left unannotated, as in LVIS.
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_utils
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from .categories import (COLOURS, DIAGONAL_SHAPES, CategorySpec,
                         shape_polygon)

__all__ = ['CROWD_SIZE_RANGE', 'rasterise', 'DrawnImage', 'draw_image']

# extra head instances (``head_instances``): drawn smaller, as crowds are
CROWD_SIZE_RANGE = (0.04, 0.10)


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
    pts = shape_polygon(shape) * np.array([aspect, 1.0 / aspect])
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


def _near_diagonal(angle: float) -> float:
    """Map an angle in [0, 2 pi) to within pi/8 of the diagonal of its
    quadrant (a rod at such an angle fills at most 18% of its box)."""
    quarter = np.pi / 2
    k, rest = divmod(angle, quarter)
    return k * quarter + np.pi / 4 + 0.5 * (rest - np.pi / 4)


def _place(rng: np.random.Generator, spec: CategorySpec, placed: List[_Obj],
           label: int, h: int, w: int, size_range: Tuple[float, float],
           min_visible: float, attempts: int = 80) -> Optional[_Obj]:
    short = min(h, w)
    radius = short * math.exp(rng.uniform(*np.log(size_range)))
    for attempt in range(attempts):
        if attempt and attempt % 10 == 0:
            radius = max(radius * 0.8, short * size_range[0] * 0.6)
        angle = rng.uniform(0, 2 * np.pi)
        if spec.shape in DIAGONAL_SHAPES:  # same draws, squeezed
            angle = _near_diagonal(angle)
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


def rasterise(polys: Sequence[Sequence[float]], h: int, w: int) -> dict:
    """One RLE of the union of COCO polygons (pycocotools)."""
    return mask_utils.merge(mask_utils.frPyObjects([list(p) for p in polys],
                                                   h, w))


def _paint(img: np.ndarray, o: _Obj, spec: CategorySpec) -> None:
    h, w = img.shape[:2]
    mask = mask_utils.decode(rasterise([o.full.ravel()], h, w)).astype(bool)
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
class DrawnImage:
    """One drawn image: pixels, the stored (visible) polygons of each
    annotated object, how many are occluded, and the labels of the hidden
    unannotated instance (``not_exhaustive_category_ids``)."""
    image: np.ndarray  # uint8 RGB
    anns: List[Tuple[int, List[List[float]]]]  # (label, polygons)
    occluded: int
    not_exhaustive: List[int]


def draw_image(rng: np.random.Generator, labels: Sequence[int],
                specs: Sequence[CategorySpec], noise: np.ndarray, h: int,
                w: int,
                size_range: Tuple[float, float], min_visible: float,
                not_exhaustive_prob: float,
                small_labels: Sequence[int] = ()) -> DrawnImage:
    """Draw one image holding ``labels`` (and the small crowd instances
    ``small_labels``) from ``rng``; ``noise`` is the split's noise bank."""
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
    return DrawnImage(np.clip(img + 0.5, 0, 255).astype(np.uint8), anns,
                      occluded, sorted({o.label for o in hidden}))
