"""Shared fixtures of the image-level tests: a tiny Mask R-CNN config
(ResNet-18 layout with 8 base channels, 16-channel FPN, 3 classes; 64 x 64
images) and hand-built DetDataSamples of both kinds."""
import copy
import os.path as osp
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.structures import InstanceData

import mmdet
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks

__all__ = ['MASK_RCNN', 'SIZE', 'NUM_CLASSES', 'tiny_mask_rcnn_cfg',
           'make_sample', 'rect_masks']

MASK_RCNN = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs',
                     '_base_', 'models', 'mask-rcnn_r50_fpn.py')
SIZE = 64
NUM_CLASSES = 3


def tiny_mask_rcnn_cfg(roi_head_type: str = 'ImageLabelRoIHead',
                       detector_type: str = 'ImageLevelTwoStageDetector',
                       **roi_head_kwargs) -> ConfigDict:
    """The model config of a tiny Mask R-CNN (for ``MODELS.build``)."""
    model = copy.deepcopy(Config.fromfile(MASK_RCNN).model.to_dict())
    model['type'] = detector_type
    model['backbone'].update(depth=18, base_channels=8, init_cfg=None,
                             frozen_stages=-1)
    model['neck'].update(in_channels=[8, 16, 32, 64], out_channels=16)
    model['rpn_head'].update(in_channels=16, feat_channels=16)
    roi = model['roi_head']
    roi['type'] = roi_head_type
    roi['bbox_roi_extractor']['out_channels'] = 16
    roi['bbox_head'].update(in_channels=16, fc_out_channels=32,
                            num_classes=NUM_CLASSES)
    roi['mask_roi_extractor']['out_channels'] = 16
    roi['mask_roi_extractor']['roi_layer']['output_size'] = 7
    roi['mask_head'].update(in_channels=16, conv_out_channels=16,
                            roi_feat_size=7, num_convs=1,
                            num_classes=NUM_CLASSES)
    roi.update(roi_head_kwargs)
    train = model['train_cfg']
    train['rpn']['sampler']['num'] = 64
    train['rpn_proposal'].update(nms_pre=200, max_per_img=50)
    train['rcnn']['sampler']['num'] = 32
    train['rcnn']['mask_size'] = 14
    model['test_cfg']['rpn'].update(nms_pre=200, max_per_img=50)
    return ConfigDict(model)


def rect_masks(boxes: Sequence[Sequence[float]],
               size: int = SIZE) -> BitmapMasks:
    """Filled box rectangles as BitmapMasks."""
    m = np.zeros((len(boxes), size, size), dtype=np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        m[i, int(y1):int(y2), int(x1):int(x2)] = 1
    return BitmapMasks(m, size, size)


def make_sample(boxes: Sequence[Sequence[float]],
                labels: Sequence[int],
                image_level: bool = False,
                masks: Optional[BitmapMasks] = None,
                paste_source: Optional[Sequence[int]] = None,
                size: int = SIZE) -> DetDataSample:
    """A training DetDataSample of a ``size x size`` image (no resize)."""
    meta = dict(img_shape=(size, size), ori_shape=(size, size),
                pad_shape=(size, size), batch_input_shape=(size, size),
                scale_factor=(1.0, 1.0), img_id=0)
    if image_level:
        meta['image_level'] = True
    sample = DetDataSample(metainfo=meta)
    gt = InstanceData()
    # plain tensors, as DetDataPreprocessor(boxtype2tensor=True) gives them
    gt.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    gt.labels = torch.tensor(labels, dtype=torch.long)
    gt.masks = masks if masks is not None else rect_masks(boxes, size)
    if paste_source is not None:
        gt.paste_source = torch.tensor(paste_source, dtype=torch.long)
    sample.gt_instances = gt
    return sample
