"""RoI heads that drive a RefineMask mask head in MMDetection 3.x.

Zhang et al., "RefineMask: Towards High-Quality Instance Segmentation with
Fine-Grained Features", CVPR 2021.

A RefineMask head needs more than the 14x14 RoI features a stock mask head
receives: the stride-4 FPN level (P2) for its semantic branch, the RoIs and
their labels (GT labels in training, predicted labels at test time). The two
heads here pass them:

* :class:`RefineMaskRoIHead` (``StandardRoIHead``): Mask R-CNN with RefineMask.
* :class:`RefineMaskCascadeRoIHead` (``CascadeRoIHead``): Cascade Mask R-CNN
  with a RefineMask head at every cascade stage. Each stage's head has its own
  semantic branch and semantic loss; its losses are scaled by the cascade
  ``stage_loss_weights`` like any mask loss. At test time every stage predicts
  its merged 112x112 probabilities for the final boxes and their mean is
  pasted (the rule of Cascade Mask R-CNN's ``merge_aug_masks``). Hybrid Task
  Cascade (``HybridTaskCascadeRoIHead``, with its own semantic head and mask
  information flow) is not supported.

Inference handles several images per batch: the semantic branch runs once on
the whole batch, the RoI part runs over all RoIs of the batch in chunks of
``mask_chunk_size`` (default 100) RoIs, and the masks are pasted per image.
The RoI part of the mask head is deterministic per RoI, so batched and
one-by-one inference agree.
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from mmdet.models.roi_heads import CascadeRoIHead, StandardRoIHead
from mmdet.models.utils import empty_instances
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import InstanceList

__all__ = ['RefineMaskRoIHead', 'RefineMaskCascadeRoIHead']


def _fp32_if_bf16(feats):
    """mmcv's RoIAlign has no bfloat16 kernel: hand it float32 maps."""
    return [f.float() if f.dtype == torch.bfloat16 else f for f in feats]


def _check_refine_mask_cfg(mask_roi_extractor, mask_chunk_size) -> None:
    if mask_roi_extractor is None:
        raise ValueError(
            'RefineMask needs its own mask_roi_extractor (14x14 RoIAlign '
            'over P2..P5); sharing the bbox extractor is not supported')
    if mask_chunk_size is not None and mask_chunk_size < 1:
        raise ValueError('mask_chunk_size must be >= 1 or None')


class RefineMaskRoIMixin:
    """Shared RefineMask plumbing (construction, forward, loss, chunked
    inference) of the Mask R-CNN and the cascade RoI heads.

    Args:
        mask_chunk_size (int, optional): RoIs per chunk of the mask head at
            inference (the authors use 100). ``None``: all at once.
        semantic_in_index (int): Index of the stride-4 level in the neck
            outputs. Defaults to 0 (P2).
        **kwargs: Arguments of the host RoI head.
    """

    def __init__(self,
                 mask_chunk_size: Optional[int] = 100,
                 semantic_in_index: int = 0,
                 **kwargs) -> None:
        if kwargs.get('mask_head') is not None:
            _check_refine_mask_cfg(kwargs.get('mask_roi_extractor'),
                                   mask_chunk_size)
        super().__init__(**kwargs)
        self.mask_chunk_size = mask_chunk_size
        self.semantic_in_index = semantic_in_index

    def predict_mask(self,
                     x: Tuple[Tensor],
                     batch_img_metas: List[dict],
                     results_list: InstanceList,
                     rescale: bool = False) -> InstanceList:
        """Batched, chunked RefineMask inference on the detected boxes; with
        several stages (cascade) their merged probabilities are averaged,
        then pasted. The host gives its stages by ``mask_stages()``."""
        return self._predict_refined_masks(x, batch_img_metas, results_list,
                                           rescale, self.mask_stages())

    def _refine_mask_train(self, mask_head, mask_roi_extractor,
                           x: Tuple[Tensor], sampling_results,
                           batch_gt_instances: InstanceList,
                           rcnn_train_cfg) -> dict:
        pos_rois = bbox2roi([res.pos_priors for res in sampling_results])
        pos_labels = torch.cat([res.pos_gt_labels for res in sampling_results])
        feats = _fp32_if_bf16(x[:mask_roi_extractor.num_inputs])
        mask_feats = mask_roi_extractor(feats, pos_rois)
        stage_preds, semantic_pred = mask_head(
            mask_feats, x[self.semantic_in_index], pos_rois, pos_labels)
        out = mask_head.loss_and_target(
            stage_preds=stage_preds,
            semantic_pred=semantic_pred,
            sampling_results=sampling_results,
            batch_gt_instances=batch_gt_instances,
            rcnn_train_cfg=rcnn_train_cfg)
        return dict(
            mask_preds=stage_preds,
            semantic_pred=semantic_pred,
            mask_feats=mask_feats,
            loss_mask=out['loss_mask'],
            mask_targets=out['mask_targets'])

    def _refine_mask_logits(self, mask_head, mask_roi_extractor,
                            x: Tuple[Tensor], rois: Tensor,
                            labels: Tensor) -> Tensor:
        """Merged final logits ``(N, 1, S, S)``, computed in RoI chunks."""
        semantic = mask_head.forward_semantic(x[self.semantic_in_index])
        feats = _fp32_if_bf16(x[:mask_roi_extractor.num_inputs])
        n = rois.size(0)
        step = n if not self.mask_chunk_size else self.mask_chunk_size
        outs = []
        for start in range(0, n, max(step, 1)):
            r = rois[start:start + step]
            lab = labels[start:start + step]
            mask_feats = mask_roi_extractor(feats, r)
            preds = mask_head.forward_instance(mask_feats, semantic, r, lab)
            outs.append(mask_head.merge_predictions(preds))
        return torch.cat(outs) if outs else rois.new_zeros(
            (0, 1, mask_head.stage_sup_size[-1], mask_head.stage_sup_size[-1]))

    def _predict_refined_masks(self, x: Tuple[Tensor],
                               batch_img_metas: List[dict],
                               results_list: InstanceList, rescale: bool,
                               heads: List[tuple]) -> InstanceList:
        """Masks of the detected boxes from one or more ``(mask_head,
        mask_roi_extractor)`` pairs (cascade stages): their sigmoid
        probabilities are averaged and pasted by the last head."""
        mask_rois = bbox2roi([res.bboxes for res in results_list])
        if mask_rois.shape[0] == 0:
            return empty_instances(
                batch_img_metas,
                mask_rois.device,
                task_type='mask',
                instance_results=results_list,
                mask_thr_binary=self.test_cfg.mask_thr_binary)
        labels = self._labels_of(results_list)
        probs = None
        for head, extractor in heads:
            p = self._refine_mask_logits(head, extractor, x, mask_rois,
                                         labels).sigmoid()
            probs = p if probs is None else probs + p
        probs = (probs / len(heads)).split([len(r) for r in results_list], 0)
        return heads[-1][0].predict_by_feat(
            mask_probs=probs,
            results_list=results_list,
            batch_img_metas=batch_img_metas,
            rcnn_test_cfg=self.test_cfg,
            rescale=rescale)

    @staticmethod
    def _labels_of(results_list: InstanceList) -> Tensor:
        return torch.cat([res.labels for res in results_list])


