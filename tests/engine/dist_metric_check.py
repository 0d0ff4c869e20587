"""Test helper run by ``test_distributed_training.py``, under
``torch.distributed.run`` or alone; not a test module.

``LongTailLVISMetric`` through MMEngine's ``Evaluator`` (the calls the
runner's val/test loops make) on fixed predictions made from the ground
truth (jittered boxes, some wrong labels, false positives; box-shaped
masks), so that the APs are far from 0 and 1. Each process takes the
images MMEngine's ``DefaultSampler`` gives it; ``Evaluator.evaluate`` gathers
them on rank 0. Rank 0 then also computes the metric in this one process
over all images (``compute_metrics`` on the complete list, no gather) and
writes both to the JSON file named on the command line.

    python dist_metric_check.py ANN_FILE OUT_JSON
"""
import json
import os
import sys

import numpy as np
import pycocotools.mask as mask_util
import torch
import torch.distributed as dist
from mmengine.dataset import DefaultSampler
from mmengine.evaluator import Evaluator

from longtail_plugin.evaluation import LongTailLVISMetric


def predictions(ann: dict, seed: int = 0) -> list:
    """One data sample per image, in file order, the same in every
    process (each image's random stream depends only on its id)."""
    cat_ids = [c['id'] for c in ann['categories']]  # the metric's order
    label_of = {c: i for i, c in enumerate(cat_ids)}
    by_image = {}
    for a in ann['annotations']:
        by_image.setdefault(a['image_id'], []).append(a)
    samples = []
    for img in ann['images']:
        rng = np.random.default_rng(seed * 100003 + img['id'])
        h, w = img['height'], img['width']
        boxes, labels, masks = [], [], []
        for a in by_image.get(img['id'], []):
            if rng.random() < 0.15:
                continue  # missed
            x, y, bw, bh = a['bbox']
            j = rng.normal(0, 0.1, 4) * [bw, bh, bw, bh]
            boxes.append([x + j[0], y + j[1], x + bw + j[2], y + bh + j[3]])
            labels.append(label_of[a['category_id']] if rng.random() < 0.8
                          else int(rng.integers(len(cat_ids))))
            # the object's mask, shifted as the box's centre
            rle = mask_util.merge(
                mask_util.frPyObjects(a['segmentation'], h, w))
            shift = np.round([(j[1] + j[3]) / 2, (j[0] + j[2]) / 2])
            masks.append(np.roll(mask_util.decode(rle).astype(bool),
                                 shift.astype(int), axis=(0, 1)))
        for _ in range(2):  # false positives
            x1, y1 = rng.uniform(0, 0.7 * w), rng.uniform(0, 0.7 * h)
            x2 = x1 + rng.uniform(8, 0.3 * w)
            y2 = y1 + rng.uniform(8, 0.3 * h)
            boxes.append([x1, y1, x2, y2])
            labels.append(int(rng.integers(len(cat_ids))))
            m = np.zeros((h, w), dtype=bool)
            m[int(y1):int(y2), int(x1):int(x2)] = True
            masks.append(m)
        b = np.clip(np.array(boxes, dtype=np.float32), 0, [w, h, w, h])
        masks = np.stack(masks)
        samples.append(dict(
            img_id=img['id'], ori_shape=(h, w),
            pred_instances=dict(
                bboxes=torch.from_numpy(b),
                scores=torch.from_numpy(
                    rng.uniform(0.05, 1.0, len(b)).astype(np.float32)),
                labels=torch.tensor(labels, dtype=torch.long),
                masks=torch.from_numpy(masks))))
    return samples


def main(ann_file: str, out: str) -> None:
    if int(os.environ.get('WORLD_SIZE', '1')) > 1:
        dist.init_process_group('gloo')
    with open(ann_file) as f:
        samples = predictions(json.load(f))

    def metric():
        return LongTailLVISMetric(ann_file=ann_file, metric=['bbox', 'segm'])

    evaluator = Evaluator([metric()])
    for i in DefaultSampler(samples, shuffle=False):
        evaluator.process(data_samples=[samples[i]], data_batch={})
    gathered = evaluator.evaluate(len(samples))
    if not dist.is_initialized() or dist.get_rank() == 0:
        single = metric()
        single.process({}, samples)
        single_metrics = single.compute_metrics(single.results)
        with open(out, 'w') as f:
            json.dump(dict(
                world_size=dist.get_world_size()
                if dist.is_initialized() else 1,
                gathered=gathered,
                gathered_per_category=evaluator.metrics[0].last_per_category,
                single=single_metrics,
                single_per_category=single.last_per_category), f)
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
