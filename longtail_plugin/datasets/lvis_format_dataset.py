"""LVIS v1-format data sets whose classes are those of the annotation file.

MMDetection's ``LVISV1Dataset`` labels instances by the file's category ids
but always reports the 1,203 LVIS v1 class names as its ``metainfo``, so for
any other vocabulary (the synthetic benchmark, a user's own long-tailed data
in LVIS format) ``dataset_meta['classes']`` is wrong and MMDetection's
``NumClassCheckHook`` cannot catch a head with the wrong class count.
:class:`LVISFormatDataset` reads the names from the file instead.
"""
from typing import List

from mmdet.datasets import LVISV1Dataset
from mmdet.registry import DATASETS

__all__ = ['LVISFormatDataset']


@DATASETS.register_module()
class LVISFormatDataset(LVISV1Dataset):
    """``LVISV1Dataset`` with ``metainfo['classes']`` from the annotation
    file (category names in label order: the order of the file's
    ``categories``, which is how ``LVISV1Dataset`` assigns labels)."""

    # LVISV1Dataset.load_data_list builds ``self.lvis`` and deletes it when
    # done; the property keeps the categories it held.
    @property
    def lvis(self):
        return self._lvis_api

    @lvis.setter
    def lvis(self, api) -> None:
        self._lvis_api = api
        self._file_categories = list(api.dataset['categories'])

    @lvis.deleter
    def lvis(self) -> None:
        del self._lvis_api

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        # names in label order: LVISV1Dataset labels category ids in the
        # order of self.cat_ids (the file's order), not by sorted id
        name_of = {c['id']: c['name'] for c in self._file_categories}
        names = tuple(name_of[i] for i in self.cat_ids)
        palette = list(self._metainfo.get('palette') or [])
        self._metainfo['classes'] = names
        if len(palette) < len(names):
            palette = [((37 * i) % 256, (97 * i) % 256, (17 * i) % 256)
                       for i in range(len(names))]
        self._metainfo['palette'] = palette[:len(names)]
        return data_list