@MODELS.register_module()
class RefineMaskRoIHead(RefineMaskRoIMixin, StandardRoIHead):
    """Mask R-CNN RoI head with a RefineMask mask head.

    Arguments: ``mask_chunk_size`` and ``semantic_in_index`` (see
    :class:`RefineMaskRoIMixin`) and those of :class:`StandardRoIHead`.
    """

    def _mask_forward(self,
                      x: Tuple[Tensor],
                      rois: Tensor = None,
                      pos_inds: Optional[Tensor] = None,
                      bbox_feats: Optional[Tensor] = None,
                      labels: Optional[Tensor] = None) -> dict:
        """Tensor-mode forward (``StandardRoIHead.forward``): merged final
        logits of ``rois`` for ``labels`` (label 0 when not given)."""
        assert rois is not None, 'RefineMask needs rois'
        if labels is None:
            labels = rois.new_zeros(rois.size(0), dtype=torch.long)
        logits = self._refine_mask_logits(self.mask_head,
                                          self.mask_roi_extractor, x, rois,
                                          labels)
        return dict(mask_preds=logits)

    def mask_loss(self, x: Tuple[Tensor], sampling_results,
                  bbox_feats: Tensor,
                  batch_gt_instances: InstanceList) -> dict:
        """Forward and loss of the RefineMask head on the positive RoIs."""
        return self._refine_mask_train(self.mask_head,
                                       self.mask_roi_extractor, x,
                                       sampling_results, batch_gt_instances,
                                       self.train_cfg)

    def mask_stages(self) -> list:
        """``[(mask_head, mask_roi_extractor)]``: the one stage."""
        return [(self.mask_head, self.mask_roi_extractor)]


@MODELS.register_module()
class RefineMaskCascadeRoIHead(RefineMaskRoIMixin, CascadeRoIHead):
    """Cascade RoI head with a RefineMask mask head at every stage.

    Arguments: ``mask_chunk_size`` and ``semantic_in_index`` (see
    :class:`RefineMaskRoIMixin`) and those of :class:`CascadeRoIHead`.
    """

    def _mask_forward(self, stage: int, x: Tuple[Tensor], rois: Tensor,
                      labels: Optional[Tensor] = None) -> dict:
        if labels is None:
            labels = rois.new_zeros(rois.size(0), dtype=torch.long)
        logits = self._refine_mask_logits(self.mask_head[stage],
                                          self.mask_roi_extractor[stage], x,
                                          rois, labels)
        return dict(mask_preds=logits)

    def mask_loss(self, stage: int, x: Tuple[Tensor], sampling_results,
                  batch_gt_instances: InstanceList) -> dict:
        return self._refine_mask_train(self.mask_head[stage],
                                       self.mask_roi_extractor[stage], x,
                                       sampling_results, batch_gt_instances,
                                       self.train_cfg[stage])

    def mask_stages(self) -> list:
        """``(mask_head, mask_roi_extractor)`` of every cascade stage."""
        return list(zip(self.mask_head, self.mask_roi_extractor))
