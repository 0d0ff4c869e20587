"""Tiny hand-made LVIS-format data used by several tests."""
import json


def box_ann(ann_id, img_id, cat_id, x, y, w, h):
    poly = [x, y, x + w, y, x + w, y + h, x, y + h]
    return dict(id=ann_id, image_id=img_id, category_id=cat_id,
                bbox=[x, y, w, h], area=w * h, segmentation=[poly])


def tiny_lvis_gt() -> dict:
    """Two 100x100 images, three categories (one rare, one common, one
    frequent), one ground-truth box of each category."""
    images = [
        dict(id=1, width=100, height=100, file_name='1.jpg',
             coco_url='http://images.cocodataset.org/val2017/1.jpg',
             neg_category_ids=[3], not_exhaustive_category_ids=[]),
        dict(id=2, width=100, height=100, file_name='2.jpg',
             coco_url='http://images.cocodataset.org/val2017/2.jpg',
             neg_category_ids=[1], not_exhaustive_category_ids=[]),
    ]
    cats = [
        dict(id=1, name='rare_thing', frequency='r', image_count=3,
             instance_count=4, synset='a.n.01'),
        dict(id=2, name='common_thing', frequency='c', image_count=40,
             instance_count=50, synset='b.n.01'),
        dict(id=3, name='frequent_thing', frequency='f', image_count=500,
             instance_count=900, synset='c.n.01'),
    ]
    anns = [
        box_ann(1, 1, 1, 10, 10, 40, 40),
        box_ann(2, 1, 2, 55, 55, 40, 40),
        box_ann(3, 2, 3, 20, 20, 50, 50),
    ]
    return dict(images=images, annotations=anns, categories=cats,
                info={}, licenses=[])


def write_json(obj, path) -> str:
    with open(path, 'w') as f:
        json.dump(obj, f)
    return str(path)
