"""RefineMask mask heads for MMDetection 3.x.

Zhang et al., "RefineMask: Towards High-Quality Instance Segmentation with
Fine-Grained Features", CVPR 2021. An original implementation for MMDetection
3.x (the authors' code targets mmdet 2.3).

Architecture (:class:`RefineMaskHead`, the paper's version)::

    RoI feats 14x14 (P2..P5) -> 2 x [3x3 conv + ReLU]          -> F_14 (256)
    P2 (stride 4)            -> 4 x [3x3 conv + ReLU]          -> S (256)
                             -> 1x1 conv                 -> semantic_pred (1 ch)
    SFM(14): F_14 -> F_28 (128), logits_14
    SFM(28): F_28 -> F_56 (64),  logits_28
    SFM(56): F_56 -> F_112 (32), logits_56
    1x1 conv(F_112)                                            -> logits_112

Losses (per stage ``k`` with weight ``lambda_k`` = 0.25, 0.5, 0.75, 1.0)::

    L = sum_k lambda_k L_k + L_sem
    L_14, L_28 = mean BCE over the RoI
    L_56, L_112 = BAR loss, R_k = up2(band_2(prev_k) U band_2(gt_{k/2}))

where ``prev_k`` is the merged prediction of the previous size (exactly what
inference would produce there, see :func:`merge_stage_logits`) and
``band_w`` is :func:`~.boundary.boundary_band`.
``L_sem`` is the mean BCE between ``semantic_pred`` and the union of the
image's GT masks, zero-padded to the padded batch shape and resized to
stride 4 (``>= 0.5``).

Inference: the 14x14 output is dropped; from 28 on the finer logits replace the
upsampled coarser logits inside ``band_1`` of the coarser binary mask; the
112x112 probabilities are pasted into the image with MMDetection's
``_do_paste_mask``.

:class:`SimpleRefineMaskHead` is the authors' later "faster" variant: no
semantic logits/loss, plain RoIAlign of the semantic features, global-average
term in the fusion, the last stage computes its logits at 56 and upsamples
them to 112, class-agnostic last stage, stage weights 0.5, 0.75, 0.75, 1.0.

Non-finite losses raise :class:`FloatingPointError` naming the stage
(``check_finite=True``, default) instead of training through NaN.
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.config import ConfigDict
from mmengine.model import BaseModule, ModuleList
from torch import Tensor

from mmdet.models.roi_heads.mask_heads.fcn_mask_head import (BYTES_PER_FLOAT,
                                                             GPU_MEM_LIMIT,
                                                             _do_paste_mask)
from mmdet.models.utils import empty_instances
from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks, PolygonMasks, mask_target
from mmdet.utils import ConfigType, InstanceList, OptConfigType

from .boundary import boundary_band, merge_stage_logits, upsample_band
from .sfm import SemanticFusionModule, label_conv1x1

__all__ = ['RefineMaskHead', 'SimpleRefineMaskHead', 'union_of_masks']


def _conv3x3_stack(in_channels: int, channels: int, num: int,
                   conv_cfg: OptConfigType,
                   norm_cfg: OptConfigType) -> ModuleList:
    """``num`` 3x3 ``ConvModule`` (conv + ReLU), ``in_channels`` ->
    ``channels``."""
    return ModuleList([
        ConvModule(
            in_channels if i == 0 else channels,
            channels,
            3,
            padding=1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg) for i in range(num)
    ])


def union_of_masks(masks) -> np.ndarray:
    """Union of the instance masks of one image as an ``(H, W)`` uint8 array.

    Polygons are rasterised all at once (one RLE merge), bitmaps reduced with
    ``any``; no ``(num_instances, H, W)`` array is built for polygons.
    """
    h, w = masks.height, masks.width
    if len(masks) == 0:
        return np.zeros((h, w), dtype=np.uint8)
    if isinstance(masks, PolygonMasks):
        import pycocotools.mask as mask_utils
        polys = [p for obj in masks.masks for p in obj if len(p) >= 6]
        if not polys:
            return np.zeros((h, w), dtype=np.uint8)
        rles = mask_utils.frPyObjects(polys, h, w)
        return mask_utils.decode(mask_utils.merge(rles)).astype(np.uint8)
    if isinstance(masks, BitmapMasks):
        return masks.masks.any(axis=0).astype(np.uint8)
    return masks.to_ndarray().any(axis=0).astype(np.uint8)


@MODELS.register_module()
class RefineMaskHead(BaseModule):
    """RefineMask mask head (paper version).

    The head is called by :class:`RefineMaskRoIHead` with the 14x14 RoI
    features, the stride-4 feature map (P2), the RoIs and their labels.

    Args:
        num_convs_instance (int): 3x3 convs on the RoI features. Default 2.
        num_convs_semantic (int): 3x3 convs on P2. Default 4.
        in_channels (int): Channels of the RoI features and of P2.
        conv_out_channels (int): Channels of the instance convs (the input
            channels of the first stage). Default 256.
        semantic_channels (int): Channels of the semantic convs. Default 256.
        stage_channels (Sequence[int]): Output channels of the three fusion
            stages. Default (128, 64, 32).
        stage_num_classes (Sequence[int]): Classes of the logits of each of
            the four outputs (14, 28, 56, 112); 1 = class-agnostic.
        stage_sup_size (Sequence[int]): Sizes of the four outputs.
            Default (14, 28, 56, 112); must double each time.
        stage_loss_weights (Sequence[float]): Default (0.25, 0.5, 0.75, 1.0).
        bar_stages (Sequence[int]): Indices of the outputs trained with the
            BAR loss (the others: mean BCE). Default (2, 3).
        boundary_width (int): Band width of the BAR regions. Default 2.
        merge_width (int): Band width of the stage merging. Default 1.
        inference_start (int): First output used at inference (0 = 14x14).
            Default 1 (the 14x14 output is dropped).
        semantic_stride (int): Stride of P2. Default 4.
        dilations (Sequence[int]): Dilations of the multi-branch fusion.
        with_semantic_logits (bool): Semantic head with a 1-channel
            foreground map and its loss (paper). Default True.
        semantic_transform (bool | str): 1x1 convs around the semantic
            RoIAlign (``True``), before it only (``'in'``, the authors'
            released faster head) or none (``False``).
        global_context (bool | str): Global-average term in the fusion:
            ``False``, ``True`` (1x1 conv + activation of the RoI mean) or
            ``'identity'`` (the mean added as is, the authors' faster head).
        last_stage_half_res (bool): Compute the last logits at half size and
            upsample them (faster variant). Default False.
        align_corners (bool): ``align_corners`` of the in-stage x2 upsampling.
        loss_mask (dict): Loss of the instance outputs; called as
            ``loss(pred, target, region)`` with ``region=None`` for plain
            stages. Default :class:`BARCrossEntropyLoss`.
        loss_semantic (dict): Loss of the semantic map (``region=None``).
        check_finite (bool): Raise ``FloatingPointError`` naming the stage on
            a non-finite loss. Default True.
    """

    def __init__(self,
                 num_convs_instance: int = 2,
                 num_convs_semantic: int = 4,
                 in_channels: int = 256,
                 conv_out_channels: int = 256,
                 semantic_channels: int = 256,
                 stage_channels: Sequence[int] = (128, 64, 32),
                 stage_num_classes: Sequence[int] = (80, 80, 80, 80),
                 stage_sup_size: Sequence[int] = (14, 28, 56, 112),
                 stage_loss_weights: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
                 bar_stages: Sequence[int] = (2, 3),
                 boundary_width: int = 2,
                 merge_width: int = 1,
                 inference_start: int = 1,
                 semantic_stride: int = 4,
                 dilations: Sequence[int] = (1, 3, 5),
                 with_semantic_logits: bool = True,
                 semantic_transform: Union[bool, str] = True,
                 global_context: Union[bool, str] = False,
                 last_stage_half_res: bool = False,
                 align_corners: bool = True,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = None,
                 loss_mask: ConfigType = dict(
                     type='BARCrossEntropyLoss', loss_weight=1.0),
                 loss_semantic: ConfigType = dict(
                     type='BARCrossEntropyLoss', loss_weight=1.0),
                 check_finite: bool = True,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        num_out = len(stage_sup_size)
        if len(stage_channels) != num_out - 1:
            raise ValueError('stage_channels needs one entry per fusion stage '
                             f'({num_out - 1}), got {stage_channels}')
        if not (len(stage_num_classes) == len(stage_loss_weights) == num_out):
            raise ValueError('stage_num_classes / stage_loss_weights need one '
                             f'entry per output ({num_out})')
        for a, b in zip(stage_sup_size[:-1], stage_sup_size[1:]):
            if b != 2 * a:
                raise ValueError(
                    f'stage_sup_size must double: {stage_sup_size}')
        if not 0 <= inference_start < num_out:
            raise ValueError(f'invalid inference_start {inference_start}')
        if any(not 0 < i < num_out for i in bar_stages):
            raise ValueError(f'bar_stages must be in [1, {num_out - 1}]')

        self.stage_sup_size = list(stage_sup_size)
        self.stage_num_classes = list(stage_num_classes)
        self.stage_loss_weights = list(stage_loss_weights)
        self.bar_stages = set(bar_stages)
        self.boundary_width = boundary_width
        self.merge_width = merge_width
        self.inference_start = inference_start
        self.semantic_stride = semantic_stride
        self.with_semantic_logits = with_semantic_logits
        self.last_stage_half_res = last_stage_half_res
        self.check_finite = check_finite
        # attributes other mmdet code may read
        self.num_classes = stage_num_classes[0]
        self.class_agnostic = stage_num_classes[-1] == 1
        self.in_channels = in_channels

        self.instance_convs = _conv3x3_stack(in_channels, conv_out_channels,
                                             num_convs_instance, conv_cfg,
                                             norm_cfg)
        self.semantic_convs = _conv3x3_stack(in_channels, semantic_channels,
                                             num_convs_semantic, conv_cfg,
                                             norm_cfg)
        self.semantic_logits = nn.Conv2d(
            semantic_channels, 1, 1) if with_semantic_logits else None

        chans = [conv_out_channels if num_convs_instance else in_channels]
        chans += list(stage_channels)
        self.stages = ModuleList()
        for i in range(num_out - 1):
            last_fusion = i == num_out - 2
            self.stages.append(
                SemanticFusionModule(
                    in_channels=chans[i],
                    out_channels=chans[i + 1],
                    semantic_in_channels=semantic_channels,
                    num_classes=stage_num_classes[i],
                    roi_size=stage_sup_size[i],
                    semantic_stride=semantic_stride,
                    dilations=dilations,
                    semantic_transform=semantic_transform,
                    with_semantic_mask=with_semantic_logits,
                    global_context=global_context,
                    upsample=not (last_fusion and last_stage_half_res),
                    align_corners=align_corners,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg))
        self.final_logits = nn.Conv2d(chans[-1], stage_num_classes[-1], 1)

        self.loss_mask = MODELS.build(loss_mask)
        self.loss_semantic = MODELS.build(
            loss_semantic) if with_semantic_logits else None

    def init_weights(self) -> None:
        super().init_weights()
        for m in (self.final_logits, self.semantic_logits):
            if m is not None:
                nn.init.normal_(m.weight, std=0.01)
                nn.init.constant_(m.bias, 0)

    # ------------------------------------------------------------------
    # forward
    # ------------------------------------------------------------------
    def forward_semantic(self, semantic_input: Tensor) -> dict:
        """Image-level part, run once per batch.

        Args:
            semantic_input (Tensor): P2 features ``(B, C, H/4, W/4)``.

        Returns:
            dict: ``semantic_pred`` (``(B, 1, H/4, W/4)`` logits or None),
            ``stage_semantics`` (per-stage semantic maps) and
            ``semantic_prob`` (sigmoid of ``semantic_pred`` or None).
        """
        x = semantic_input
        for conv in self.semantic_convs:
            x = conv(x)
        semantic_pred = semantic_prob = None
        if self.semantic_logits is not None:
            semantic_pred = self.semantic_logits(x)
            semantic_prob = semantic_pred.sigmoid()
        stage_semantics = [stage.prepare_semantic(x) for stage in self.stages]
        return dict(
            semantic_pred=semantic_pred,
            semantic_prob=semantic_prob,
            stage_semantics=stage_semantics)

    def forward_instance(self, instance_feats: Tensor, semantic: dict,
                         rois: Tensor, roi_labels: Tensor) -> List[Tensor]:
        """RoI-level part: the logits ``(N, 1, s, s)`` of every output."""
        x = instance_feats
        for conv in self.instance_convs:
            x = conv(x)
        preds = []
        for stage, sem in zip(self.stages, semantic['stage_semantics']):
            x, logits = stage(x, sem, rois, roi_labels,
                              semantic['semantic_prob'])
            preds.append(logits)
        final = label_conv1x1(self.final_logits, x, roi_labels)
        if self.last_stage_half_res:
            final = F.interpolate(
                final,
                size=(self.stage_sup_size[-1], ) * 2,
                mode='bilinear',
                align_corners=False)
        preds.append(final)
        return preds

    def forward(self, instance_feats: Tensor, semantic_input: Tensor,
                rois: Tensor, roi_labels: Tensor
                ) -> Tuple[List[Tensor], Optional[Tensor]]:
        """Full forward.

        Args:
            instance_feats (Tensor): ``(N, C, 14, 14)`` RoI features.
            semantic_input (Tensor): P2 ``(B, C, H/4, W/4)``.
            rois (Tensor): ``(N, 5)``.
            roi_labels (Tensor): ``(N,)``.

        Returns:
            tuple: list of logits ``(N, 1, s, s)`` for s in
            ``stage_sup_size`` and ``semantic_pred`` (or None).
        """
        semantic = self.forward_semantic(semantic_input)
        preds = self.forward_instance(instance_feats, semantic, rois,
                                      roi_labels)
        return preds, semantic['semantic_pred']

    def merge_predictions(self, stage_preds: Sequence[Tensor],
                          upto: Optional[int] = None) -> Tensor:
        """Merged logits from ``inference_start`` up to output ``upto``
        (default: the last), see :func:`merge_stage_logits`."""
        upto = len(stage_preds) - 1 if upto is None else upto
        merged = stage_preds[min(self.inference_start, upto)]
        for i in range(self.inference_start + 1, upto + 1):
            merged = merge_stage_logits(merged, stage_preds[i],
                                        self.merge_width)
        return merged

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def get_targets(self, sampling_results, batch_gt_instances: InstanceList
                    ) -> List[Tensor]:
        """Binary targets ``(N, s, s)`` for every output size, cropped and
        resized from the GT masks (bitmaps or polygons) with
        ``crop_and_resize``, i.e. the geometry of RoIAlign."""
        pos_proposals = [res.pos_priors for res in sampling_results]
        pos_inds = [res.pos_assigned_gt_inds for res in sampling_results]
        gt_masks = [res.masks for res in batch_gt_instances]
        targets = []
        for size in self.stage_sup_size:
            cfg = ConfigDict(mask_size=size)
            t = mask_target(pos_proposals, pos_inds, gt_masks, cfg)
            if not isinstance(t, Tensor):  # no image in the batch
                t = pos_proposals[0].new_zeros((0, size, size))
            targets.append(t)
        return targets

    def get_semantic_targets(self,
                             batch_gt_instances: InstanceList,
                             semantic_pred: Tensor,
                             batch_img_metas: Optional[List[dict]] = None
                             ) -> Tensor:
        """Union of each image's GT masks, zero-padded, resized to stride 4.

        The masks are zero-padded to ``stride * shape(P2)``. With the usual
        ``pad_size_divisor`` (a multiple of 4) this is exactly the padded
        batch shape ``batch_input_shape``; otherwise it is the smallest
        stride-4 multiple containing it, which keeps the geometry of P2 exact.
        When ``batch_img_metas`` are given, masks larger than
        ``batch_input_shape`` raise an error (they would be misaligned).
        """
        b, _, h, w = semantic_pred.shape
        ph, pw = h * self.semantic_stride, w * self.semantic_stride
        device = semantic_pred.device
        canvas = torch.zeros((b, 1, ph, pw), device=device)
        for i, gt in enumerate(batch_gt_instances):
            union = union_of_masks(gt.masks)
            mh, mw = union.shape
            if batch_img_metas is not None:
                bh, bw = batch_img_metas[i].get('batch_input_shape',
                                                (ph, pw))
                if mh > bh or mw > bw:
                    raise ValueError(
                        f'GT masks ({mh}x{mw}) larger than the padded batch '
                        f'shape ({bh}x{bw})')
            mh, mw = min(mh, ph), min(mw, pw)
            canvas[i, 0, :mh, :mw] = torch.from_numpy(
                union[:mh, :mw]).to(device=device, dtype=canvas.dtype)
        resized = F.interpolate(
            canvas, size=(h, w), mode='bilinear', align_corners=False)
        return (resized >= 0.5).float()

    def _raise_if_not_finite(self, named_losses: List[Tuple[str, Tensor]]):
        values = torch.stack([v.detach().float() for _, v in named_losses])
        if bool(torch.isfinite(values).all()):
            return
        bad = [f'{n}={v.item()}' for n, v in named_losses
               if not torch.isfinite(v.detach()).all()]
        raise FloatingPointError(
            'RefineMask: non-finite mask loss at ' + ', '.join(bad) +
            '. Lower the learning rate (the authors advise 0.0025 for one '
            'GPU), enable gradient clipping, or check the GT masks.')

    def loss_and_target(self,
                        stage_preds: List[Tensor],
                        semantic_pred: Optional[Tensor],
                        sampling_results,
                        batch_gt_instances: InstanceList,
                        rcnn_train_cfg=None,
                        batch_img_metas: Optional[List[dict]] = None) -> dict:
        """Losses of all outputs.

        Returns:
            dict: ``loss_mask`` (``loss_instance``, ``loss_semantic`` and
            per-output values ``bce_<size>`` for logging) and
            ``mask_targets`` (list of per-size targets).
        """
        targets = self.get_targets(sampling_results, batch_gt_instances)
        named, weighted = [], []
        prev_merged = None
        for i, (pred, tgt) in enumerate(zip(stage_preds, targets)):
            size = self.stage_sup_size[i]
            pred = pred[:, 0]
            if i in self.bar_stages:
                region = boundary_band(prev_merged >= 0, self.boundary_width)
                region |= boundary_band(targets[i - 1], self.boundary_width)
                region = upsample_band(region[:, None], (size, size))[:, 0]
                loss = self.loss_mask(pred, tgt, region)
            else:
                loss = self.loss_mask(pred, tgt, None)
            named.append((f'stage {i} ({size}x{size})', loss))
            weighted.append(self.stage_loss_weights[i] * loss)
            # merged prediction at this size, exactly as at inference
            det = pred.detach()[:, None]
            if i <= self.inference_start:
                prev_merged = det[:, 0]
            else:
                prev_merged = merge_stage_logits(prev_merged[:, None], det,
                                                 self.merge_width)[:, 0]
        losses = dict(loss_instance=sum(weighted))
        for (_, v), size in zip(named, self.stage_sup_size):
            losses[f'bce_{size}'] = v.detach()
        if self.with_semantic_logits:
            sem_target = self.get_semantic_targets(batch_gt_instances,
                                                   semantic_pred,
                                                   batch_img_metas)
            loss_sem = self.loss_semantic(semantic_pred, sem_target, None)
            named.append(('semantic', loss_sem))
            losses['loss_semantic'] = loss_sem
        if self.check_finite:
            self._raise_if_not_finite(named)
        return dict(loss_mask=losses, mask_targets=targets)

    # ------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------
    def predict_by_feat(self,
                        mask_probs: Sequence[Tensor],
                        results_list: InstanceList,
                        batch_img_metas: List[dict],
                        rcnn_test_cfg: ConfigDict,
                        rescale: bool = False) -> InstanceList:
        """Paste the final probabilities ``(n, 1, S, S)`` of every image.

        Same conventions as ``FCNMaskHead.predict_by_feat``: with ``rescale``
        the boxes are mapped back to ``ori_shape``; ``mask_thr_binary < 0``
        keeps uint8 soft masks (x255).
        """
        assert len(mask_probs) == len(results_list) == len(batch_img_metas)
        for img_id, img_meta in enumerate(batch_img_metas):
            results = results_list[img_id]
            if results.bboxes.shape[0] == 0:
                results_list[img_id] = empty_instances(
                    [img_meta],
                    results.bboxes.device,
                    task_type='mask',
                    instance_results=[results],
                    mask_thr_binary=rcnn_test_cfg.mask_thr_binary)[0]
                continue
            results.masks = self._paste_single(mask_probs[img_id],
                                               results.bboxes, img_meta,
                                               rcnn_test_cfg, rescale)
        return results_list

    @staticmethod
    def _paste_single(probs: Tensor, bboxes: Tensor, img_meta: dict,
                      rcnn_test_cfg: ConfigDict, rescale: bool) -> Tensor:
        scale_factor = bboxes.new_tensor(img_meta['scale_factor']).repeat(
            (1, 2))
        img_h, img_w = img_meta['ori_shape'][:2]
        device = bboxes.device
        if rescale:
            # in place, as FCNMaskHead: BaseRoIHead.predict relies on the mask
            # head to rescale the boxes of the results when with_mask
            bboxes /= scale_factor
        else:
            img_h = int(np.round(img_h * scale_factor[0, 1].item()))
            img_w = int(np.round(img_w * scale_factor[0, 0].item()))
        n = len(probs)
        if device.type == 'cpu':
            num_chunks = n  # one by one with skip_empty: cheapest on CPU
        else:
            num_chunks = int(
                np.ceil(n * int(img_h) * int(img_w) * BYTES_PER_FLOAT /
                        GPU_MEM_LIMIT))
            num_chunks = min(max(num_chunks, 1), n)
        threshold = rcnn_test_cfg.mask_thr_binary
        im_mask = torch.zeros(
            n,
            img_h,
            img_w,
            device=device,
            dtype=torch.bool if threshold >= 0 else torch.uint8)
        for inds in torch.chunk(torch.arange(n, device=device), num_chunks):
            chunk, spatial = _do_paste_mask(
                probs[inds].float(),
                bboxes[inds].float(),
                img_h,
                img_w,
                skip_empty=device.type == 'cpu')
            if threshold >= 0:
                chunk = chunk >= threshold
            else:
                chunk = (chunk * 255).to(dtype=torch.uint8)
            im_mask[(inds, ) + spatial] = chunk
        return im_mask


@MODELS.register_module()
class SimpleRefineMaskHead(RefineMaskHead):
    """The authors' later "faster" RefineMask variant.

    Differences from :class:`RefineMaskHead` (set through its arguments):
    no semantic logits or loss (``with_semantic_logits=False``), the semantic
    features enter each stage by plain RoIAlign (``semantic_transform=False``),
    the fusion has a global-average term (``global_context=True``), the last
    stage computes its logits at 56 and upsamples them to 112
    (``last_stage_half_res=True``), the last output is class-agnostic and the
    stage weights are 0.5, 0.75, 0.75, 1.0. The semantic convs use 64 channels
    by default (with plain RoIAlign the semantic channels are carried into
    every stage). The authors' released faster head (their
    ``r50-refinemask-1x-faster-better.py``) is
    ``semantic_channels=256, semantic_transform='in',
    global_context='identity'``, which the real-data configs set; the
    defaults here are the lighter design of our synthetic benchmark.
    """

    def __init__(self,
                 num_classes: int = 80,
                 semantic_channels: int = 64,
                 stage_num_classes: Optional[Sequence[int]] = None,
                 stage_loss_weights: Sequence[float] = (0.5, 0.75, 0.75, 1.0),
                 **kwargs) -> None:
        if stage_num_classes is None:
            stage_num_classes = (num_classes, num_classes, num_classes, 1)
        kwargs.setdefault('with_semantic_logits', False)
        kwargs.setdefault('semantic_transform', False)
        kwargs.setdefault('global_context', True)
        kwargs.setdefault('last_stage_half_res', True)
        super().__init__(
            semantic_channels=semantic_channels,
            stage_num_classes=stage_num_classes,
            stage_loss_weights=stage_loss_weights,
            **kwargs)
