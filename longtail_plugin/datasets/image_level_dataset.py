"""Image-level supervision data: images with class labels and, optionally,
the region of the labelled object.

CLIS (Collaborative Learning with Image-level Supervision, waveboo/CLIS)
trains a detector on detection data together with image-level data (ImageNet
images of the LVIS vocabulary). The paper released no code; this reader,
its file format checks and the data-info layout are OUR design.

Annotation file (JSON, compatible with Detic's ImageNet-LVIS ``image_info``
files)::

    {"categories": [{"id": int, "name": str}, ...],
     "images": [{"id": int, "file_name": str, "height": int, "width": int,
                 "pos_category_ids": [int, ...],     # >= 1 category id
                 "bbox": [x, y, w, h]                # optional
                }, ...]}

Labels: the ``k``-th category of the file's ``categories`` list gets label
``k``, MMDetection's rule for LVIS-format files (``LVISV1Dataset`` labels by
the order of the LVIS API's ``get_cat_ids``, i.e. the file's order; our
``LVISFormatDataset`` too), so the two sources of a mixed training set agree
when their files list the same categories in the same order (LVIS v1 and
Detic's ImageNet-LVIS files list them by id). ``metainfo['classes']`` are
the names in label order and ``metainfo['palette']``
is the palette ``LVISFormatDataset`` makes for them, so that MMDetection's
``ConcatDataset`` of both sees one metainfo (no ``ignore_keys`` needed).

Each image becomes one data info with ``image_level=True`` and one instance
per label, all on the same region: the given box (converted to ``x1, y1, x2,
y2``) or, without a box, the whole image ``[0, 0, width, height]``.
Malformed records raise ``ValueError`` naming the file and the image.
"""
import json
import math
import os.path as osp
from typing import Any, Dict, List, Sequence, Tuple

from mmengine.fileio import get_local_path

from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS

__all__ = ['ImageLevelDataset', 'default_palette']

# boxes may stick out of the image by this much (pixels, float rounding in
# converted files); they are clipped to the image
_BOX_TOLERANCE = 1e-2
_REQUIRED_IMAGE_KEYS = ('id', 'file_name', 'height', 'width',
                        'pos_category_ids')


def default_palette(num_classes: int) -> List[Tuple[int, int, int]]:
    """The colours ``LVISFormatDataset`` gives classes without a palette."""
    return [((37 * i) % 256, (97 * i) % 256, (17 * i) % 256)
            for i in range(num_classes)]


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


