"""Equalization Loss v2 (EQL v2).

Tan et al., "Equalization Loss v2: A New Gradient Balance Approach for
Long-tailed Object Detection", CVPR 2021 (arXiv:2012.08548).

The classifier has ``C + 1`` sigmoid outputs: the ``C`` classes and an
objectness/background column (index ``C``); targets are one-hot over
``C + 1`` (a background RoI has target 1 in column ``C``). From the
accumulated gradient ratio ``g_j`` of each foreground class
(:class:`~longtail_plugin.utils.GradientStatistics`):

.. math::

    q_j = \\frac{1}{1 + e^{-\\gamma (g_j - \\mu)}}, \\qquad
    r_j = q_j, \\qquad w_j = 1 + \\alpha (1 - q_j),

(``r_C = w_C = 1`` for the background column) and

.. math::

    L = \\frac{1}{N}\\sum_i \\sum_{j \\le C}
        [w_j y_{ij} + r_j (1 - y_{ij})]\\, \\mathrm{BCE}(z_{ij}, y_{ij}).

After the loss the statistics receive, for the foreground columns only,
``pos_j += sum_i |p_ij - y_ij| y_ij W_ij`` and
``neg_j += sum_i |p_ij - y_ij| (1 - y_ij) W_ij`` where ``W_ij`` is the EQL v2
weight used in this step times the RoI's label weight; they are all-reduced
across processes. ``g_j`` starts at 100 so both weights start at ~1.

At test time ``s_j = sigmoid(z_j) (1 - sigmoid(z_C))`` for the classes and
``sigmoid(z_C)`` is the background score - provided to MMDetection's bbox
heads through the ``custom_cls_channels`` / ``custom_activation`` /
``custom_accuracy`` protocol, so ``Shared2FCBBoxHead`` and the cascade heads
need no change.

Differences from ``mmdet.models.losses.EQLV2Loss`` (MMDetection 3.3): label
weights and ``avg_factor`` are honoured; the head is told about the custom
channels so test scores use the objectness gate instead of a softmax;
statistics are always all-reduced under ``torch.distributed``, kept in
float64, and guarded against non-finite values.

When statistics update: only in training mode (``self.training``). MMEngine
puts the model in eval mode for validation/testing, where MMDetection's
detectors call ``predict`` and never the loss; the guard keeps any loss
computed in eval mode (e.g. a validation-loss hook) from changing the
training statistics.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS
from ...utils.grad_stats import split_pos_neg
from .base_cls_loss import BaseClassificationLoss
from .utils import top1_accuracy

__all__ = ['EqualizationLossV2']


@MODELS.register_module()
class EqualizationLossV2(BaseClassificationLoss):
    """Equalization Loss v2 (Tan et al., CVPR 2021).

    Args:
        num_classes: number of foreground classes ``C`` (the classifier has
            ``C + 1`` channels).
        gamma: steepness ``gamma`` of the mapping from ratio to weight.
        mu: centre ``mu`` of the mapping.
        alpha: ``alpha`` of the positive weight ``1 + alpha (1 - q_j)``.
        init_ratio: initial ``g_j`` (100 keeps the weights at ~1 at start).
        test_with_obj: gate class scores by ``1 - sigmoid(z_C)`` at test.
        reweight: ``False`` keeps every weight at 1 - plain sigmoid
            cross-entropy over the ``C + 1`` outputs - while the statistics
            are still recorded: the paper's sigmoid baseline, whose gradient
            ratios the EQL v2 ratios are compared with.
        use_sigmoid: kept for config compatibility; must be True.
        reduction: 'none' | 'mean' | 'sum'.
        loss_weight: weight of the loss.
    """

    use_sigmoid = True
    num_extra_channels = 1  # the objectness column
    custom_activation = True
    custom_accuracy = True

    def __init__(self,
                 num_classes: int,
                 gamma: float = 12.0,
                 mu: float = 0.8,
                 alpha: float = 4.0,
                 init_ratio: float = 100.0,
                 test_with_obj: bool = True,
                 reweight: bool = True,
                 use_sigmoid: bool = True,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(num_classes, use_sigmoid, reduction, loss_weight,
                         stats_init_ratio=init_ratio)
        self.gamma = float(gamma)
        self.mu = float(mu)
        self.alpha = float(alpha)
        self.test_with_obj = test_with_obj
        self.reweight = bool(reweight)

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, gamma={self.gamma}, '
                f'mu={self.mu}, alpha={self.alpha}')

    # --- MMDetection's custom classifier protocol -------------------------
    def get_activation(self, cls_score: Tensor) -> Tensor:
        """``[sigmoid(z_j) (1 - sigmoid(z_C))]_{j<C}`` and ``sigmoid(z_C)``.
        """
        self.check_width(cls_score)
        p = cls_score.sigmoid()
        bg = p[..., self.num_classes:]
        fg = p[..., :self.num_classes]
        if self.test_with_obj:
            fg = fg * (1.0 - bg)
        return torch.cat([fg, bg], dim=-1)

    def get_accuracy(self, cls_score: Tensor,
                     labels: Tensor) -> Dict[str, Tensor]:
        """Objectness accuracy (all RoIs) and class accuracy (fg RoIs)."""
        self.check_width(cls_score)
        c = self.num_classes
        is_fg = (labels >= 0) & (labels < c)
        pred_fg = cls_score[..., c].detach() < 0  # sigmoid(z_C) < 0.5
        if labels.numel() == 0:
            acc_obj = cls_score.new_tensor(0.)
        else:
            acc_obj = (pred_fg == is_fg).float().mean() * 100.0
        return dict(
            acc_objectness=acc_obj,
            acc_classes=top1_accuracy(cls_score[is_fg][:, :c],
                                      labels[is_fg]))

    # --- the loss ---------------------------------------------------------
    def class_weights(self) -> Tuple[Tensor, Tensor]:
        """Current ``(w, r)`` of the ``C + 1`` columns (float32)."""
        if not self.reweight:
            ones = self.grad_stats.ratio().new_ones(self.num_classes + 1)
            return ones, ones
        q = torch.sigmoid(self.gamma * (self.grad_stats.ratio() - self.mu))
        one = q.new_ones(1)
        neg_w = torch.cat([q, one])
        pos_w = torch.cat([1.0 + self.alpha * (1.0 - q), one])
        return pos_w, neg_w

    def per_class_scalars(self) -> Dict[str, Tensor]:
        """Per-foreground-class values for logging (see GradRatioLoggerHook).
        """
        pos_w, neg_w = self.class_weights()
        return dict(pos_weight=pos_w[:-1], neg_weight=neg_w[:-1])

    def _weights_and_target(self, logits: Tensor,
                            label: Tensor) -> Tuple[Tensor, Tensor]:
        """``[N, C+1]`` element weights of this step and one-hot targets."""
        target = F.one_hot(label, logits.size(1)).to(logits.dtype)
        pos_w, neg_w = (t.to(logits) for t in self.class_weights())
        w = pos_w[None, :] * target + neg_w[None, :] * (1.0 - target)
        return w, target

    def loss_per_sample(self, logits: Tensor, label: Tensor) -> Tensor:
        """``sum_j [w_j y_ij + r_j (1 - y_ij)] BCE(z_ij, y_ij)``."""
        w, target = self._weights_and_target(logits, label)
        bce = F.binary_cross_entropy_with_logits(
            logits, target, reduction='none')
        return (bce * w).sum(dim=-1)

    def statistics_step(self, logits: Tensor, label: Tensor,
                        weight: Optional[Tensor],
                        scale: float) -> Tuple[Tensor, Tensor]:
        """``|p_ij - y_ij|`` weighted by this step's EQL v2 weight and the
        label weight (not by the reduction: the authors' statistics)."""
        w, target = self._weights_and_target(logits, label)
        grad = (logits.sigmoid() - target).abs()
        elem_w = w if weight is None else w * weight.to(w.dtype)[:, None]
        return split_pos_neg(grad, target, elem_w, self.num_classes)
