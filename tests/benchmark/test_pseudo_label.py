"""Pseudo-labels in LVIS format from hand-made predictions (no model runs)."""
import json
import os.path as osp

import numpy as np
import pytest

from longtail_benchmark import pseudo_label as pl
from longtail_benchmark.pseudo_label import (images_from_folder,
                                             images_from_lvis,
                                             predictions_to_lvis)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# ids deliberately out of order: label k is the k-th category BY ID
# in id order, as LVIS v1 lists them (label k = the k-th category)
CATS = [
    dict(id=2, name='two', frequency='r', image_count=3, instance_count=4,
         synset='a.n.01'),
    dict(id=5, name='five', frequency='c', image_count=40,
         instance_count=50, synset='b.n.01'),
    dict(id=9, name='nine', frequency='f', image_count=500,
         instance_count=900, synset='c.n.01'),
]
IMAGES = [dict(id=11, width=40, height=40, file_name='unl/a.jpg'),
          dict(id=12, width=40, height=40, file_name='unl/b.jpg')]


def _rect(y0, y1, x0, x1, hw=40):
    m = np.zeros((hw, hw), bool)
    m[y0:y1 + 1, x0:x1 + 1] = True
    return m


def _ring():
    m = _rect(10, 29, 10, 29)
    m[15:25, 15:25] = False  # a 10 x 10 hole
    return m


def _preds():
    return [
        dict(bboxes=[[2, 3, 10, 8], [0, 0, 5, 5], [1, 1, 4, 4]],
             scores=[0.9, 0.3, 0.6],
             labels=[1, 0, 2],
             # the third detection's mask is empty: dropped
             masks=[_rect(3, 7, 2, 9), _rect(0, 4, 0, 4),
                    np.zeros((40, 40), bool)]),
        dict(bboxes=np.array([[10., 10., 30., 30.]]), scores=np.array([0.7]),
             labels=np.array([0]), masks=np.array([_ring()])),
    ]


def test_conversion_by_hand():
    out = predictions_to_lvis(IMAGES, _preds(), CATS, score_thr=0.5)
    anns = out['annotations']
    assert [(a['id'], a['image_id'], a['category_id']) for a in anns] == [
        (1, 11, 5), (2, 12, 2)]
    a, b = anns
    assert a['bbox'] == [2.0, 3.0, 8.0, 5.0]
    assert a['area'] == 5 * 8  # mask pixels, rows 3..7 x cols 2..9
    assert a['score'] == pytest.approx(0.9)
    # the outer contour of the rectangle through its corner pixels
    (poly, ) = a['segmentation']
    assert sorted(zip(poly[0::2], poly[1::2])) == [(2, 3), (2, 7), (9, 3),
                                                     (9, 7)]
    assert b['area'] == 20 * 20 - 10 * 10
    assert len(b['segmentation']) == 1  # polygons drop the hole
    # categories copied (file order), counts recomputed, frequency kept
    cats = {c['id']: c for c in out['categories']}
    assert [c['id'] for c in out['categories']] == [2, 5, 9]
    assert {k: (c['image_count'], c['instance_count'], c['frequency'])
            for k, c in cats.items()} == {2: (1, 1, 'r'), 5: (1, 1, 'c'),
                                          9: (0, 0, 'f')}
    assert cats[2]['synset'] == 'a.n.01'
    for img in out['images']:
        assert img['neg_category_ids'] == []
        assert img['not_exhaustive_category_ids'] == []
        assert img['coco_url'] == img['file_name']
    assert [i['id'] for i in out['images']] == [11, 12]
    json.dumps(out)  # plain JSON types only


def test_rle_keeps_the_hole():
    import pycocotools.mask as mask_utils
    out = predictions_to_lvis(IMAGES, _preds(), CATS, score_thr=0.5,
                              mask_format='rle')
    rle = out['annotations'][1]['segmentation']
    assert isinstance(rle['counts'], str)
    dec = mask_utils.decode(dict(rle, counts=rle['counts'].encode()))
    assert (dec.astype(bool) == _ring()).all()


def test_caps_keep_the_highest_scores():
    boxes = [[0, 0, 10, 10]] * 3
    preds = [dict(bboxes=boxes, scores=[0.8, 0.95, 0.6], labels=[0, 0, 1]),
             dict(bboxes=boxes, scores=[0.9, 0.7, 0.65], labels=[0, 0, 0])]
    out = predictions_to_lvis(IMAGES, preds, CATS, score_thr=0.5,
                              max_per_class=2)
    got = sorted((a['image_id'], a['category_id'], a['score'])
                 for a in out['annotations'])
    # class 0 (id 2): 0.95 and 0.9 of five; class 1 (id 5): its only one
    assert got == [(11, 2, 0.95), (11, 5, 0.6), (12, 2, 0.9)]
    assert out['annotations'][0]['area'] == 100.0  # box area without masks
    out = predictions_to_lvis(IMAGES, preds, CATS, score_thr=0.5,
                              max_per_image=1)
    assert sorted((a['image_id'], a['score'])
                  for a in out['annotations']) == [(11, 0.95), (12, 0.9)]