@DATASETS.register_module()
class ImageLevelDataset(BaseDetDataset):
    """Image-level data set (image, class labels, optional object box).

    Args:
        ann_file (str): The JSON annotation file (format in the module
            docstring); joined with ``data_root`` like every MMEngine
            data set.
        data_prefix (dict): ``img`` is the folder the ``file_name`` of each
            image is relative to. Defaults to ``dict(img='')``.
        **kwargs: The other arguments of ``BaseDetDataset`` (``data_root``,
            ``pipeline``, ``serialize_data``, ``metainfo`` ...).
            ``metainfo['classes']`` is always replaced by the file's names.

    Each data info holds ``img_id``, ``img_path``, ``height``, ``width``,
    ``image_level=True`` and ``instances``: one ``{'bbox': [x1, y1, x2, y2],
    'bbox_label': label, 'ignore_flag': 0}`` per label of the image.
    """

    METAINFO: dict = {'classes': (), 'palette': None}

    def __init__(self,
                 *args,
                 data_prefix: dict = dict(img=''),
                 **kwargs) -> None:
        super().__init__(*args, data_prefix=data_prefix, **kwargs)

    # ------------------------------------------------------------------ io
    def _read_json(self) -> dict:
        if not osp.isfile(self.ann_file) and '://' not in self.ann_file:
            raise FileNotFoundError(
                f'ImageLevelDataset: annotation file {self.ann_file} does '
                'not exist')
        with get_local_path(self.ann_file,
                            backend_args=self.backend_args) as local_path:
            with open(local_path) as f:
                try:
                    content = json.load(f)
                except json.JSONDecodeError as err:
                    raise ValueError(
                        f'{self.ann_file}: invalid JSON at line {err.lineno}'
                        f' column {err.colno}: {err.msg}') from err
        if not isinstance(content, dict):
            raise ValueError(
                f'{self.ann_file}: expected a JSON object with "categories" '
                f'and "images", got {type(content).__name__}')
        for key in ('categories', 'images'):
            if not isinstance(content.get(key), list):
                raise ValueError(
                    f'{self.ann_file}: "{key}" must be a list '
                    f'(got {type(content.get(key)).__name__})')
        return content

    def _category_labels(self, categories: Sequence[Any]
                         ) -> Tuple[Dict[int, int], Tuple[str, ...]]:
        by_id: Dict[int, str] = {}
        for k, cat in enumerate(categories):
            where = f'{self.ann_file}: category #{k}'
            if not isinstance(cat, dict) or 'id' not in cat or (
                    'name' not in cat):
                raise ValueError(f'{where}: needs "id" and "name" '
                                 f'(got {cat!r})')
            if not isinstance(cat['id'], int) or isinstance(cat['id'], bool):
                raise ValueError(f'{where}: id must be an integer '
                                 f'(got {cat["id"]!r})')
            if cat['id'] in by_id:
                raise ValueError(f'{where}: duplicate category id '
                                 f'{cat["id"]}')
            by_id[cat['id']] = str(cat['name'])
        if not by_id:
            raise ValueError(f'{self.ann_file}: no categories')
        ids = list(by_id)  # the file's order, as MMDetection's LVIS datasets
        return ({c: i for i, c in enumerate(ids)},
                tuple(by_id[c] for c in ids))

    def _parse_image(self, index: int, img: Any,
                     cat2label: Dict[int, int]) -> dict:
        img_id = img.get('id', '?') if isinstance(img, dict) else '?'
        where = f'{self.ann_file}: image #{index} (id={img_id})'
        if not isinstance(img, dict):
            raise ValueError(f'{where}: expected an object, got '
                             f'{type(img).__name__}')
        missing = [k for k in _REQUIRED_IMAGE_KEYS if k not in img]
        if missing:
            raise ValueError(f'{where}: missing key(s) {missing}')
        height, width = img['height'], img['width']
        if not all(_is_number(v) and v > 0 and float(v).is_integer()
                   for v in (height, width)):
            raise ValueError(f'{where}: height and width must be positive '
                             f'integers (got {height!r}, {width!r})')
        height, width = int(height), int(width)
        cat_ids = img['pos_category_ids']
        if not isinstance(cat_ids, list) or not cat_ids:
            raise ValueError(f'{where}: "pos_category_ids" must be a '
                             f'non-empty list (got {cat_ids!r})')
        unknown = [c for c in cat_ids
                   if not isinstance(c, int) or c not in cat2label]
        if unknown:
            raise ValueError(f'{where}: unknown category id(s) {unknown} '
                             'in "pos_category_ids" (not in "categories")')
        labels = list(dict.fromkeys(cat2label[c] for c in cat_ids))
        box = img.get('bbox')
        if box is None:
            xyxy = [0.0, 0.0, float(width), float(height)]
        else:
            if not (isinstance(box, list) and len(box) == 4
                    and all(_is_number(v) for v in box)):
                raise ValueError(f'{where}: "bbox" must be [x, y, w, h] '
                                 f'numbers (got {box!r})')
            x, y, w, h = (float(v) for v in box)
            if w <= 0 or h <= 0:
                raise ValueError(f'{where}: "bbox" {box} has a '
                                 'non-positive width or height')
            tol = _BOX_TOLERANCE
            if (x < -tol or y < -tol or x + w > width + tol
                    or y + h > height + tol):
                raise ValueError(
                    f'{where}: "bbox" {box} (x, y, w, h) lies outside the '
                    f'{width}x{height} image')
            xyxy = [max(x, 0.0), max(y, 0.0), min(x + w, float(width)),
                    min(y + h, float(height))]
        prefix = self.data_prefix.get('img',
                                      self.data_prefix.get('img_path', ''))
        return dict(
            img_id=img['id'],
            img_path=osp.join(prefix, img['file_name']),
            height=height,
            width=width,
            image_level=True,
            instances=[dict(bbox=list(xyxy), bbox_label=label,
                            ignore_flag=0) for label in labels])

    def load_data_list(self) -> List[dict]:
        content = self._read_json()
        cat2label, names = self._category_labels(content['categories'])
        self.cat_ids = list(cat2label)
        self.cat2label = cat2label
        data_list = [self._parse_image(k, img, cat2label)
                     for k, img in enumerate(content['images'])]
        if not data_list:
            raise ValueError(f'{self.ann_file}: "images" is empty')
        palette = list(self._metainfo.get('palette') or [])
        if len(palette) < len(names):
            palette = default_palette(len(names))
        self._metainfo['classes'] = names
        self._metainfo['palette'] = palette[:len(names)]
        return data_list
