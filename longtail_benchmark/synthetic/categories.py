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
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from shapely.geometry import Point

__all__ = ['SHAPES', 'COLOURS', 'TEXTURES', 'CategorySpec',
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
