import pytest

from longtail_plugin.datasets import LVISFormatDataset
from tests.lvis_cases import tiny_lvis_gt, write_json


def test_classes_come_from_the_annotation_file(tmp_path):
    ann = write_json(tiny_lvis_gt(), tmp_path / 'val.json')
    ds = LVISFormatDataset(ann_file=ann, data_prefix=dict(img=''),
                           pipeline=[], test_mode=True)
    assert ds.metainfo['classes'] == ('rare_thing', 'common_thing',
                                      'frequent_thing')
    assert len(ds.metainfo['palette']) == 3
    assert len(ds) == 2
    labels = sorted(i['bbox_label'] for k in range(len(ds))
                    for i in ds.get_data_info(k)['instances'])
    assert labels == [0, 1, 2]


def test_missing_annotation_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing_train.json'):
        LVISFormatDataset(ann_file=str(tmp_path / 'missing_train.json'),
                          data_prefix=dict(img=''), pipeline=[])


def test_num_class_check_hook_names_both_counts(tmp_path):
    """MMDetection's NumClassCheckHook (in the synthetic configs) now sees
    the file's classes and stops a head with the wrong class count."""
    from mmdet.engine.hooks import NumClassCheckHook
    from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead

    ann = write_json(tiny_lvis_gt(), tmp_path / 'train.json')
    ds = LVISFormatDataset(ann_file=ann, data_prefix=dict(img=''),
                           pipeline=[])

    class _Runner:
        model = Shared2FCBBoxHead(num_classes=5, in_channels=4,
                                  fc_out_channels=8, roi_feat_size=2)
        train_dataloader = type('L', (), {'dataset': ds})()

    with pytest.raises(AssertionError, match='num_classes'):
        NumClassCheckHook().before_train_epoch(_Runner())