@pytest.mark.parametrize('kwargs, match', [
    (dict(score_thr=1.5), 'score_thr'),
    (dict(max_per_class=0), 'max_per_class'),
    (dict(mask_format='bitmap'), 'mask_format'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        predictions_to_lvis(IMAGES, _preds(), CATS, **kwargs)


def test_bad_predictions():
    bad = _preds()
    bad[1]['labels'] = [3]
    with pytest.raises(ValueError, match=r'labels must be in \[0, 3\)'):
        predictions_to_lvis(IMAGES, bad, CATS)
    with pytest.raises(ValueError, match='2 images but 1 predictions'):
        predictions_to_lvis(IMAGES, _preds()[:1], CATS)
    with pytest.raises(KeyError, match="no 'scores'"):
        predictions_to_lvis(IMAGES[:1], [dict(bboxes=[], labels=[])], CATS)


def test_image_entries(tmp_path):
    from PIL import Image
    (tmp_path / 'unl' / 'sub').mkdir(parents=True)
    Image.new('RGB', (30, 20)).save(tmp_path / 'unl' / 'b.png')
    Image.new('RGB', (7, 9)).save(tmp_path / 'unl' / 'sub' / 'a.jpg')
    (tmp_path / 'unl' / 'notes.txt').write_text('x')
    imgs = images_from_folder(str(tmp_path / 'unl'), str(tmp_path))
    assert imgs == [dict(id=1, width=30, height=20, file_name='unl/b.png'),
                    dict(id=2, width=7, height=9, file_name='unl/sub/a.jpg')]
    ann = tmp_path / 'list.json'
    ann.write_text(json.dumps(dict(images=[dict(
        id=4, width=5, height=6,
        coco_url='http://images.cocodataset.org/train2017/x.jpg')])))
    assert images_from_lvis(str(ann)) == [
        dict(id=4, width=5, height=6, file_name='train2017/x.jpg')]
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='no image'):
        images_from_folder(str(tmp_path / 'empty'))
    with pytest.raises(NotADirectoryError):
        images_from_folder(str(tmp_path / 'missing'))


def test_write_pseudo_labels_filters_while_predicting(tmp_path, monkeypatch):
    cats_file = tmp_path / 'gt.json'
    cats_file.write_text(json.dumps(dict(categories=CATS)))
    seen = []

    def fake_predict(config, checkpoint, paths, device='cpu'):
        seen.extend(paths)
        yield from _preds()

    monkeypatch.setattr(pl, 'predict_images', fake_predict)
    out = tmp_path / 'ann' / 'pseudo.json'
    counts = pl.write_pseudo_labels(str(out), 'cfg.py', 'ckpt.pth',
                                    str(cats_file), IMAGES,
                                    data_root='data/x', score_thr=0.5)
    assert seen == ['data/x/unl/a.jpg', 'data/x/unl/b.jpg']
    assert counts == dict(images=2, annotations=2, categories_with_labels=2)
    assert json.loads(out.read_text()) == predictions_to_lvis(
        IMAGES, _preds(), CATS, score_thr=0.5)


def test_pseudo_labels_train_beside_ground_truth(tmp_path):
    """The self-training config's ConcatDataset builds on a ground-truth
    file and a pseudo-label file written here, with one metainfo."""
    from mmengine.config import Config
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    import longtail_plugin  # noqa: F401  (LVISFormatDataset)
    register_all_modules()
    gt = dict(images=[dict(IMAGES[0], coco_url=IMAGES[0]['file_name'],
                           neg_category_ids=[],
                           not_exhaustive_category_ids=[])],
              annotations=[dict(id=1, image_id=11, category_id=5,
                                bbox=[2, 3, 8, 5], area=40,
                                segmentation=[[2, 3, 10, 3, 10, 8, 2, 8]])],
              categories=CATS)
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations' / 'lvis_v1_train.json').write_text(
        json.dumps(gt))
    pseudo = predictions_to_lvis(IMAGES, _preds(), CATS, score_thr=0.5)
    (tmp_path / 'annotations' / 'lvis_v1_pseudo.json').write_text(
        json.dumps(pseudo))
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'lvis_traveler',
        'mask-rcnn_r50_fpn_traveler-stage1-eql-self-training_'
        'sample1e-3_ms-1x_lvis-v1.py'))
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.datasets[0].dataset.data_root = str(tmp_path) + '/'
    ds_cfg.datasets[1].data_root = str(tmp_path) + '/'
    for d in (ds_cfg.datasets[0].dataset, ds_cfg.datasets[1]):
        d.pipeline = []
        d.filter_cfg = dict(filter_empty_gt=True, min_size=0)
    ds = DATASETS.build(ds_cfg)
    # one ground-truth image (repeat factor 1 for a 1-image set) + two
    # pseudo-labelled images
    assert len(ds) == 3
    assert ds.metainfo['classes'] == ('two', 'five', 'nine')
    info = ds.datasets[1].get_data_info(1)
    assert info['img_path'].endswith('unl/b.jpg')
    assert [i['bbox_label'] for i in info['instances']] == [0]


def test_labels_follow_the_categories_file_order():
    """Categories listed out of id order: label k is the k-th category of
    the file (MMDetection's LVIS datasets label them so) and the written
    file keeps that order."""
    cats = [CATS[2], CATS[0], CATS[1]]  # ids 9, 2, 5
    preds = [dict(bboxes=np.array([[1., 1., 9., 9.], [2., 2., 8., 8.],
                                   [3., 3., 7., 7.]]),
                  scores=np.array([0.9, 0.8, 0.7]),
                  labels=np.array([0, 1, 2]))]
    out = predictions_to_lvis(IMAGES[:1], preds, cats, score_thr=0.5)
    assert [c['id'] for c in out['categories']] == [9, 2, 5]
    got = sorted((a['score'], a['category_id']) for a in out['annotations'])
    assert got == [(0.7, 5), (0.8, 2), (0.9, 9)]
