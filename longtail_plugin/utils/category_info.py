"""Category frequencies and LVIS frequency groups read from an annotation file.

Every consumer (EQL v1's tail indicator, the LVIS metric's per-group summary,
the gradient-ratio plots) reads the same numbers through this module, so that a
data set other than LVIS works as soon as its annotation file carries the LVIS
fields ``image_count`` / ``instance_count`` / ``frequency`` - and, when it does
not, the counts are derived from its annotations.

LVIS groups (Gupta et al., "LVIS: A Dataset for Large Vocabulary Instance
Segmentation", CVPR 2019): rare = 1-10 training images, common = 11-100,
frequent = more than 100.
"""
import json
import os.path as osp
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

__all__ = [
    'CategoryInfo', 'load_category_info', 'category_info_from_dataset',
    'frequency_group', 'FREQUENCY_GROUPS', 'dataset_ann_file',
    'train_ann_file'
]

FREQUENCY_GROUPS = ('r', 'c', 'f')


def frequency_group(image_count: int) -> str:
    """LVIS group of a category with ``image_count`` training images."""
    if image_count <= 10:
        return 'r'
    if image_count <= 100:
        return 'c'
    return 'f'


@dataclass
class CategoryInfo:
    """Per-category statistics of a training set, in label order.

    Attributes:
        cat_ids: category ids in the file's order (the model's label order,
            as MMDetection's LVIS datasets assign labels).
        names: category names.
        image_count: number of training images containing each category.
        instance_count: number of training instances of each category.
        groups: LVIS frequency group ('r', 'c' or 'f') of each category.
        num_images: number of training images.
        num_annotated_images: number of training images with at least one
            annotation (``num_images`` when the file lists none).
    """
    cat_ids: List[int]
    names: List[str]
    image_count: np.ndarray
    instance_count: np.ndarray
    groups: List[str]
    num_images: int
    source: str = field(default='')
    num_annotated_images: Optional[int] = None

    @property
    def num_classes(self) -> int:
        return len(self.cat_ids)

    @property
    def image_frequency(self) -> np.ndarray:
        """Fraction of training images that contain each category."""
        return self.image_count / max(self.num_images, 1)

    def image_frequency_over(self, denominator: str) -> np.ndarray:
        """Image frequency with the chosen denominator.

        ``'images'``: every image the file lists (:attr:`image_frequency`);
        ``'annotated_images'``: only images with at least one annotation,
        the EQL authors' rule (their LVIS v1 table divides by 99,388, the
        annotated part of the 100,170 training images).
        """
        if denominator == 'images':
            return self.image_frequency
        if denominator == 'annotated_images':
            n = (self.num_annotated_images if self.num_annotated_images
                 is not None else self.num_images)
            return self.image_count / max(n, 1)
        raise ValueError(
            f'frequency_denominator={denominator!r}: expected '
            "'images' or 'annotated_images'")

    def group_indices(self) -> Dict[str, np.ndarray]:
        """Label indices of each frequency group."""
        g = np.asarray(self.groups)
        return {k: np.nonzero(g == k)[0] for k in FREQUENCY_GROUPS}

    def check_num_classes(self, num_classes: int, key: str) -> None:
        """Raise a clear error when a config's class count disagrees."""
        if num_classes != self.num_classes:
            raise ValueError(
                f'{key}={num_classes} but the annotation file '
                f'{self.source!r} has {self.num_classes} categories')


def _read_json(path: str) -> dict:
    # mmengine's fileio lets ann files live on any backend (s3, http...).
    from mmengine.fileio import get_local_path
    with get_local_path(path) as local:
        with open(local) as f:
            return json.load(f)


@lru_cache(maxsize=8)
def _load_cached(path: str) -> CategoryInfo:
    return category_info_from_dataset(_read_json(path), path)


