"""Categories of the synthetic set: what each one looks like.

Every category is a combination of a shape, a colour and a texture, named
``<colour>_<texture>_<shape>`` (e.g. ``red_striped_star``). Shapes include thin
ones (``bar``), concave ones (``star``, ``cross``, ``elbow``, ``tee``,
``arrow``, ``crescent``) and a ring; COCO polygons cannot have holes, so the
ring is a "C": an annulus with a slit, drawn as one simple polygon. The
frequent (head) categories are random distinct combinations; each common and
rare (tail) category is derived from one head category by changing exactly
one attribute (:func:`build_category_specs`), so it shares two of its three
attributes with a class that has 10-100 times more training data.

*Thin shapes (``thin_shapes``, off by default).* The default shapes are
mostly compact: in the default set 6% of the instances have a mask/box area
ratio below 0.3 and 3 of 100 categories a median below 0.3 (see
:mod:`.stats`). With ``thin_shapes`` the vocabulary also holds
:data:`THIN_SHAPES`, seven thin, hollow or diagonal shapes (a rod and a thin
square frame drawn near a diagonal, a thin C-ring, a thin crescent, an L, a
V and a Z: strokes 0.14-0.16 radius wide, the crescent at most 0.28) whose
mask/box area ratio is below 0.25 at every rotation, and every third
category (so a third of each frequency group) has one of them.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from shapely.geometry import LineString, Point

__all__ = ['SHAPES', 'THIN_SHAPES', 'DIAGONAL_SHAPES', 'COLOURS', 'TEXTURES',
           'CategorySpec', 'shape_names', 'shape_polygon',
           'build_category_specs']

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


def _stroke(centre: Sequence[Tuple[float, float]], half_width: float,
            join_style: int = 2) -> np.ndarray:
    """A thin stroke along a polyline (flat ends; mitred corners by
    default), scaled so that its farthest vertex is at radius 1 and its
    half-width is about ``half_width``."""
    pts = np.asarray(centre, float)
    for _ in range(3):
        geom = LineString(pts).buffer(half_width, cap_style=2,
                                      join_style=join_style, mitre_limit=10)
        poly = np.asarray(geom.exterior.coords)[:-1]
        reach = np.hypot(poly[:, 0], poly[:, 1]).max()
        pts = pts / reach
    return poly / reach


def _arc(radius: float, deg0: float, deg1: float, n: int) -> np.ndarray:
    t = np.deg2rad(np.linspace(deg0, deg1, n))
    return np.stack([radius * np.cos(t), radius * np.sin(t)], 1)


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
#: Thin, hollow or diagonal shapes added by ``thin_shapes`` (mask/box area
#: ratio below 0.25 at every rotation they are drawn at; names are single
#: words).
THIN_SHAPES: Dict[str, np.ndarray] = {
    'rod': _stroke([(-1, 0), (1, 0)], 0.08),
    'hoop': _stroke(_arc(1.0, 20, 340, 40), 0.08, join_style=1),
    'sickle': np.asarray(
        Point(0, 0).buffer(1.0, quad_segs=16).difference(
            Point(0.2, 0).buffer(0.92, quad_segs=16)).exterior.coords)[:-1],
    'corner': _stroke([(-1, 1), (-1, -1), (1, -1)], 0.08),
    'chevron': _stroke([(-1, 1), (1, 0), (-1, -1)], 0.08),
    'frame': _stroke([(-0.6, -1), (-1, -1), (-1, 1), (1, 1), (1, -1),
                      (-0.3, -1)], 0.07),
    'zigzag': _stroke([(-1, 0.8), (0.45, 0.8), (-0.45, -0.8), (1, -0.8)],
                      0.07),
}
#: Shapes drawn within 22.5 degrees of a diagonal instead of at any angle
#: (axis-aligned, their box would be nearly filled).
DIAGONAL_SHAPES = frozenset({'rod', 'frame'})
_ATTRS = ('shape', 'colour', 'texture')


def shape_names(thin_shapes: bool = False) -> List[str]:
    """The shape vocabulary: :data:`SHAPES`, then :data:`THIN_SHAPES` when
    ``thin_shapes``."""
    return list(SHAPES) + (list(THIN_SHAPES) if thin_shapes else [])


def shape_polygon(name: str) -> np.ndarray:
    """Unit polygon of a shape of either vocabulary."""
    return SHAPES[name] if name in SHAPES else THIN_SHAPES[name]


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



def _thin_slot(index: int) -> bool:
    """With ``thin_shapes``, category ``index`` (planned-frequency order) is
    thin iff this holds: every third one, so each frequency group, a
    contiguous run of that order, is a third thin (up to one category)."""
    return index % 3 == 1


def build_category_specs(num_classes: int, num_head: int,
                         rng: np.random.Generator,
                         thin_shapes: bool = False) -> List[CategorySpec]:
    """Category appearances in planned-frequency order (head first).

    The first ``num_head`` categories are distinct random combinations; each
    later one is a random head category with exactly one attribute changed
    (never repeating a combination). ``thin_shapes`` adds
    :data:`THIN_SHAPES` to the shapes and makes every third category (in
    this order, so a third of each frequency group) one of them, the others
    not; without it the result is that of the default vocabulary, draw for
    draw.
    """
    values = {'shape': shape_names(thin_shapes), 'colour': list(COLOURS),
              'texture': list(TEXTURES)}
    combos = [(s, c, t) for s in values['shape'] for c in values['colour']
              for t in values['texture']]
    if num_classes > len(combos):
        raise ValueError(f'at most {len(combos)} categories can be made '
                         f'(asked for {num_classes})')

    def fits(index: int, key: Tuple[str, str, str]) -> bool:
        return (not thin_shapes
                or (key[0] in THIN_SHAPES) == _thin_slot(index))

    num_head = max(1, min(num_head, num_classes))
    order = rng.permutation(len(combos))
    if thin_shapes:
        pools = {flag: iter([i for i in order
                             if (combos[i][0] in THIN_SHAPES) == flag])
                 for flag in (False, True)}
        head = [next(pools[_thin_slot(j)]) for j in range(num_head)]
    else:
        head = order[:num_head]
    specs = [CategorySpec(*combos[i]) for i in head]
    used = {s.key for s in specs}
    while len(specs) < num_classes:
        index = len(specs)
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
                if cand not in used and fits(index, cand):
                    spec = CategorySpec(*cand, parent=parent.name,
                                        changed=attr)
                    break
            if spec is not None:
                break
        if spec is None:  # every neighbour of every head is taken
            free = [c for c in combos if c not in used and fits(index, c)]
            spec = CategorySpec(*free[int(rng.integers(len(free)))])
        specs.append(spec)
        used.add(spec.key)
    return specs
