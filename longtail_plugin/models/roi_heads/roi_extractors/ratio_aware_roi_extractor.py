"""Ratio-aware mask-proposal assignment: the FPN level of a mask RoI from its
box scale AND its mask/box area ratio.

Motivated by Tan et al., "1st Place Solution of LVIS Challenge 2020: A Good
Box is not a Guarantee of a Good Mask" (arXiv:2009.01559): thin, hollow or
diagonal objects have large boxes but a small mask-area / box-area ratio
``r``, and their mask features pooled from the coarse level that the box
scale selects lose the detail the mask needs. The report gives no formula;
the rule below is OURS.

MMDetection's rule (FPN, Lin et al. CVPR 2017;
``SingleRoIExtractor.map_roi_levels``), with ``s0 = finest_scale``::

    level = clamp(floor(log2(sqrt(w h) / s0 + 1e-6)), 0, L - 1)

Ours replaces the box scale by an effective scale that shrinks with the
ratio::

    r~    = clamp(r, min_ratio, 1)
    s_eff = sqrt(w h) * r~ ** (gamma / 2)     # gamma = 1: sqrt(w h r),
                                               # the square root of the
                                               # mask area
    level = clamp(floor(log2(s_eff / s0 + 1e-6)), 0, L - 1)

so a RoI moves ``-(gamma / 2) log2(r~)`` levels finer (r = 1/4, gamma = 1:
one level). ``min_ratio`` (default 1/16) bounds the shift (two levels with
gamma = 1); ``gamma = 0`` or ``r = 1`` is MMDetection's rule exactly.

Where ``r`` comes from is the caller's choice, passed as
``forward(feats, rois, ratios=...)``: in training
:class:`~longtail_plugin.models.roi_heads.RatioAwareRoIHead` gives each
positive RoI the ratio of its matched ground truth (mask area / box area).
Without ratios every RoI gets ``default_ratio`` (default 1: MMDetection's
mapping). At inference the head passes none by default (our explicit,
simple choice: no extra head, no second mask pass, at the cost of a
train/test difference for thin objects), or, with
``test_ratio='predicted_mask'``, the ratio of a first pass's predicted mask;
the benchmark decides between them.
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig

__all__ = ['RatioAwareRoIExtractor', 'ratio_aware_levels']


def ratio_aware_levels(rois: Tensor,
                       num_levels: int,
                       finest_scale: float,
                       ratios: Optional[Tensor] = None,
                       gamma: float = 1.0,
                       min_ratio: float = 1.0 / 16) -> Tensor:
    """FPN level (0-based) of each RoI ``[k, 5]`` from its box scale and
    mask/box area ratio (see the module docstring); ``ratios=None`` is
    MMDetection's box-scale rule."""
    scale = torch.sqrt(
        (rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
    if ratios is not None:
        r = ratios.to(scale).clamp(min=min_ratio, max=1.0)
        scale = scale * r.pow(gamma / 2.0)
    lvls = torch.floor(torch.log2(scale / finest_scale + 1e-6))
    return lvls.clamp(min=0, max=num_levels - 1).long()


@MODELS.register_module()
class RatioAwareRoIExtractor(SingleRoIExtractor):
    """``SingleRoIExtractor`` whose level mapping also uses each RoI's
    mask/box area ratio.

    Args:
        roi_layer, out_channels, featmap_strides, finest_scale, init_cfg:
            as :class:`mmdet.models.roi_heads.SingleRoIExtractor`.
        gamma: exponent of the ratio in the effective scale (>= 0).
        min_ratio: ratios are clamped to ``[min_ratio, 1]``, in (0, 1].
        default_ratio: the ratio of RoIs given none (inference), in
            ``[min_ratio, 1]``; 1 is MMDetection's mapping.
    """

    def __init__(self,
                 roi_layer: ConfigType,
                 out_channels: int,
                 featmap_strides: List[int],
                 finest_scale: int = 56,
                 gamma: float = 1.0,
                 min_ratio: float = 1.0 / 16,
                 default_ratio: float = 1.0,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(roi_layer, out_channels, featmap_strides,
                         finest_scale, init_cfg)
        name = type(self).__name__
        if not gamma >= 0:
            raise ValueError(f'{name}: gamma must be >= 0, got {gamma!r}')
        if not 0 < min_ratio <= 1:
            raise ValueError(f'{name}: min_ratio must be in (0, 1], got '
                             f'{min_ratio!r}')
        if not min_ratio <= default_ratio <= 1:
            raise ValueError(f'{name}: default_ratio must be in [min_ratio='
                             f'{min_ratio}, 1], got {default_ratio!r}')
        self.gamma = float(gamma)
        self.min_ratio = float(min_ratio)
        self.default_ratio = float(default_ratio)
        self._ratios: Optional[Tensor] = None  # set for one forward call

    def map_roi_levels(self, rois: Tensor, num_levels: int) -> Tensor:
        ratios = self._ratios
        if ratios is None and self.default_ratio != 1.0:
            ratios = rois.new_full((rois.size(0), ), self.default_ratio)
        return ratio_aware_levels(rois, num_levels, self.finest_scale,
                                  ratios, self.gamma, self.min_ratio)

    def forward(self,
                feats: Tuple[Tensor],
                rois: Tensor,
                roi_scale_factor: Optional[float] = None,
                ratios: Optional[Tensor] = None) -> Tensor:
        """RoI features; ``ratios`` ``[k]`` (mask area / box area of each
        RoI) select the levels, ``None`` uses ``default_ratio``."""
        if ratios is not None and ratios.shape != rois.shape[:1]:
            raise ValueError(
                f'{type(self).__name__}: ratios must have one value per RoI '
                f'({rois.size(0)}), got shape {tuple(ratios.shape)}')
        self._ratios = ratios
        try:
            return super().forward(feats, rois, roi_scale_factor)
        finally:
            self._ratios = None
