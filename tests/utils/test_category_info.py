import json

import numpy as np
import pytest

from longtail_plugin.utils import (category_info_from_dataset,
                                   frequency_group, load_category_info)
from tests.lvis_cases import tiny_lvis_gt, write_json


def test_lvis_fields_are_used(tmp_path):
    info = load_category_info(write_json(tiny_lvis_gt(), tmp_path / 'a.json'))
    assert info.cat_ids == [1, 2, 3]
    assert info.groups == ['r', 'c', 'f']
    assert info.image_count.tolist() == [3, 40, 500]
    assert info.num_images == 2
    np.testing.assert_allclose(info.image_frequency, [1.5, 20, 250])
    assert {k: v.tolist() for k, v in info.group_indices().items()} == {
        'r': [0], 'c': [1], 'f': [2]}


def test_counts_derived_from_annotations_without_lvis_fields():
    data = tiny_lvis_gt()
    for c in data['categories']:
        for k in ('image_count', 'instance_count', 'frequency'):
            c.pop(k)
    # a second instance of category 1 in image 1 counts once as an image
    data['annotations'].append(dict(id=9, image_id=1, category_id=1,
                                    bbox=[0, 0, 1, 1], area=1))
    info = category_info_from_dataset(data)
    assert info.image_count.tolist() == [1, 1, 1]
    assert info.instance_count.tolist() == [2, 1, 1]
    assert info.groups == ['r', 'r', 'r']


def test_group_thresholds():
    assert [frequency_group(n) for n in (1, 10, 11, 100, 101)] == \
        ['r', 'r', 'c', 'c', 'f']


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.json'):
        load_category_info(str(tmp_path / 'nowhere.json'))
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps({'annotations': []}))
    with pytest.raises(ValueError, match="no 'categories'"):
        load_category_info(str(bad))
    info = load_category_info(write_json(tiny_lvis_gt(), tmp_path / 'a.json'))
    with pytest.raises(ValueError, match='num_classes=5 .* 3 categories'):
        info.check_num_classes(5, 'num_classes')


def test_label_order_is_the_file_order():
    """Class k is the k-th category as the file lists it (MMDetection's
    LVIS datasets label by the LVIS API's get_cat_ids: the file's order)."""
    gt = tiny_lvis_gt()
    gt['categories'] = gt['categories'][::-1]
    info = category_info_from_dataset(gt)
    assert info.cat_ids == [c['id'] for c in gt['categories']]
    assert info.names == [c['name'] for c in gt['categories']]
    assert list(info.instance_count) == [
        sum(a['category_id'] == c['id'] for a in gt['annotations'])
        if 'instance_count' not in c else c['instance_count']
        for c in gt['categories']]
