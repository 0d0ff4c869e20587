"""RoI head of CLIS: detection with a decoupled box head, image-level
classification through the siamese branch, and a contrastive loss between
pasted instances and their image-level sources.

CLIS: "Collaborative Learning with Image-level Supervision" (waveboo/CLIS).
No model code was released: the losses' exact form, the pairing rule and
every default below are OUR design.

With :class:`~longtail_plugin.models.detectors.ImageLevelTwoStageDetector`
(``image_level_proposals = 'given'``: image-level samples skip the RPN) and
``ImageLevelPaste`` in the data preprocessor, a training batch holds
detection samples (some with instances pasted from image-level samples,
``gt_instances.paste_source = j >= 0``) and image-level samples ``j`` (one
region box per label). The loss is

.. math::

    L = L_{det} + \\alpha\\, L_{img} + \\beta\\, L_{con}

* ``L_det``: the detection loss of the detection samples
  (:class:`~longtail_plugin.models.roi_heads.ImageLevelRoIHead`) with the
  box head's ``loss_objectness`` (:class:`.bbox_heads.CLISBBoxHead`).
* ``L_img`` (key ``loss_image_cls``, ``alpha`` = ``image_loss_weight``):
  every region ``r`` (gt box) of every image-level sample is pooled and
  classified by the box head's image branch
  (:meth:`CLISBBoxHead.forward_image`); the ``loss_image_cls`` module
  (default softmax cross-entropy over the classifier's channels) against
  the region's label, mean over regions. An image with several labels has
  one region per label (same box), each with its own target.
* ``L_con`` (key ``loss_contrastive``, ``beta`` = ``contrastive_weight``):
  InfoNCE over the pairs ``(q_k, k_k)``, ``q_k = P_inst(f_k)`` with
  ``f_k`` the classification feature (:meth:`CLISBBoxHead.forward_all`)
  of the ``k``-th pasted instance's box in its detection image, and
  ``k_k = P_img(g_k)`` with ``g_k`` the image branch's feature of its
  source's first region box; ``P`` = ``Linear(fc_out, proj_hidden) - ReLU -
  Linear(proj_hidden, proj_dim)`` (one MLP per side, or one shared with
  ``share_projection``). The other pairs of the batch are the negatives.
  When a source was pasted into several images only its first copy (batch
  order) is paired: two copies would be each other's false negatives.

Every batch returns the same keys - ``loss_cls, acc, loss_bbox,
loss_objectness`` (+ ``loss_mask``) and ``loss_image_cls,
loss_contrastive`` - with zeros that keep the graph where a kind of sample
(or every pair) is absent. ``contrastive_weight`` ``None`` or 0 disables the
contrastive loss (no projection MLPs are built; its key stays, zero).

Inference is the standard path; the box head's ``score_mode`` fuses the
objectness into the class scores.

Config::

    roi_head=dict(
        type='CLISRoIHead',
        bbox_head=dict(type='CLISBBoxHead', ...),
        loss_image_cls=dict(type='CrossEntropyLoss', use_sigmoid=False,
                            loss_weight=1.0),
        image_loss_weight=0.1,
        contrastive_loss=dict(type='InfoNCELoss', temperature=0.1),
        contrastive_weight=0.1, proj_hidden=512, proj_dim=128,
        share_projection=False)
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.models.utils import empty_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi, get_box_tensor
from mmdet.utils import ConfigType, InstanceList
from .bbox_heads import CLISBBoxHead
from .image_level_roi_head import ImageLevelRoIHead

__all__ = ['CLISRoIHead']


def _projection(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, out_dim))


@MODELS.register_module()
class CLISRoIHead(ImageLevelRoIHead):
    """CLIS RoI head (see the module docstring; the design is ours).

    Args:
        loss_image_cls: config of the image-level classification loss
            (called as ``loss(logits [R, K], labels [R])``).
        image_loss_weight: ``alpha``, multiplies ``loss_image_cls``.
        contrastive_loss: config of the contrastive loss (called as
            ``loss(query [P, D], key [P, D])``).
        contrastive_weight: ``beta``, multiplies the contrastive loss;
            ``None`` / 0 disables it.
        proj_hidden: hidden width of the projection MLPs.
        proj_dim: output width of the projection MLPs.
        share_projection: one projection MLP for both sides.
        **kwargs: as :class:`ImageLevelRoIHead` (``bbox_head`` must be a
            ``CLISBBoxHead``).
    """

    image_level_proposals = 'given'

    def __init__(self,
                 *args,
                 loss_image_cls: ConfigType = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=False,
                     loss_weight=1.0),
                 image_loss_weight: float = 0.1,
                 contrastive_loss: ConfigType = dict(
                     type='InfoNCELoss', temperature=0.1),
                 contrastive_weight: Optional[float] = 0.1,
                 proj_hidden: int = 512,
                 proj_dim: int = 128,
                 share_projection: bool = False,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        name = type(self).__name__
        if not isinstance(getattr(self, 'bbox_head', None), CLISBBoxHead):
            got = type(getattr(self, 'bbox_head', None)).__name__
            raise ValueError(f"{name} needs roi_head.bbox_head of type "
                             f"'CLISBBoxHead', got {got}")
        if float(image_loss_weight) < 0:
            raise ValueError(f'{name}: image_loss_weight must be >= 0, got '
                             f'{image_loss_weight!r}')
        if contrastive_weight is not None and float(contrastive_weight) < 0:
            raise ValueError(f'{name}: contrastive_weight must be >= 0 or '
                             f'None, got {contrastive_weight!r}')
        self.loss_image_cls = MODELS.build(loss_image_cls)
        self.image_loss_weight = float(image_loss_weight)
        self.contrastive_weight = float(contrastive_weight or 0.0)
        self.share_projection = bool(share_projection)
        if self.contrastive_weight > 0:
            self.contrastive_loss = MODELS.build(contrastive_loss)
            fc_out = self.bbox_head.fc_out_channels
            self.proj_instance = _projection(fc_out, proj_hidden, proj_dim)
            if not self.share_projection:
                self.proj_image = _projection(fc_out, proj_hidden, proj_dim)
        else:
            self.contrastive_loss = None

    @property
    def proj_image(self) -> nn.Module:
        """Projection of the image-level features: its own MLP, or
        ``proj_instance`` with ``share_projection`` (registered once, so the
        checkpoint holds it once)."""
        own = self._modules.get('proj_image')
        return own if own is not None else self.proj_instance

    # --- the box branch ---------------------------------------------------
    def _bbox_forward(self, x: Tuple[Tensor], rois: Tensor) -> dict:
        """``StandardRoIHead._bbox_forward`` through
        :meth:`CLISBBoxHead.forward_all`: also ``objectness`` and
        ``cls_feat``."""
        bbox_feats = self.bbox_roi_extractor(
            x[:self.bbox_roi_extractor.num_inputs], rois)
        if self.with_shared_head:
            bbox_feats = self.shared_head(bbox_feats)
        cls_score, bbox_pred, objectness, cls_feat = \
            self.bbox_head.forward_all(bbox_feats)
        return dict(
            cls_score=cls_score,
            bbox_pred=bbox_pred,
            objectness=objectness,
            cls_feat=cls_feat,
            bbox_feats=bbox_feats)

    def bbox_loss(self, x: Tuple[Tensor],
                  sampling_results: List[SamplingResult]) -> dict:
        """``StandardRoIHead.bbox_loss`` with ``loss_objectness``."""
        rois = bbox2roi([res.priors for res in sampling_results])
        bbox_results = self._bbox_forward(x, rois)
        loss_and_target = self.bbox_head.loss_and_target(
            cls_score=bbox_results['cls_score'],
            bbox_pred=bbox_results['bbox_pred'],
            rois=rois,
            sampling_results=sampling_results,
            rcnn_train_cfg=self.train_cfg,
            objectness=bbox_results['objectness'])
        bbox_results.update(loss_bbox=loss_and_target['loss_bbox'])
        return bbox_results

    def detection_loss_keys(self) -> List[str]:
        """The base keys plus ``loss_objectness``."""
        keys = super().detection_loss_keys()
        if self.with_bbox:
            keys.append('loss_objectness')
        return keys

    def predict_bbox(self,
                     x: Tuple[Tensor],
                     batch_img_metas: List[dict],
                     rpn_results_list: InstanceList,
                     rcnn_test_cfg: ConfigType,
                     rescale: bool = False) -> InstanceList:
        """``StandardRoIHead.predict_bbox`` passing the objectness logits to
        the box head (its ``score_mode``)."""
        proposals = [res.bboxes for res in rpn_results_list]
        rois = bbox2roi(proposals)
        if rois.shape[0] == 0:
            return empty_instances(
                batch_img_metas,
                rois.device,
                task_type='bbox',
                box_type=self.bbox_head.predict_box_type,
                num_classes=self.bbox_head.num_classes,
                score_per_cls=rcnn_test_cfg is None)
        out = self._bbox_forward(x, rois)
        counts = tuple(len(p) for p in proposals)
        return self.bbox_head.predict_by_feat(
            rois=rois.split(counts, 0),
            cls_scores=out['cls_score'].split(counts, 0),
            bbox_preds=out['bbox_pred'].split(counts, 0),
            batch_img_metas=batch_img_metas,
            rcnn_test_cfg=rcnn_test_cfg,
            rescale=rescale,
            objectness=out['objectness'].split(counts, 0))

    # --- the image-level losses -------------------------------------------
    def _region_feats(self, x: Tuple[Tensor], rois: Tensor) -> Tensor:
        feats = self.bbox_roi_extractor(
            x[:self.bbox_roi_extractor.num_inputs], rois)
        if self.with_shared_head:
            feats = self.shared_head(feats)
        return feats

    def image_level_loss(self, x: Tuple[Tensor],
                         rpn_results_list: InstanceList,
                         batch_data_samples: SampleList, det_idx: List[int],
                         img_idx: List[int]) -> Dict[str, Tensor]:
        """``loss_image_cls`` and ``loss_contrastive`` (see the module
        docstring); zeros with graph when absent."""
        name = type(self).__name__
        zero = self.zero_loss()
        device = x[0].device
        # regions of the image-level samples, and the row of each sample's
        # first region (its contrastive key)
        boxes, labels, batch_ids = [], [], []
        first_row: Dict[int, int] = {}
        for j in img_idx:
            gt = batch_data_samples[j].gt_instances
            b = get_box_tensor(gt.bboxes).to(device)
            if b.size(0) == 0:
                continue
            first_row[j] = sum(len(t) for t in boxes)
            boxes.append(b)
            labels.append(gt.labels.to(device).long())
            batch_ids.append(b.new_full((b.size(0), ), j))
        pairs = self._contrastive_pairs(batch_data_samples, det_idx,
                                        img_idx, first_row)

        losses = dict(loss_image_cls=zero, loss_contrastive=zero)
        if not boxes:
            if pairs:
                raise ValueError(f'{name}: pasted instances but no image-'
                                 'level region in the batch')
            return losses
        region_boxes = torch.cat(boxes)
        rois = torch.cat([torch.cat(batch_ids)[:, None], region_boxes], 1)
        img_scores, img_feats = self.bbox_head.forward_image(
            self._region_feats(x, rois))
        if self.image_loss_weight > 0:
            losses['loss_image_cls'] = self.image_loss_weight * \
                self.loss_image_cls(img_scores, torch.cat(labels))
        if self.contrastive_loss is not None and pairs:
            inst_rois = torch.stack([
                torch.cat([region_boxes.new_tensor([float(i)]),
                           box.to(region_boxes)]) for i, box, _ in pairs
            ])
            _, _, _, inst_feats = self.bbox_head.forward_all(
                self._region_feats(x, inst_rois))
            rows = torch.as_tensor([r for _, _, r in pairs],
                                   dtype=torch.long, device=device)
            query = self.proj_instance(inst_feats)
            key = self.proj_image(img_feats[rows])
            losses['loss_contrastive'] = self.contrastive_weight * \
                self.contrastive_loss(query, key)
        return losses

    def _contrastive_pairs(self, batch_data_samples: SampleList,
                           det_idx: List[int], img_idx: List[int],
                           first_row: Dict[int, int]
                           ) -> List[Tuple[int, Tensor, int]]:
        """``(detection batch index i, pasted box, region row of its source)``
        for the first pasted copy of every source, in batch order."""
        name = type(self).__name__
        img_set = set(img_idx)
        seen = set()
        pairs = []
        for i in det_idx:
            gt = batch_data_samples[i].gt_instances
            if 'paste_source' not in gt:
                continue
            source = torch.as_tensor(gt.paste_source).long().reshape(-1)
            if source.numel() != len(gt):
                raise ValueError(
                    f'{name}: sample {i} has {source.numel()} paste_source '
                    f'values for {len(gt)} instances')
            bboxes = get_box_tensor(gt.bboxes)
            for k in torch.nonzero(source >= 0).reshape(-1).tolist():
                j = int(source[k])
                if j not in img_set:
                    raise ValueError(
                        f'{name}: instance {k} of sample {i} has '
                        f'paste_source={j}, which is not an image-level '
                        'sample of the batch (image-level samples: '
                        f'{sorted(img_set)})')
                if j not in first_row:
                    raise ValueError(
                        f'{name}: paste_source={j} (sample {i}) has no '
                        'region box')
                if j in seen:
                    continue
                seen.add(j)
                pairs.append((i, bboxes[k], first_row[j]))
        return pairs
