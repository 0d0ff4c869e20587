"""Two-stage detector trained on batches that mix detection samples and
image-level samples (image + class label(s) + optional object box).

Training step (:meth:`ImageLevelTwoStageDetector.loss`), ours:

1. ``x = extract_feat(all images)``; the batch is split by the
   ``image_level`` meta flag
   (:func:`~longtail_plugin.models.utils.split_image_level`).
2. RPN loss and proposals on the detection samples only (``x`` sliced on the
   batch dimension, class labels set to 0 as ``TwoStageDetector`` does). An
   image-level sample has no instance annotation, so it gives the RPN no
   loss. A batch without detection sample still returns ``loss_rpn_cls`` and
   ``loss_rpn_bbox``: zeros that keep the graph (``0 *`` a sum over one
   entry of each RPN parameter), so every batch has the same keys and every
   parameter is used (distributed training).
3. Proposals of an image-level sample, by the RoI head's class attribute
   ``image_level_proposals``:

   * ``'given'`` (default): its ground-truth region boxes
     (``gt_instances.bboxes``: the annotated box, or the whole image);
   * ``'rpn'``: the RPN's proposals (``train_cfg.rpn_proposal``, as for the
     detection samples), computed without gradient (Detic's image-label
     loss picks one of them).

4. ``roi_head.loss(x, proposals in batch order, batch_data_samples)``; the
   head (an :class:`~longtail_plugin.models.roi_heads.ImageLevelRoIHead`)
   splits the batch again and returns the same keys whatever the mix.

``predict`` / ``_forward`` are ``TwoStageDetector``'s: test data holds no
image-level sample. A batch without image-level sample trains exactly like
``TwoStageDetector`` (RPN on the whole batch). The split and the zero keys
are our design for CLIS ("Collaborative Learning with Image-level
Supervision", waveboo/CLIS; no code released) and for the Detic-style
baseline (Zhou et al., ECCV 2022).

Config (a Mask R-CNN config switches the type and the RoI head)::

    model = dict(type='ImageLevelTwoStageDetector',
                 roi_head=dict(type='ImageLabelRoIHead', ...), ...)
"""
import copy
from typing import Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import InstanceList
from ..utils import select_levels, split_image_level

__all__ = ['ImageLevelTwoStageDetector']

PROPOSAL_SOURCES = ('given', 'rpn')


@MODELS.register_module()
class ImageLevelTwoStageDetector(TwoStageDetector):
    """``TwoStageDetector`` whose training batches may hold image-level
    samples (see the module docstring).

    Args:
        **kwargs: as :class:`mmdet.models.detectors.TwoStageDetector`.
    """

    #: keys of the RPN losses, given as zeros when no detection sample
    rpn_loss_keys: Tuple[str, ...] = ('loss_rpn_cls', 'loss_rpn_bbox')

    def image_level_proposal_source(self) -> str:
        """``roi_head.image_level_proposals`` (``'given'`` by default)."""
        source = getattr(self.roi_head, 'image_level_proposals', 'given')
        if source not in PROPOSAL_SOURCES:
            raise ValueError(
                f'{type(self.roi_head).__name__}.image_level_proposals must '
                f'be one of {PROPOSAL_SOURCES}, got {source!r}')
        if source == 'rpn' and not self.with_rpn:
            raise ValueError(
                f'{type(self.roi_head).__name__} takes the proposals of '
                "image-level samples from the RPN (image_level_proposals="
                "'rpn') but the model has no rpn_head")
        return source

    def _zero_rpn_losses(self) -> dict:
        params = [p for p in self.rpn_head.parameters() if p.requires_grad]
        zero = sum(p.view(-1)[0] for p in params) * 0.0 if params else \
            torch.zeros((), device=next(self.parameters()).device)
        return {key: zero for key in self.rpn_loss_keys}

    def _rpn_loss_and_predict(self, x: Tuple[Tensor],
                              data_samples: SampleList) -> tuple:
        """``TwoStageDetector``'s RPN step on ``data_samples``."""
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        rpn_data_samples = copy.deepcopy(data_samples)
        for data_sample in rpn_data_samples:
            data_sample.gt_instances.labels = torch.zeros_like(
                data_sample.gt_instances.labels)
        rpn_losses, results = self.rpn_head.loss_and_predict(
            x, rpn_data_samples, proposal_cfg=proposal_cfg)
        for key in list(rpn_losses.keys()):
            if 'loss' in key and 'rpn' not in key:
                rpn_losses[f'rpn_{key}'] = rpn_losses.pop(key)
        return rpn_losses, results

    def _image_level_proposals(self, x: Tuple[Tensor],
                               data_samples: SampleList,
                               source: str) -> InstanceList:
        """Proposals of image-level samples (``x`` sliced to them)."""
        if source == 'given':
            results = []
            for sample in data_samples:
                boxes = get_box_tensor(sample.gt_instances.bboxes)
                boxes = boxes.to(device=x[0].device, dtype=x[0].dtype)
                results.append(
                    InstanceData(
                        bboxes=boxes,
                        scores=boxes.new_ones(boxes.size(0)),
                        labels=torch.zeros(
                            boxes.size(0), dtype=torch.long,
                            device=boxes.device)))
            return results
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        with torch.no_grad():
            outs = self.rpn_head(x)
            return self.rpn_head.predict_by_feat(
                *outs,
                batch_img_metas=[s.metainfo for s in data_samples],
                cfg=proposal_cfg,
                rescale=False)

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> dict:
        """Losses of a batch mixing detection and image-level samples."""
        det_idx, img_idx = split_image_level(batch_data_samples)
        if not img_idx:
            return super().loss(batch_inputs, batch_data_samples)
        if not callable(getattr(self.roi_head, 'image_level_loss', None)):
            raise TypeError(
                'ImageLevelTwoStageDetector: the batch holds image-level '
                'samples but model.roi_head.type is '
                f'{type(self.roi_head).__name__!r}; use an ImageLevelRoIHead '
                "subclass (e.g. 'ImageLabelRoIHead' or 'CLISRoIHead')")
        source = self.image_level_proposal_source()
        x = self.extract_feat(batch_inputs)
        losses = dict()
        rpn_results_list: list = [None] * len(batch_data_samples)
        if self.with_rpn:
            if det_idx:
                rpn_losses, det_results = self._rpn_loss_and_predict(
                    select_levels(x, det_idx),
                    [batch_data_samples[i] for i in det_idx])
                for i, res in zip(det_idx, det_results):
                    rpn_results_list[i] = res
            else:
                rpn_losses = self._zero_rpn_losses()
            losses.update(rpn_losses)
        else:
            for i in det_idx:
                proposals = batch_data_samples[i].get('proposals', None)
                if proposals is None:
                    raise ValueError(
                        'ImageLevelTwoStageDetector without rpn_head needs '
                        f'pre-computed proposals in data sample {i}')
                rpn_results_list[i] = proposals
        img_results = self._image_level_proposals(
            select_levels(x, img_idx),
            [batch_data_samples[i] for i in img_idx], source)
        for i, res in zip(img_idx, img_results):
            rpn_results_list[i] = res
        losses.update(
            self.roi_head.loss(x, rpn_results_list, batch_data_samples))
        return losses
