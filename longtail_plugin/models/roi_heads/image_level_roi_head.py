"""Base RoI head for training batches that mix detection samples and
image-level samples (an image, its class label(s), optionally the object's
box; no instance annotation).

Used with :class:`~longtail_plugin.models.detectors.ImageLevelTwoStageDetector`
(which runs the RPN on the detection samples only and gives every
image-level sample its proposals, see ``image_level_proposals`` below) by the
two image-level methods of the plugin:

* :class:`~longtail_plugin.models.roi_heads.ImageLabelRoIHead`, the
  Detic-style image-label loss (Zhou et al., "Detecting Twenty-thousand
  Classes using Image-level Supervision", ECCV 2022);
* ``CLISRoIHead`` (CLIS: "Collaborative Learning with Image-level
  Supervision", waveboo/CLIS). The paper released no model code: this split
  of the head, its hooks and the pasted-instance rule below are our design.

Training, :meth:`ImageLevelRoIHead.loss`::

    det_idx, img_idx = split_image_level(batch_data_samples)
    losses = detection_loss(x[det_idx], rpn_results[det_idx], det_samples)
    losses.update(image_level_loss(x, rpn_results, samples, det_idx, img_idx))

Hooks a subclass uses (the contract of ``/work/coord/clis_contract.md``):

``image_level_proposals`` (class attribute, ``'given'`` or ``'rpn'``)
    Read by the detector. ``'given'``: an image-level sample's proposals are
    its ground-truth region boxes (``gt_instances.bboxes``: the given box or
    the whole image). ``'rpn'``: the RPN's proposals for it (computed
    without gradient, the RPN gets no loss from image-level samples).

``detection_loss(x, rpn_results_list, batch_data_samples) -> dict``
    :class:`~mmdet.models.roi_heads.StandardRoIHead`'s loss on the detection
    subset (``x`` already sliced to it), with one change: instances pasted
    from image-level samples (``gt_instances.paste_source >= 0``; the field
    is optional, see ``ImageLevelPaste``) give no mask target, because their
    masks are filled box rectangles, not object masks. A positive RoI
    assigned to such an instance still trains the classifier and the box
    regressor; it is only left out of the mask loss. An empty subset gives
    a zero (that keeps the graph) for every key of
    :meth:`detection_loss_keys`.

``detection_loss_keys() -> list``
    The keys :meth:`detection_loss` returns: ``loss_cls``, ``loss_bbox`` and
    the bbox head's accuracy key(s) (``acc``, or what a loss with
    ``custom_activation`` logs through ``get_accuracy``) when the head has a
    bbox branch, ``loss_mask`` when it has a mask branch. A subclass whose
    bbox head adds a loss extends the list (e.g. ``loss_objectness``). The
    zeros of an empty subset also cover every key the last non-empty call
    returned (for a ``loss_cls`` returning a dict of its own keys).

``image_level_loss(x, rpn_results_list, batch_data_samples, det_idx,
img_idx) -> dict``
    Abstract. Gets the features and proposals of the WHOLE batch (batch
    order) and both index lists; it is always called and must always return
    the same keys, zeros that keep the graph (see :meth:`zero_loss`) when
    ``img_idx`` is empty. It runs after :meth:`detection_loss`, which turns
    the detection samples' ``rpn_results_list[i].bboxes`` into ``.priors``
    (as ``StandardRoIHead.loss`` does): read proposals of the image-level
    samples only.

Zeros "with graph" are ``0 *`` (a sum over one entry of every parameter of
this head), so that every parameter takes part in the backward pass whatever
the batch holds (distributed training with ``find_unused_parameters=False``).

Test time is :class:`~mmdet.models.roi_heads.StandardRoIHead`'s (test data
holds no image-level samples).
"""
import copy
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import InstanceList
from ..utils import select_levels, split_image_level

__all__ = ['ImageLevelRoIHead']


