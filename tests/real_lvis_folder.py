"""A stand-in for a real LVIS data folder, and a fingerprint of a folder.

Used by the data-safety tests: the synthetic generator and the benchmark
runner must refuse such a folder without changing a byte in it.
"""
import hashlib
import json
import os
import os.path as osp
from typing import Dict

__all__ = ['make_real_lvis_folder', 'fingerprint']


def make_real_lvis_folder(root: str) -> str:
    """MMDetection's LVIS layout: COCO-named images (the names the generator
    writes) and ``annotations/lvis_v1_{train,val}.json``."""
    for folder, image_id in (('train2017', 139), ('val2017', 285)):
        os.makedirs(osp.join(root, folder), exist_ok=True)
        with open(osp.join(root, folder, f'{image_id:012d}.jpg'), 'wb') as f:
            f.write(b'\xff\xd8\xff\xe0 a user\'s photo ' + bytes(range(256)))
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    for split, image_id in (('train', 139), ('val', 285)):
        with open(osp.join(root, 'annotations', f'lvis_v1_{split}.json'),
                  'w') as f:
            json.dump({'images': [{'id': image_id}], 'annotations': [],
                       'categories': [{'id': 1, 'name': 'aerosol_can'}]}, f)
    return root


def fingerprint(root: str) -> Dict[str, str]:
    """Every file and folder under ``root`` (hidden ones too) with the
    SHA-256 of its bytes; folders map to ``'dir'``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[osp.relpath(osp.join(dirpath, d), root)] = 'dir'
        for name in filenames:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = hashlib.sha256(
                    f.read()).hexdigest()
    return out
