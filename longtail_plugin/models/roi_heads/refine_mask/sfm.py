"""Building blocks of RefineMask's mask head.

Zhang et al., "RefineMask: Towards High-Quality Instance Segmentation with
Fine-Grained Features", CVPR 2021, Sec. 3.2-3.3.

* :class:`MultiBranchFusion` - parallel 3x3 convolutions with dilations
  (1, 3, 5) whose outputs are summed, then a 1x1 convolution. The "faster"
  variant adds a global-context term: a 1x1 convolution of the spatial
  average of the input, broadcast over the RoI.
* :class:`SemanticFusionModule` (also registered as ``SFMStage``) - one
  refinement stage at RoI size ``s``. With instance features ``F_i``
  (``C_in`` channels, ``s x s``), the image-level semantic features ``S`` and,
  in the paper version, the semantic foreground probability ``P``:

  1. ``F_s = relu(conv1x1(RoIAlign_s(relu(conv1x1(S)))))`` (paper) or
     ``F_s = RoIAlign_s(S)`` (faster variant);
  2. ``M_i = conv1x1(F_i)[label]`` - this stage's mask logits ``(N, 1, s, s)``;
  3. ``M_s = RoIAlign_s(P)`` (paper only, ``aligned=True``, stride 4);
  4. ``G = conv1x1(MBF(conv1x1(cat[F_i, F_s, sigmoid(M_i), M_s])))`` with
     ``C_out - k`` channels (``k`` = number of mask maps), upsampled x2;
  5. output ``cat[G, up2(sigmoid(M_i)), up2(M_s)]`` with ``C_out`` channels at
     ``2s`` (or at ``s`` when ``upsample=False``).

Every convolution is followed by the activation (ReLU) except the logits; the
paper does not specify where the activations go inside the fusion, this is our
choice. The mask logits of a stage are computed with the weights of the RoI's
label only (a gather, not a ``num_classes``-channel map), which keeps LVIS'
1203 classes cheap at 56x56.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmcv.ops import RoIAlign
from mmengine.model import BaseModule, ModuleList
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.utils import OptConfigType, OptMultiConfig

__all__ = [
    'MultiBranchFusion', 'SemanticFusionModule', 'roi_align_fp32',
    'label_conv1x1'
]


def label_conv1x1(conv: nn.Conv2d, x: Tensor, labels: Tensor) -> Tensor:
    """``conv(x)[arange(N), labels][:, None]`` without the other channels.

    The 1x1 weights of each RoI's label are gathered, so the cost does not
    grow with the number of classes. A 1-output conv ignores ``labels``
    (class-agnostic). Returns ``(N, 1, H, W)``.
    """
    weight = conv.weight.flatten(1)  # (K, C)
    if weight.size(0) == 1:
        idx = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
    else:
        idx = labels.long()
    w = weight[idx].to(x.dtype)
    out = torch.einsum('nchw,nc->nhw', x, w)
    return (out + conv.bias[idx].to(out.dtype)[:, None, None])[:, None]


def _kaiming_fan_in(modules, scale: float = 1.0) -> None:
    """He init with ``mode='fan_in'`` (variance-preserving in the forward
    pass) for the convs of ``modules``, times ``scale``.

    mmcv's ``ConvModule`` defaults to ``fan_out``, which amplifies the
    activations of every channel-reducing 1x1 conv (2C+2 -> C, C -> C/2-2) and,
    with the summed fusion branches, grows them ~4x per stage (~100x at 112x112
    in a 256-channel head): a recipe for the loss explosions reported with the
    authors' code.
    """
    for mod in modules:
        if mod is None:
            continue
        for m in mod.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode='fan_in', nonlinearity='relu')
                with torch.no_grad():
                    m.weight.mul_(scale)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)


def roi_align_fp32(op: RoIAlign, feat: Tensor, rois: Tensor) -> Tensor:
    """Run an mmcv ``RoIAlign`` on bf16 features by computing it in float32.

    mmcv's kernels have no bfloat16 implementation; float16/float32 inputs are
    passed through unchanged.
    """
    if feat.dtype == torch.bfloat16:
        feat = feat.float()
    return op(feat, rois.to(feat.dtype))


@MODELS.register_module()
class MultiBranchFusion(BaseModule):
    """Multi-branch dilated fusion.

    ``y = act(conv1x1(sum_d act(conv3x3_d(x)) [+ g(mean_hw(x))]))``

    Args:
        channels (int): Input and output channels.
        dilations (Sequence[int]): Dilations of the 3x3 branches.
        global_context (bool | str): the global-average term of the faster
            variant: ``False`` (none), ``True`` / ``'conv'`` (``g`` = 1x1
            conv + activation, our first design) or ``'identity'`` (``g`` =
            identity: the RoI mean is added as is, as in the authors'
            released faster head).
    """

    def __init__(self,
                 channels: int,
                 dilations: Sequence[int] = (1, 3, 5),
                 global_context: bool = False,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = None,
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if global_context not in (False, True, 'conv', 'identity'):
            raise ValueError(
                f'MultiBranchFusion: global_context={global_context!r}, '
                "expected False, True, 'conv' or 'identity'")
        self.global_identity = global_context == 'identity'
        self.branches = ModuleList([
            ConvModule(
                channels,
                channels,
                3,
                padding=d,
                dilation=d,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg) for d in dilations
        ])
        self.global_conv = ConvModule(
            channels, channels, 1, conv_cfg=conv_cfg, norm_cfg=None,
            act_cfg=act_cfg) if global_context in (True, 'conv') else None
        self.merge = ConvModule(
            channels,
            channels,
            1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)

    def init_weights(self) -> None:
        """Fan-in He init; the summed terms are scaled by ``1/sqrt(n)`` so
        that their sum keeps the input's scale."""
        super().init_weights()
        n = len(self.branches) + (self.global_conv is not None
                                  or self.global_identity)
        _kaiming_fan_in(list(self.branches) + [self.global_conv],
                        scale=n**-0.5)
        _kaiming_fan_in([self.merge])

    def forward(self, x: Tensor) -> Tensor:
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        if self.global_conv is not None and x.size(0) > 0:
            out = out + self.global_conv(x.mean(dim=(2, 3), keepdim=True))
        elif self.global_identity and x.size(0) > 0:
            out = out + x.mean(dim=(2, 3), keepdim=True)
        return self.merge(out)