def _positive_subset(res: SamplingResult, keep: Tensor) -> SamplingResult:
    """A shallow copy of ``res`` whose positives are those where ``keep``
    (what the mask head's ``loss_and_target`` reads: ``pos_priors``,
    ``pos_assigned_gt_inds``, ``pos_gt_labels``, ``pos_gt_bboxes``)."""
    sub = copy.copy(res)
    sub.pos_inds = res.pos_inds[keep]
    sub.pos_priors = res.pos_priors[keep]
    sub.pos_assigned_gt_inds = res.pos_assigned_gt_inds[keep]
    sub.pos_gt_labels = res.pos_gt_labels[keep]
    sub.pos_gt_bboxes = res.pos_gt_bboxes[keep]
    sub.pos_is_gt = res.pos_is_gt[keep]
    return sub


@MODELS.register_module()
class ImageLevelRoIHead(StandardRoIHead):
    """``StandardRoIHead`` for batches mixing detection and image-level
    samples; base of the image-level heads (see the module docstring for
    the hooks a subclass implements).

    Args:
        **kwargs: as :class:`mmdet.models.roi_heads.StandardRoIHead`.
    """

    #: where an image-level sample's proposals come from: 'given' | 'rpn'
    image_level_proposals: str = 'given'

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # keys of the last non-empty detection loss (a ``loss_cls`` that
        # returns a dict, e.g. SeesawLoss, logs keys no rule predicts)
        self._seen_detection_keys: List[str] = []

    # --- training ---------------------------------------------------------
    def loss(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
             batch_data_samples: SampleList) -> dict:
        """Detection loss on the detection samples plus the subclass's
        image-level loss; the same keys for every batch composition."""
        if len(rpn_results_list) != len(batch_data_samples):
            raise ValueError(
                f'{type(self).__name__}.loss: {len(rpn_results_list)} '
                f'proposal lists for {len(batch_data_samples)} samples')
        det_idx, img_idx = split_image_level(batch_data_samples)
        losses = self.detection_loss(
            select_levels(x, det_idx), [rpn_results_list[i] for i in det_idx],
            [batch_data_samples[i] for i in det_idx])
        image_losses = self.image_level_loss(x, rpn_results_list,
                                             batch_data_samples, det_idx,
                                             img_idx)
        clash = set(losses) & set(image_losses)
        if clash:
            raise KeyError(f'{type(self).__name__}: image_level_loss returns '
                           f'keys of the detection loss: {sorted(clash)}')
        losses.update(image_losses)
        return losses

    def detection_loss(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
                       batch_data_samples: SampleList) -> dict:
        """``StandardRoIHead.loss`` on detection samples (``x`` sliced to
        them), pasted instances left out of the mask loss; zeros with graph
        for :meth:`detection_loss_keys` when there is no sample."""
        if len(batch_data_samples) == 0:
            zero = self.zero_loss()
            keys = self.detection_loss_keys()
            keys += [k for k in self._seen_detection_keys if k not in keys]
            return {key: zero for key in keys}
        losses = StandardRoIHead.loss(self, x, rpn_results_list,
                                      batch_data_samples)
        self._seen_detection_keys = list(losses)
        return losses

    def detection_loss_keys(self) -> List[str]:
        """Keys of :meth:`detection_loss` (see the module docstring)."""
        keys: List[str] = []
        if self.with_bbox:
            keys += ['loss_cls', 'loss_bbox'] + self._accuracy_keys()
        if self.with_mask:
            keys.append('loss_mask')
        return keys

    def _accuracy_keys(self) -> List[str]:
        """What ``BBoxHead.loss`` logs as accuracy: ``acc``, or, for a loss
        with ``custom_activation``, the keys of its ``get_accuracy`` (asked
        once on a one-RoI background batch)."""
        head = self.bbox_head
        if not getattr(head, 'custom_activation', False):
            return ['acc']
        cached = getattr(self, '_acc_keys_cache', None)
        if cached is None:
            num_classes = head.num_classes
            channels = head.loss_cls.get_cls_channels(num_classes) \
                if getattr(head, 'custom_cls_channels', False) \
                else num_classes + 1
            param = next(head.parameters())
            with torch.no_grad():
                acc = head.loss_cls.get_accuracy(
                    param.new_zeros((1, channels)),
                    torch.full((1, ), num_classes, dtype=torch.long,
                               device=param.device))
            cached = list(acc)
            self._acc_keys_cache = cached
        return list(cached)

    def image_level_loss(self, x: Tuple[Tensor],
                         rpn_results_list: InstanceList,
                         batch_data_samples: SampleList, det_idx: List[int],
                         img_idx: List[int]) -> dict:
        """Loss of the image-level samples ``img_idx`` (abstract; see the
        module docstring for what an implementation must return)."""
        raise NotImplementedError(
            f'{type(self).__name__} must implement image_level_loss(x, '
            'rpn_results_list, batch_data_samples, det_idx, img_idx); use '
            'a subclass of ImageLevelRoIHead such as ImageLabelRoIHead or '
            'CLISRoIHead as model.roi_head.type')

    def zero_loss(self) -> Tensor:
        """A zero scalar that depends on every parameter of this head."""
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            p = next(self.parameters(), None)
            return torch.zeros(()) if p is None else p.new_zeros(())
        return sum(p.view(-1)[0] for p in params) * 0.0

    # --- mask loss without the pasted instances ---------------------------
    @staticmethod
    def pasted_positive_mask(res: SamplingResult,
                             gt_instances) -> Optional[Tensor]:
        """``True`` for each positive of ``res`` assigned to an original
        instance; ``None`` when no positive is assigned to a pasted one
        (``gt_instances.paste_source >= 0``) or the field is absent."""
        if 'paste_source' not in gt_instances:
            return None
        source = torch.as_tensor(gt_instances.paste_source,
                                 device=res.pos_assigned_gt_inds.device)
        if source.numel() == 0 or res.pos_assigned_gt_inds.numel() == 0:
            return None
        keep = source[res.pos_assigned_gt_inds.long()] < 0
        return None if bool(keep.all()) else keep

    def mask_loss(self, x: Tuple[Tensor],
                  sampling_results: List[SamplingResult], bbox_feats: Tensor,
                  batch_gt_instances: InstanceList) -> dict:
        """``StandardRoIHead.mask_loss`` where positives assigned to pasted
        instances get neither a mask target nor a mask prediction in the
        loss (the loss is averaged over the remaining positives; none left:
        ``mask_preds.sum()``, a zero with graph, as MMDetection does)."""
        keeps = [
            self.pasted_positive_mask(res, gt)
            for res, gt in zip(sampling_results, batch_gt_instances)
        ]
        if all(k is None for k in keeps):
            return super().mask_loss(x, sampling_results, bbox_feats,
                                     batch_gt_instances)
        # forward every positive, as the parent does, then drop the pasted
        if not self.share_roi_extractor:
            pos_rois = bbox2roi([res.pos_priors for res in sampling_results])
            mask_results = self._mask_forward(x, pos_rois)
        else:
            device = bbox_feats.device
            pos_inds = torch.cat([
                torch.cat([
                    torch.ones(res.pos_priors.shape[0], device=device,
                               dtype=torch.bool),
                    torch.zeros(res.neg_priors.shape[0], device=device,
                                dtype=torch.bool)
                ]) for res in sampling_results
            ])
            mask_results = self._mask_forward(
                x, pos_inds=pos_inds, bbox_feats=bbox_feats)
        full_keeps = [
            torch.ones(res.pos_priors.shape[0], dtype=torch.bool,
                       device=res.pos_priors.device) if k is None else k
            for res, k in zip(sampling_results, keeps)
        ]
        keep = torch.cat(full_keeps)
        kept_results = [
            _positive_subset(res, k)
            for res, k in zip(sampling_results, full_keeps)
        ]
        mask_preds = mask_results['mask_preds'][keep.to(
            mask_results['mask_preds'].device)]
        mask_loss_and_target = self.mask_head.loss_and_target(
            mask_preds=mask_preds,
            sampling_results=kept_results,
            batch_gt_instances=batch_gt_instances,
            rcnn_train_cfg=self.train_cfg)
        mask_results.update(mask_preds=mask_preds,
                            loss_mask=mask_loss_and_target['loss_mask'])
        return mask_results
