"""Mask R-CNN RoI head that gives the mask RoI extractor each positive
RoI's mask/box area ratio, for the ratio-aware mask-proposal assignment
(:class:`.roi_extractors.RatioAwareRoIExtractor`; Tan et al.,
arXiv:2009.01559, the LVIS Challenge 2020 winners' recipe - the formulas
are ours, see the extractor's docstring).

Training: a positive RoI matched to ground truth ``g`` gets

    r_g = area(mask_g) / area(box_g), clamped to [0, 1]

(``mask_g`` as loaded, bitmap or polygon, in the same resized image as
``box_g``): a property of the object, independent of how well the proposal
fits it. The extractor clamps it to ``[min_ratio, 1]``.

Inference, ``test_ratio`` (our choices; the default is to be settled by
the benchmark):

* ``'default'`` (default): no ratio is passed; the extractor uses its
  ``default_ratio`` (default 1, i.e. MMDetection's box-scale mapping).
* ``'predicted_mask'``: two passes of the mask branch. The first pools at
  the ``default_ratio`` level and predicts the mask of the detected class;
  the fraction of the RoI's ``M x M`` mask grid above
  ``test_cfg.mask_thr_binary`` is the ratio (the grid covers the box, so
  this is predicted mask area / box area); the second pass pools at the
  level that ratio selects and gives the output masks. Twice the mask-head
  cost at test time, no new parameters.

Everything else is :class:`mmdet.models.roi_heads.StandardRoIHead`. Needs
its own mask RoI extractor (``share_roi_extractor=False``, the default
whenever ``mask_roi_extractor`` is given) of type ``RatioAwareRoIExtractor``.

Config::

    model = dict(roi_head=dict(
        type='RatioAwareRoIHead',
        test_ratio='default',        # or 'predicted_mask'
        mask_roi_extractor=dict(type='RatioAwareRoIExtractor', gamma=1.0,
                                min_ratio=1 / 16)))
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi, get_box_tensor
from mmdet.utils import InstanceList
from .roi_extractors import RatioAwareRoIExtractor

__all__ = ['RatioAwareRoIHead', 'mask_box_area_ratios']


def mask_box_area_ratios(gt_instances) -> Tensor:
    """``area(mask) / area(box)`` of each ground-truth instance, in [0, 1].

    ``gt_instances`` holds ``bboxes`` (tensor or box type) and ``masks``
    (``BitmapMasks``, ``PolygonMasks`` or a ``[n, H, W]`` tensor).
    """
    boxes = get_box_tensor(gt_instances.bboxes)
    masks = gt_instances.masks
    if torch.is_tensor(masks):
        areas = masks.flatten(1).float().sum(1)
    else:
        areas = torch.as_tensor(masks.areas, dtype=torch.float32)
    areas = areas.to(device=boxes.device, dtype=torch.float32)
    box_areas = ((boxes[:, 2] - boxes[:, 0]).clamp(min=0) *
                 (boxes[:, 3] - boxes[:, 1]).clamp(min=0)).float()
    return (areas / box_areas.clamp(min=1e-6)).clamp(min=0.0, max=1.0)


@MODELS.register_module()
class RatioAwareRoIHead(StandardRoIHead):
    """``StandardRoIHead`` passing ground-truth mask/box area ratios of the
    positive RoIs to a ``RatioAwareRoIExtractor`` in training.

    Args:
        test_ratio: ``'default'`` or ``'predicted_mask'`` (see the module
            docstring).
        **kwargs: as :class:`mmdet.models.roi_heads.StandardRoIHead`.
    """

    TEST_RATIOS = ('default', 'predicted_mask')

    def __init__(self, *args, test_ratio: str = 'default', **kwargs) -> None:
        if test_ratio not in self.TEST_RATIOS:
            raise ValueError(
                f'RatioAwareRoIHead: test_ratio must be one of '
                f'{self.TEST_RATIOS}, got {test_ratio!r}')
        super().__init__(*args, **kwargs)
        self.test_ratio = test_ratio
        self._test_ratios: Optional[Tensor] = None  # for one predict call

    def init_mask_head(self, mask_roi_extractor, mask_head) -> None:
        super().init_mask_head(mask_roi_extractor, mask_head)
        if self.share_roi_extractor or not isinstance(
                self.mask_roi_extractor, RatioAwareRoIExtractor):
            got = None if mask_roi_extractor is None else \
                mask_roi_extractor.get('type')
            raise ValueError(
                'RatioAwareRoIHead needs roi_head.mask_roi_extractor of type '
                f"'RatioAwareRoIExtractor' (got {got!r}): the ratio-aware "
                'assignment maps mask RoIs to levels on their own.')

    def mask_loss(self, x: Tuple[Tensor],
                  sampling_results: List[SamplingResult], bbox_feats: Tensor,
                  batch_gt_instances: InstanceList) -> dict:
        """As ``StandardRoIHead.mask_loss``, with each positive RoI pooled
        at the level its matched ground truth's ratio selects."""
        pos_rois = bbox2roi([res.pos_priors for res in sampling_results])
        ratios = torch.cat([
            mask_box_area_ratios(gt)[res.pos_assigned_gt_inds.long()]
            for res, gt in zip(sampling_results, batch_gt_instances)
        ]) if sampling_results else pos_rois.new_zeros((0, ))
        mask_results = self._mask_forward(x, pos_rois, ratios=ratios)
        mask_loss_and_target = self.mask_head.loss_and_target(
            mask_preds=mask_results['mask_preds'],
            sampling_results=sampling_results,
            batch_gt_instances=batch_gt_instances,
            rcnn_train_cfg=self.train_cfg)
        mask_results.update(loss_mask=mask_loss_and_target['loss_mask'])
        return mask_results

    def _mask_forward(self,
                      x: Tuple[Tensor],
                      rois: Tensor = None,
                      pos_inds: Optional[Tensor] = None,
                      bbox_feats: Optional[Tensor] = None,
                      ratios: Optional[Tensor] = None) -> dict:
        """Mask head forward; ``ratios`` (one per RoI) reach the extractor,
        ``None`` leaves its ``default_ratio``."""
        if ratios is None:
            ratios = self._test_ratios
        if rois is None:
            raise ValueError('RatioAwareRoIHead: mask RoIs are pooled by '
                             'their own extractor; rois must be given')
        mask_feats = self.mask_roi_extractor(
            x[:self.mask_roi_extractor.num_inputs], rois, ratios=ratios)
        if self.with_shared_head:
            mask_feats = self.shared_head(mask_feats)
        mask_preds = self.mask_head(mask_feats)
        return dict(mask_preds=mask_preds, mask_feats=mask_feats)

    def predicted_mask_ratios(self, x: Tuple[Tensor],
                              results_list: InstanceList) -> Tensor:
        """Ratio of each detection from a first mask pass: the fraction of
        its mask grid whose probability for the detected class exceeds
        ``test_cfg.mask_thr_binary``."""
        mask_rois = bbox2roi([res.bboxes for res in results_list])
        preds = self._mask_forward(x, mask_rois)['mask_preds']
        if self.mask_head.class_agnostic:
            preds = preds[:, 0]
        else:
            labels = torch.cat([res.labels for res in results_list])
            preds = preds[torch.arange(preds.size(0),
                                       device=preds.device), labels]
        fg = preds.sigmoid() > self.test_cfg.mask_thr_binary
        return fg.flatten(1).float().mean(1)

    def predict_mask(self,
                     x: Tuple[Tensor],
                     batch_img_metas: List[dict],
                     results_list: InstanceList,
                     rescale: bool = False) -> InstanceList:
        """``StandardRoIHead.predict_mask``; with
        ``test_ratio='predicted_mask'`` the masks come from a second pass
        pooled at the levels the first pass's mask ratios select."""
        if self.test_ratio == 'predicted_mask' and sum(
                len(res) for res in results_list) > 0:
            self._test_ratios = self.predicted_mask_ratios(x, results_list)
        try:
            return super().predict_mask(x, batch_img_metas, results_list,
                                        rescale)
        finally:
            self._test_ratios = None
