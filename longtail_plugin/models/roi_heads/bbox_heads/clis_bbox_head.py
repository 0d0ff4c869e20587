"""Task-specialised box head of CLIS: localisation, instance classification
and a siamese image-classification branch.

CLIS: "Collaborative Learning with Image-level Supervision" (waveboo/CLIS).
The paper describes three branches after RoIAlign; no model code was
released, so the layout, the objectness target and the test-time score
fusion below are OUR design.

Branches (``decouple=True``, the default)::

    RoI feature --> loc trunk (num_fcs x [fc, ReLU]) --+--> fc_reg (deltas)
                |                                      +--> fc_obj (o)
                +-> cls trunk (num_fcs x [fc, ReLU]) -----> fc_cls (logits)
    region      --> image trunk ----------------------> image classifier

* Siamese image branch (``siamese=True``): the image trunk and image
  classifier ARE the instance classification trunk and ``fc_cls`` - the
  same parameter objects, so one weight tensor is trained by both kinds of
  supervision and the checkpoint holds it once. ``siamese=False``
  (ablation) gives the image branch its own trunk (``img_cls_fcs``) and
  classifier (``fc_img_cls``) of the same shapes, initialised separately.
* ``decouple=False`` (ablation): one shared trunk (``shared_fcs``) feeds
  ``fc_cls``, ``fc_reg`` and ``fc_obj``; the siamese image branch is then
  that shared trunk plus ``fc_cls``.

Losses: the classification loss is the head's ``loss_cls`` through
MMDetection's custom-channel protocol unchanged (softmax
``CrossEntropyLoss`` or the plugin's EQL-family losses work as in
``Shared2FCBBoxHead``). The localisation branch adds an objectness loss
(``loss_objectness``, sigmoid BCE by default) on ``z_obj``:

.. math::

    L_{obj} = \\frac{1}{\\#\\{i: w_i > 0\\}} \\sum_i w_i\\,
        \\mathrm{BCE}(z^{obj}_i, [y_i < C]),

target 1 for a foreground RoI (label ``< C``), 0 for background, ``w_i``
the RoI's label weight; normalised like ``loss_cls``.

Test-time scores (``score_mode``; ``p`` = the class probabilities the
classification loss' activation gives, softmax or the custom activation,
``o = sigmoid(z_obj)``, ``lambda`` = ``objectness_weight``):

* ``'cls'``: ``s_c = p_c`` (MMDetection's scores; objectness unused);
* ``'product'``: ``s_c = p_c * o``;
* ``'geometric'``: ``s_c = p_c^(1 - lambda) * o^lambda``.

Only the ``C`` foreground columns are fused; the background column
(the last of the ``C + 1`` scores) is left as the activation gives it -
``multiclass_nms`` drops it.

The mmdet interface is kept: :meth:`CLISBBoxHead.forward` returns
``(cls_score, bbox_pred)``. The objectness logit and the classification
feature come from :meth:`CLISBBoxHead.forward_all`, which
:class:`~longtail_plugin.models.roi_heads.CLISRoIHead` calls and whose
objectness it passes to :meth:`CLISBBoxHead.loss_and_target` /
:meth:`CLISBBoxHead.predict_by_feat` (keyword ``objectness``). With a plain
``StandardRoIHead`` the objectness is never given: training is then an
error naming the RoI head to use.

Config::

    bbox_head=dict(
        type='CLISBBoxHead', in_channels=256, roi_feat_size=7,
        fc_out_channels=1024, num_classes=1203,
        decouple=True, siamese=True,
        loss_objectness=dict(type='CrossEntropyLoss', use_sigmoid=True,
                             loss_weight=1.0),
        score_mode='cls', objectness_weight=0.5)
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.layers import multiclass_nms
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList

__all__ = ['CLISBBoxHead']

#: ConvFCBBoxHead arguments the CLIS head sets itself
_LAYOUT_KEYS = ('num_shared_convs', 'num_shared_fcs', 'num_cls_convs',
                'num_cls_fcs', 'num_reg_convs', 'num_reg_fcs')


@MODELS.register_module()
class CLISBBoxHead(ConvFCBBoxHead):
    """CLIS box head (see the module docstring; the design is ours).

    A :class:`mmdet.models.roi_heads.bbox_heads.BBoxHead` (through
    ``ConvFCBBoxHead``, whose fc branches it reuses).

    Args:
        num_fcs: fully connected layers of each trunk (2 in the paper's
            description).
        fc_out_channels: width of every trunk layer.
        decouple: separate localisation and classification trunks
            (``False``: one shared trunk, ablation).
        siamese: the image-classification branch shares the instance
            classification trunk and ``fc_cls`` (``False``: its own copy,
            ablation).
        loss_objectness: config of the objectness loss (called with
            ``[N]`` logits, ``[N]`` 0/1 targets, label weights and
            ``avg_factor``).
        score_mode: test-time fusion, 'cls' | 'product' | 'geometric'.
        objectness_weight: ``lambda`` of 'geometric', in ``[0, 1]``.
        **kwargs: as ``BBoxHead`` (``in_channels``, ``roi_feat_size``,
            ``num_classes``, ``loss_cls``, ``loss_bbox``, ...).
    """

    SCORE_MODES = ('cls', 'product', 'geometric')

    def __init__(self,
                 num_fcs: int = 2,
                 fc_out_channels: int = 1024,
                 decouple: bool = True,
                 siamese: bool = True,
                 loss_objectness: ConfigType = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=True,
                     loss_weight=1.0),
                 score_mode: str = 'cls',
                 objectness_weight: float = 0.5,
                 init_cfg: Optional[ConfigType] = None,
                 **kwargs) -> None:
        name = type(self).__name__
        for key in _LAYOUT_KEYS:
            if key in kwargs:
                raise ValueError(
                    f'{name}: `{key}` is set by the head itself (use '
                    '`num_fcs` and `decouple`)')
        if isinstance(num_fcs, bool) or int(num_fcs) != num_fcs or \
                int(num_fcs) < 1:
            raise ValueError(f'{name}: num_fcs must be a positive integer, '
                             f'got {num_fcs!r}')
        if score_mode not in self.SCORE_MODES:
            raise ValueError(f'{name}: score_mode must be one of '
                             f'{self.SCORE_MODES}, got {score_mode!r}')
        if not 0.0 <= float(objectness_weight) <= 1.0:
            raise ValueError(f'{name}: objectness_weight must lie in [0, 1], '
                             f'got {objectness_weight!r}')
        if not kwargs.get('with_cls', True) or \
                not kwargs.get('with_reg', True):
            raise ValueError(f'{name} needs with_cls=True and with_reg=True')
        num_fcs = int(num_fcs)
        layout = dict(
            num_shared_fcs=0 if decouple else num_fcs,
            num_cls_fcs=num_fcs if decouple else 0,
            num_reg_fcs=num_fcs if decouple else 0)
        super().__init__(
            fc_out_channels=fc_out_channels,
            init_cfg=init_cfg,
            **layout,
            **kwargs)
        self.num_fcs = num_fcs
        self.decouple = bool(decouple)
        self.siamese = bool(siamese)
        self.score_mode = score_mode
        self.objectness_weight = float(objectness_weight)
        self.loss_objectness = MODELS.build(loss_objectness)

        # objectness logit of the localisation trunk
        self.fc_obj = nn.Linear(self.reg_last_dim, 1)
        if not self.siamese:
            # the image branch's own trunk and classifier (ablation)
            _, self.img_cls_fcs, img_last_dim = self._add_conv_fc_branch(
                0, num_fcs, self.in_channels, is_shared=True)
            cls_predictor_cfg_ = self.cls_predictor_cfg.copy()
            cls_predictor_cfg_.update(
                in_features=img_last_dim,
                out_features=self.fc_cls.out_features)
            self.fc_img_cls = MODELS.build(cls_predictor_cfg_)
        if init_cfg is None:
            self.init_cfg += [
                dict(type='Normal', std=0.01, override=dict(name='fc_obj'))
            ]
            if not self.siamese:
                self.init_cfg += [
                    dict(
                        type='Normal',
                        std=0.01,
                        override=dict(name='fc_img_cls')),
                    dict(
                        type='Xavier',
                        distribution='uniform',
                        override=dict(name='img_cls_fcs'))
                ]

    # --- the branches -----------------------------------------------------
    @property
    def cls_trunk(self) -> nn.ModuleList:
        """fc layers of the instance classification branch."""
        return self.cls_fcs if self.decouple else self.shared_fcs

    @property
    def loc_trunk(self) -> nn.ModuleList:
        """fc layers of the localisation branch (box + objectness)."""
        return self.reg_fcs if self.decouple else self.shared_fcs

    def image_branch(self) -> Tuple[nn.ModuleList, nn.Module]:
        """``(trunk, classifier)`` of the image-classification branch: the
        instance classification trunk and ``fc_cls`` themselves when
        ``siamese``."""
        if self.siamese:
            return self.cls_trunk, self.fc_cls
        return self.img_cls_fcs, self.fc_img_cls

    def _run_trunk(self, x: Tensor, fcs: nn.ModuleList) -> Tensor:
        """Pool (``with_avg_pool``), flatten, then ``fc -> ReLU`` layers."""
        if self.with_avg_pool:
            x = self.avg_pool(x) if x.numel() > 0 else x.mean(dim=(-1, -2))
        x = x.flatten(1)
        for fc in fcs:
            x = self.relu(fc(x))
        return x

    def forward_all(self,
                    x: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Instance path on RoI features ``[N, in_channels, S, S]``.

        Returns:
            ``(cls_score [N, K], bbox_pred [N, 4 or 4C], objectness [N, 1],
            cls_feat [N, fc_out_channels])`` with ``K`` the classifier's
            channels (``C + 1`` or the loss's custom count) and
            ``cls_feat`` the classification trunk's output.
        """
        if self.decouple:
            cls_feat = self._run_trunk(x, self.cls_fcs)
            loc_feat = self._run_trunk(x, self.reg_fcs)
        else:
            cls_feat = loc_feat = self._run_trunk(x, self.shared_fcs)
        return (self.fc_cls(cls_feat), self.fc_reg(loc_feat),
                self.fc_obj(loc_feat), cls_feat)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """MMDetection's interface: ``(cls_score, bbox_pred)``."""
        cls_score, bbox_pred, _, _ = self.forward_all(x)
        return cls_score, bbox_pred

    def forward_image(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Image-classification branch on region features.

        Returns:
            ``(cls_score [N, K], cls_feat [N, fc_out_channels])``.
        """
        trunk, classifier = self.image_branch()
        feat = self._run_trunk(x, trunk)
        return classifier(feat), feat

    # --- training ---------------------------------------------------------
    def loss_and_target(self,
                        cls_score: Tensor,
                        bbox_pred: Tensor,
                        rois: Tensor,
                        sampling_results: list,
                        rcnn_train_cfg: ConfigDict,
                        concat: bool = True,
                        reduction_override: Optional[str] = None,
                        objectness: Optional[Tensor] = None) -> dict:
        """``BBoxHead.loss_and_target`` plus ``loss_objectness`` (needs
        ``objectness``, the ``[N, 1]`` logits of :meth:`forward_all`)."""
        targets = self.get_targets(
            sampling_results, rcnn_train_cfg, concat=concat)
        losses = self.loss(
            cls_score,
            bbox_pred,
            rois,
            *targets,
            reduction_override=reduction_override,
            objectness=objectness)
        return dict(loss_bbox=losses, bbox_targets=targets)

    def loss(self,
             cls_score: Tensor,
             bbox_pred: Tensor,
             rois: Tensor,
             labels: Tensor,
             label_weights: Tensor,
             bbox_targets: Tensor,
             bbox_weights: Tensor,
             reduction_override: Optional[str] = None,
             objectness: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """``BBoxHead.loss`` (``loss_cls``, accuracy, ``loss_bbox``) plus
        ``loss_objectness`` (see the module docstring)."""
        if objectness is None:
            raise ValueError(
                f'{type(self).__name__}.loss needs the objectness logits '
                '(`objectness=`, from forward_all): use '
                "roi_head=dict(type='CLISRoIHead', ...) with this bbox head")
        losses = super().loss(
            cls_score,
            bbox_pred,
            rois,
            labels,
            label_weights,
            bbox_targets,
            bbox_weights,
            reduction_override=reduction_override)
        losses['loss_objectness'] = self.objectness_loss(
            objectness, labels, label_weights, reduction_override)
        return losses

    def objectness_loss(self,
                        objectness: Tensor,
                        labels: Tensor,
                        label_weights: Tensor,
                        reduction_override: Optional[str] = None) -> Tensor:
        """``loss_objectness`` of ``[N, 1]`` (or ``[N]``) logits: target 1
        for labels ``< C``, 0 for the background label ``C``."""
        logits = objectness.reshape(-1)
        if logits.numel() != labels.numel():
            raise ValueError(
                f'{type(self).__name__}: {logits.numel()} objectness logits '
                f'for {labels.numel()} labels')
        if logits.numel() == 0:
            return logits.sum() * 0.0
        target = ((labels >= 0) & (labels < self.num_classes)).long()
        avg_factor = max(torch.sum(label_weights > 0).float().item(), 1.)
        return self.loss_objectness(
            logits,
            target,
            label_weights.float(),
            avg_factor=avg_factor,
            reduction_override=reduction_override)

    # --- inference ----------------------------------------------------------
    def fuse_scores(self, scores: Tensor,
                    objectness: Optional[Tensor]) -> Tensor:
        """Apply ``score_mode`` to ``[N, C + 1]`` class scores (background
        last, left as is) with ``[N, 1]`` objectness logits."""
        if self.score_mode == 'cls':
            return scores
        if objectness is None:
            raise ValueError(
                f"{type(self).__name__}: score_mode='{self.score_mode}' "
                'needs the objectness logits (`objectness=`): use '
                "roi_head=dict(type='CLISRoIHead', ...) with this bbox head")
        c = self.num_classes
        obj = objectness.reshape(-1, 1).sigmoid().to(scores.dtype)
        fg = scores[:, :c]
        if self.score_mode == 'product':
            fg = fg * obj
        else:
            lam = self.objectness_weight
            fg = fg.clamp(min=0).pow(1.0 - lam) * obj.pow(lam)
        return torch.cat([fg, scores[:, c:]], dim=1)

    def predict_by_feat(self,
                        rois: Tuple[Tensor],
                        cls_scores: Tuple[Tensor],
                        bbox_preds: Tuple[Tensor],
                        batch_img_metas: List[dict],
                        rcnn_test_cfg: Optional[ConfigDict] = None,
                        rescale: bool = False,
                        objectness: Optional[Sequence[Tensor]] = None
                        ) -> InstanceList:
        """``BBoxHead.predict_by_feat`` with ``score_mode`` applied.

        Args:
            objectness: per image ``[n_i, 1]`` objectness logits (needed
                unless ``score_mode='cls'``).
        """
        if len(cls_scores) != len(bbox_preds) or \
                len(cls_scores) != len(batch_img_metas):
            raise ValueError(
                f'{type(self).__name__}.predict_by_feat: {len(cls_scores)} '
                f'cls_scores, {len(bbox_preds)} bbox_preds, '
                f'{len(batch_img_metas)} images')
        if objectness is None:
            objectness = (None, ) * len(cls_scores)
        return [
            self._predict_by_feat_single(
                roi=rois[i],
                cls_score=cls_scores[i],
                bbox_pred=bbox_preds[i],
                img_meta=batch_img_metas[i],
                rescale=rescale,
                rcnn_test_cfg=rcnn_test_cfg,
                objectness=objectness[i])
            for i in range(len(batch_img_metas))
        ]

    def _predict_by_feat_single(
            self,
            roi: Tensor,
            cls_score: Tensor,
            bbox_pred: Tensor,
            img_meta: dict,
            rescale: bool = False,
            rcnn_test_cfg: Optional[ConfigDict] = None,
            objectness: Optional[Tensor] = None) -> InstanceData:
        """One image: the parent's decoding without NMS (its
        ``rcnn_test_cfg=None`` path gives every class's box and the
        activation's scores), the fused scores, then ``multiclass_nms``."""
        if roi.shape[0] == 0 or self.score_mode == 'cls':
            return super()._predict_by_feat_single(
                roi, cls_score, bbox_pred, img_meta, rescale, rcnn_test_cfg)
        raw = super()._predict_by_feat_single(
            roi, cls_score, bbox_pred, img_meta, rescale, None)
        scores = self.fuse_scores(raw.scores, objectness)
        results = InstanceData()
        if rcnn_test_cfg is None:
            results.bboxes = raw.bboxes
            results.scores = scores
            return results
        # raw.bboxes: [n, k * box_dim], k = 1 (class-agnostic) or C
        box_dim = raw.bboxes.size(-1) // (
            1 if self.reg_class_agnostic else self.num_classes)
        det_bboxes, det_labels = multiclass_nms(
            raw.bboxes,
            scores,
            rcnn_test_cfg.score_thr,
            rcnn_test_cfg.nms,
            rcnn_test_cfg.max_per_img,
            box_dim=box_dim)
        results.bboxes = det_bboxes[:, :-1]
        results.scores = det_bboxes[:, -1]
        results.labels = det_labels
        return results
