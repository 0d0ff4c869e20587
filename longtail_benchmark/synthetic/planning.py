"""Count planning of the synthetic set: which categories each image holds.

Everything here is decided before any image is drawn, from ``numpy`` random
streams derived from the seed.

*Training counts.* Categories are split into LVIS v1's group proportions
(28% rare, 38% common, 34% frequent, largest remainder rounding). Inside each
group the number of training *images* of a category falls from the top of
the group's range to its bottom along a convex curve in log space
(``exp(log lo + (log hi - log lo) * (1 - t) ** 2)``): a steep, piecewise power
law with most categories near the bottom of each range. Rare categories get
10..1 images, common ones 100..11 and frequent ones ``F``..101, where ``F``
is the largest top count that keeps the mean number of distinct categories
per image at ``max_objects - 0.8`` (4.2 with the default of 5 objects). On
small custom sizes the ranges cannot be met; the counts are then scaled to
what the images can hold and the frequency labels follow the counts actually
drawn. Images are then filled by a Havel-Hakimi style assignment: each image
gets a number of distinct categories (between ``min_objects`` and
``max_objects``, summing to the planned total) and the categories, most
frequent first, take the images with most free slots left (random
tie-break). The plan is therefore met exactly.

*Validation.* Mildly long-tailed by design: every category appears in at
least ``val_min_instances`` validation images, and the remaining validation
slots (3.5 distinct categories per image on average) are shared in
proportion to the square root of the training image count.

*Dense head.* :func:`plan_crowds` gives every occurrence of a frequent
category extra, smaller instances (``head_instances``).
"""
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from longtail_plugin.utils.category_info import frequency_group

from .categories import CategorySpec, build_category_specs

__all__ = ['LVIS_GROUP_PROPORTIONS', 'MAX_CROWD_PER_OCCURRENCE',
           'plan_train_image_counts', 'plan_crowds', 'SetPlan', 'plan_set']

#: Fractions of rare / common / frequent categories in LVIS v1.
LVIS_GROUP_PROPORTIONS = (0.28, 0.38, 0.34)
#: Most extra instances of a frequent category per occurrence in an image.
MAX_CROWD_PER_OCCURRENCE = 4


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


@dataclass
class SetPlan:
    """Everything decided before a single image is drawn.

    Attributes:
        specs: category appearances, most frequent first (the label order
            of the lists below).
        order: labels by category id (LVIS numbers categories in the
            alphabetical order of their names).
        cat_ids: category id of each label.
        train_labels, val_labels: per image, the labels of its objects in
            painting order (its categories plus a few second instances).
        train_crowds, val_crowds: per image, the labels of its extra small
            head instances (empty unless ``head_instances > 1``).
        image_level_labels: per image of the image-level companion set, its
            one label (empty when that set is off).
    """
    specs: List[CategorySpec]
    order: List[int]
    cat_ids: List[int]
    train_labels: List[List[int]]
    val_labels: List[List[int]]
    train_crowds: List[List[int]]
    val_crowds: List[List[int]]
    image_level_labels: List[List[int]]


def plan_set(params: Dict[str, Any]) -> SetPlan:
    """Plan a set from its (validated) generator parameters.

    Pure computation: raises ``ValueError`` for a plan that cannot be met
    (e.g. too few validation images) before the generator touches a file.
    Each part draws from its own stream of ``params['seed']``: ``[seed, 0]``
    categories, ``[seed, 1]`` train, ``[seed, 2]`` val, ``[seed, 3]``
    image-level set, ``[seed, 4]`` / ``[seed, 5]`` train / val crowds.
    """
    p = params
    seed, k = p['seed'], p['num_classes']
    rng = np.random.default_rng([seed, 0])
    train_counts = plan_train_image_counts(k, p['num_train_images'],
                                           p['max_objects'])
    val_counts = _val_counts(train_counts, p['num_val_images'],
                             p['val_min_instances'], p['max_objects'])
    head = np.array([frequency_group(int(c)) == 'f' for c in train_counts])
    specs = build_category_specs(k, max(int(head.sum()), 1), rng,
                                 p.get('thin_shapes', False))
    # LVIS numbers its categories in alphabetical order of their names
    order = sorted(range(k), key=lambda i: specs[i].name)
    cat_ids = [0] * k
    for new_id, i in enumerate(order, 1):
        cat_ids[i] = new_id

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
    image_level_labels: List[List[int]] = []
    if p['image_level'] and p['image_level_per_class'] > 0:
        rng_il = np.random.default_rng([seed, 3])
        labels = np.repeat(np.arange(k), p['image_level_per_class'])
        image_level_labels = [
            [int(x)] for x in labels[rng_il.permutation(len(labels))]
        ]
    return SetPlan(specs, order, cat_ids, train_labels, val_labels,
                   train_crowds, val_crowds, image_level_labels)
