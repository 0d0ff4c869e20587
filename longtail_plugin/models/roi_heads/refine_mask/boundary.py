"""Boundary bands of binary RoI masks (RefineMask's loss and inference).

RefineMask (Zhang et al., "RefineMask: Towards High-Quality Instance
Segmentation with Fine-Grained Features", CVPR 2021) restricts its
boundary-aware refinement (BAR) loss and its inference-time stage merging to a
band around the mask contour. With a binary mask ``m`` and a width ``w``, a
pixel ``p`` lies in the band when

    #{q in W_w(p) : m(q) != m(p)} > ratio * (2w + 1)^2,   ratio = 0.1,

where ``W_w(p)`` is the ``(2w+1) x (2w+1)`` window centred on ``p``. Pixels
outside the map count as background (zero padding), so a foreground pixel on
the RoI border is in the band. The band covers both sides of the contour.

This module is the only implementation of the band: :mod:`bar_loss`
(training) and the RefineMask head (training regions and inference merging)
both call :func:`boundary_band`.
"""
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['boundary_band', 'upsample_band', 'merge_stage_logits']


def boundary_band(mask: Tensor, width: int, ratio: float = 0.1) -> Tensor:
    """Boolean band of pixels near the contour of binary masks.

    Args:
        mask (Tensor): Binary masks of shape ``(N, H, W)`` or
            ``(N, 1, H, W)`` (bool, integer or float in {0, 1}; any value
            ``>= 0.5`` counts as foreground).
        width (int): Half window size ``w``; the window is ``(2w+1)^2``.
        ratio (float): A pixel is in the band when strictly more than
            ``ratio`` of its window belongs to the other class.

    Returns:
        Tensor: Bool tensor with the shape of ``mask``.
    """
    if width < 0:
        raise ValueError(f'width must be >= 0, got {width}')
    squeeze = mask.dim() == 3
    m = mask[:, None] if squeeze else mask
    if m.dim() != 4 or m.size(1) != 1:
        raise ValueError('mask must have shape (N, H, W) or (N, 1, H, W), '
                         f'got {tuple(mask.shape)}')
    fg = (m >= 0.5) if m.is_floating_point() else (m != 0)
    if fg.numel() == 0:
        return fg[:, 0] if squeeze else fg
    k = 2 * width + 1
    area = k * k
    # Counting with avg_pool (count_include_pad=True: the outside is
    # background) in float32, whatever the autocast state; counts are exact
    # integers after rounding.
    with torch.autocast(device_type=fg.device.type, enabled=False):
        fg_count = F.avg_pool2d(
            fg.float(), k, stride=1, padding=width,
            count_include_pad=True) * area
        fg_count = torch.round(fg_count)
    opposite = torch.where(fg, area - fg_count, fg_count)
    band = opposite > ratio * area
    return band[:, 0] if squeeze else band


def upsample_band(band: Tensor, size) -> Tensor:
    """Upsample a boolean band (``(N, 1, h, w)``) to ``size``.

    Bilinear resizing (``align_corners=False``) followed by ``>= 0.5``; for
    an exact factor 2 this equals nearest-neighbour upsampling, which is what
    is computed.
    """
    return F.interpolate(band.float(), size=size, mode='nearest') >= 0.5


def merge_stage_logits(coarse: Tensor, fine: Tensor, width: int = 1) -> Tensor:
    """RefineMask's stage merging.

    The finer logits replace the upsampled coarser logits only inside the
    boundary band (width ``width``) of the coarser binary mask
    (``sigmoid(coarse) >= 0.5``); elsewhere the upsampled coarse logits stand.

    Args:
        coarse (Tensor): Logits ``(N, 1, s, s)``.
        fine (Tensor): Logits ``(N, 1, S, S)`` with ``S > s`` (usually 2s).
        width (int): Band width at the coarse resolution. Defaults to 1.

    Returns:
        Tensor: Merged logits ``(N, 1, S, S)`` in the dtype of ``fine``.
    """
    size = fine.shape[-2:]
    band = upsample_band(boundary_band(coarse >= 0, width), size)
    coarse_up = F.interpolate(
        coarse.to(fine.dtype), size=size, mode='bilinear',
        align_corners=False)
    return torch.where(band, fine, coarse_up)