@MODELS.register_module()
@MODELS.register_module(name='SFMStage')
class SemanticFusionModule(BaseModule):
    """One RefineMask stage (Semantic Fusion Module), ``s -> 2s``.

    Args:
        in_channels (int): Channels of the incoming instance features.
        out_channels (int): Channels of the output features.
        semantic_in_channels (int): Channels of the image-level semantic
            features.
        num_classes (int): Classes of this stage's mask logits (1 for a
            class-agnostic stage).
        roi_size (int): Input RoI size ``s``.
        semantic_stride (int): Stride of the semantic features. Defaults to 4.
        dilations (Sequence[int]): Dilations of the multi-branch fusion.
        semantic_transform (bool | str): ``True`` (paper version): 1x1 conv
            before and after the RoIAlign of the semantic features (reducing
            them to ``in_channels``). ``'in'``: the 1x1 conv before the
            RoIAlign only (the authors' released faster head). ``False``:
            plain RoIAlign.
        with_semantic_mask (bool): Use the RoIAligned semantic foreground
            probability (paper). Defaults to True.
        global_context (bool): Global-average term in the fusion.
        upsample (bool): Upsample the output x2. Defaults to True.
        align_corners (bool): ``align_corners`` of the x2 upsampling.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 semantic_in_channels: int,
                 num_classes: int,
                 roi_size: int,
                 semantic_stride: int = 4,
                 dilations: Sequence[int] = (1, 3, 5),
                 semantic_transform: Union[bool, str] = True,
                 with_semantic_mask: bool = True,
                 global_context: bool = False,
                 upsample: bool = True,
                 align_corners: bool = True,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = None,
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_classes = num_classes
        self.roi_size = roi_size
        if semantic_transform not in (False, True, 'in'):
            raise ValueError(
                'SemanticFusionModule: semantic_transform='
                f"{semantic_transform!r}, expected True, False or 'in'")
        self.semantic_transform = semantic_transform
        self.with_semantic_mask = with_semantic_mask
        self.upsample = upsample
        self.align_corners = align_corners
        conv_kw = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self.roi_align = RoIAlign(
            output_size=roi_size,
            spatial_scale=1.0 / semantic_stride,
            sampling_ratio=0,
            aligned=True)
        if semantic_transform:
            self.semantic_in = ConvModule(semantic_in_channels, in_channels,
                                          1, **conv_kw)
            self.semantic_out = ConvModule(
                in_channels, in_channels, 1,
                **conv_kw) if semantic_transform is True else None
            sem_channels = in_channels
        else:
            self.semantic_in = self.semantic_out = None
            sem_channels = semantic_in_channels
        self.instance_logits = nn.Conv2d(in_channels, num_classes, 1)

        num_masks = 2 if with_semantic_mask else 1
        self.fuse_in = ConvModule(in_channels + sem_channels + num_masks,
                                  in_channels, 1, **conv_kw)
        self.fusion = MultiBranchFusion(
            in_channels,
            dilations,
            global_context=global_context,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        if out_channels <= num_masks:
            raise ValueError(f'out_channels ({out_channels}) must exceed the '
                             f'number of concatenated masks ({num_masks})')
        self.fuse_out = ConvModule(in_channels, out_channels - num_masks, 1,
                                   **conv_kw)

    def init_weights(self) -> None:
        super().init_weights()  # includes the fusion's own init
        _kaiming_fan_in(
            [self.semantic_in, self.semantic_out, self.fuse_in, self.fuse_out])
        # small predictor init (fan_out of a 1-class 1x1 conv would give
        # std 1.4 and saturated initial logits)
        nn.init.normal_(self.instance_logits.weight, std=0.01)
        nn.init.constant_(self.instance_logits.bias, 0)

    def prepare_semantic(self, semantic_feat: Tensor) -> Tensor:
        """Image-level part of step 1 (run once per batch, not per chunk)."""
        if self.semantic_in is None:
            return semantic_feat
        return self.semantic_in(semantic_feat)

    def _up(self, x: Tensor) -> Tensor:
        return F.interpolate(
            x, scale_factor=2, mode='bilinear',
            align_corners=self.align_corners)

    def forward(self,
                instance_feats: Tensor,
                semantic_feat: Tensor,
                rois: Tensor,
                roi_labels: Tensor,
                semantic_prob: Optional[Tensor] = None
                ) -> Tuple[Tensor, Tensor]:
        """Run the stage.

        Args:
            instance_feats (Tensor): ``(N, C_in, s, s)``.
            semantic_feat (Tensor): Output of :meth:`prepare_semantic`,
                ``(B, C, H/4, W/4)``.
            rois (Tensor): ``(N, 5)`` RoIs (batch index first), image scale.
            roi_labels (Tensor): ``(N,)`` labels used to select the logits.
            semantic_prob (Tensor, optional): ``(B, 1, H/4, W/4)`` semantic
                foreground probability (required when
                ``with_semantic_mask``).

        Returns:
            tuple[Tensor, Tensor]: the output features ``(N, C_out, 2s, 2s)``
            and this stage's mask logits ``(N, 1, s, s)``.
        """
        sem = roi_align_fp32(self.roi_align, semantic_feat, rois)
        if self.semantic_out is not None:
            sem = self.semantic_out(sem)

        # logits of the RoI's class only
        logits = label_conv1x1(self.instance_logits, instance_feats,
                               roi_labels)
        ins_prob = logits.sigmoid()

        parts = [instance_feats, sem.to(instance_feats.dtype),
                 ins_prob.to(instance_feats.dtype)]
        masks = [ins_prob]
        if self.with_semantic_mask:
            if semantic_prob is None:
                raise ValueError('semantic_prob is required when '
                                 'with_semantic_mask=True')
            sem_mask = roi_align_fp32(self.roi_align, semantic_prob, rois)
            parts.append(sem_mask.to(instance_feats.dtype))
            masks.append(sem_mask)
        x = self.fuse_out(self.fusion(self.fuse_in(torch.cat(parts, dim=1))))
        if self.upsample:
            x = self._up(x)
            masks = [self._up(m) for m in masks]
        out = torch.cat([x] + [m.to(x.dtype) for m in masks], dim=1)
        return out, logits