def category_info_from_dataset(data: dict, source: str = '') -> CategoryInfo:
    """:class:`CategoryInfo` of a loaded COCO/LVIS-format dict.

    The LVIS fields ``image_count``/``instance_count``/``frequency`` are used
    when every category has them (LVIS val files carry the training
    values); otherwise the counts are derived from ``annotations``.
    Class ``k`` is the ``k``-th entry of ``categories`` in the file's order,
    the label MMDetection's LVIS datasets give it (LVIS v1 lists them by
    id).
    """
    path = source
    for key in ('categories', 'images'):
        if key not in data:
            raise ValueError(
                f'annotation file {path!r} has no {key!r} field: '
                'not a COCO/LVIS-format file')
    cats = list(data['categories'])  # label order = the file's order
    cat_ids = [c['id'] for c in cats]
    index = {cid: i for i, cid in enumerate(cat_ids)}
    has_counts = all('image_count' in c and 'instance_count' in c
                     for c in cats)
    if has_counts:
        image_count = np.array([c['image_count'] for c in cats], np.int64)
        instance_count = np.array([c['instance_count'] for c in cats],
                                  np.int64)
    else:
        image_count = np.zeros(len(cats), np.int64)
        instance_count = np.zeros(len(cats), np.int64)
        seen = set()
        for ann in data.get('annotations', []):
            i = index.get(ann['category_id'])
            if i is None:
                raise ValueError(
                    f'annotation {ann.get("id")} in {path!r} has '
                    f'category_id {ann["category_id"]} not in categories')
            instance_count[i] += 1
            if (ann['image_id'], i) not in seen:
                seen.add((ann['image_id'], i))
                image_count[i] += 1
    groups = [
        c['frequency'] if c.get('frequency') in FREQUENCY_GROUPS else
        frequency_group(int(n)) for c, n in zip(cats, image_count)
    ]
    return CategoryInfo(
        cat_ids=cat_ids,
        names=[c.get('name', str(c['id'])) for c in cats],
        image_count=image_count,
        instance_count=instance_count,
        groups=groups,
        num_images=len(data['images']),
        source=source,
        num_annotated_images=(len({a['image_id'] for a in data['annotations']})
                              if data.get('annotations') else None))


def load_category_info(ann_file: str,
                       data_root: Optional[str] = None) -> CategoryInfo:
    """Read :class:`CategoryInfo` from a COCO/LVIS-format annotation file.

    Args:
        ann_file: path of the training annotation file; a relative path is
            joined to ``data_root`` when one is given, as MMEngine's
            ``BaseDataset`` does.
        data_root: optional data root.

    Raises:
        FileNotFoundError: naming the file when it does not exist.
        ValueError: when the file is not in COCO/LVIS format.
    """
    path = _join_root(ann_file, data_root)
    if '://' not in path and not osp.exists(path):
        raise FileNotFoundError(
            f'category statistics: annotation file {path!r} not found '
            '(set the loss/metric `ann_file` or give the counts explicitly)')
    return _load_cached(osp.abspath(path) if '://' not in path else path)


def _join_root(ann_file: str, data_root: Optional[str]) -> str:
    if not data_root or osp.isabs(ann_file) or '://' in ann_file:
        return ann_file
    return osp.join(data_root, ann_file)


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def dataset_ann_file(dataset: Any) -> Optional[str]:
    """The annotation file of a dataset config (``dict``) or built dataset.

    Dataset wrappers are looked through (``ClassBalancedDataset`` /
    ``RepeatDataset``: the inner ``dataset``; ``ConcatDataset``: the first
    of ``datasets``). A config's relative ``ann_file`` is joined to its
    ``data_root`` as MMEngine's ``BaseDataset`` does (a built dataset has
    done so already). ``None`` when no annotation file is named.
    """
    for _ in range(16):
        if dataset is None:
            return None
        ann_file = _get(dataset, 'ann_file')
        if ann_file:
            ann_file = str(ann_file)
            if isinstance(dataset, dict):
                ann_file = _join_root(ann_file, _get(dataset, 'data_root'))
            return ann_file
        inner = _get(dataset, 'dataset')
        if inner is None:
            many = _get(dataset, 'datasets')
            inner = many[0] if isinstance(many, Sequence) and len(
                many) else None
        dataset = inner
    return None


def train_ann_file(runner: Any) -> Optional[str]:
    """The training annotation file of an MMEngine runner: the one its
    config's ``train_dataloader.dataset`` names (the one place a config
    names it), else that of the built training dataset; ``None`` if none.

    This is how the frequency-aware modules (EQL v1's frequencies, the
    gradient-ratio hook's groups) find the training set: nothing else in a
    config has to repeat its path.
    """
    loader = _get(_get(runner, 'cfg'), 'train_dataloader')
    path = dataset_ann_file(_get(loader, 'dataset'))
    if path is None:
        loader = getattr(getattr(runner, '_train_loop', None), 'dataloader',
                         None)
        path = dataset_ann_file(getattr(loader, 'dataset', None))
    return path
