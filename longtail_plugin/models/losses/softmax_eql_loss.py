"""Softmax Equalization Loss (Softmax-EQL).

Tan et al., "The Equalization Losses: Gradient-Driven Training for
Long-tailed Object Recognition", IEEE TPAMI 2023 (arXiv:2210.05566).

A softmax cross-entropy whose logits are shifted by accumulated gradient
statistics. With an indicator ``u_j`` per class (accumulated positive
gradient ``pos_j`` by default; ``neg_j``; or ``pos_j + neg_j``), clamped
below by ``eps = 1e-4``, a sample ``i`` of class ``y`` uses

.. math::

    z'_{ij} = z_{ij} + \\tau \\log(u_j / u_y) \\quad (j \\ne y), \\qquad
    z'_{iy} = z_{iy}, \\qquad L_i = \\mathrm{CE}(z'_i, y).

Rarely-trained classes (small ``u_j``) get their logits lowered during
training, which enlarges the margin the model learns for them. Statistics
are the magnitudes of the gradient of the *reduced* loss actually returned
(``loss_weight``, label weights and the mean / ``avg_factor`` normalisation
included), ``|dL/dz_ij| = loss_weight * s_i * |softmax(z'_i)_j - y_ij|``,
split by the one-hot target and all-reduced across processes - the same
numbers as a backward hook on the logits (the authors' collection), but
computed analytically. ``tau = 1``.

Two layouts, chosen by the number of logit columns ``K``:

* ``K == num_classes``: plain classification (e.g. ImageNet-LT); every
  column is adjusted and accumulated.
* ``K == num_classes + 1``: an MMDetection softmax bbox head, column ``C``
  is background (our design; the paper uses Softmax-EQL for image
  classification only). Background is not a long-tail class and is by far
  the most trained one, so it is left out of the equalization: its logit is
  never shifted, background RoIs use the plain cross-entropy, and its
  column is not accumulated. Foreground RoIs shift only the other
  foreground logits; background RoIs still contribute to the negative
  statistics of every foreground class. Test-time scores are the stock
  softmax (no custom channels).

``indicator='pos_and_neg'`` uses ``pos_j + neg_j`` (the total gradient
magnitude); the authors' public code adds the ratio ``pos_j / neg_j`` to
``neg_j`` instead, which mixes a ratio with a sum; we read it as a slip.

Statistics update only in training mode, as for
:class:`~longtail_plugin.models.losses.EqualizationLossV2`.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS
from ...utils.grad_stats import split_pos_neg
from .base_cls_loss import BaseClassificationLoss

__all__ = ['SoftmaxEqualizationLoss']

_INDICATORS = ('pos', 'neg', 'pos_and_neg')


@MODELS.register_module()
class SoftmaxEqualizationLoss(BaseClassificationLoss):
    """Softmax-EQL (Tan et al., TPAMI 2023).

    Args:
        num_classes: number of (foreground) classes ``C``.
        indicator: 'pos' | 'neg' | 'pos_and_neg'.
        tau: strength ``tau`` of the logit adjustment.
        eps: lower clamp of the indicator.
        use_sigmoid: kept for config compatibility; must be False.
        reduction: 'none' | 'mean' | 'sum'.
        loss_weight: weight of the loss.
    """

    use_sigmoid = False
    # in a bbox head: C classes + background, the stock softmax layout (the
    # head asks through get_cls_channels, which checks its num_classes)
    num_extra_channels = 1
    accepts_extra_column = True  # outside a head also [N, C] (classifier)

    def __init__(self,
                 num_classes: int,
                 indicator: str = 'pos',
                 tau: float = 1.0,
                 eps: float = 1e-4,
                 use_sigmoid: bool = False,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        if indicator not in _INDICATORS:
            raise ValueError(f'SoftmaxEqualizationLoss: indicator must be '
                             f'one of {_INDICATORS}, got {indicator!r}')
        super().__init__(num_classes, use_sigmoid, reduction, loss_weight,
                         stats_init_ratio=1.0)
        self.indicator = indicator
        self.tau = float(tau)
        self.eps = float(eps)

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, '
                f'indicator={self.indicator!r}, tau={self.tau}')

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """The stock softmax scores (background last)."""
        return F.softmax(cls_score, dim=-1)

    def max_label(self, width: int) -> int:
        # a plain classifier ([N, C]) has no background label
        return self.num_classes if width > self.num_classes else \
            self.num_classes - 1

    def indicator_values(self) -> Tensor:
        """The clamped indicator ``u_j`` (float32 ``[C]``)."""
        st = self.grad_stats
        if self.indicator == 'pos':
            u = st.pos_grad
        elif self.indicator == 'neg':
            u = st.neg_grad
        else:
            u = st.pos_grad + st.neg_grad
        return u.detach().clamp(min=self.eps).to(torch.float32)

    def per_class_scalars(self) -> Dict[str, Tensor]:
        """Per-class values for logging (see GradRatioLoggerHook)."""
        return dict(indicator=self.indicator_values())

    def logit_adjustment(self, label: Tensor, num_columns: int) -> Tensor:
        """``[N, K]`` additive term ``tau log(u_j / u_y)`` (0 where unused).
        """
        c = self.num_classes
        log_u = self.indicator_values().to(label.device).log()
        adj = torch.zeros((label.numel(), num_columns),
                          device=label.device)
        is_fg = (label >= 0) & (label < c)
        rows = is_fg.nonzero(as_tuple=True)[0]
        adj[rows, :c] = self.tau * (log_u[None, :] -
                                    log_u[label[rows]][:, None])
        return adj

    def _adjusted(self, logits: Tensor, label: Tensor) -> Tensor:
        adj = self.logit_adjustment(label, logits.size(1))
        return logits + adj.to(logits.dtype)

    def loss_per_sample(self, logits: Tensor, label: Tensor) -> Tensor:
        """``CE(z', y)`` with the adjusted logits ``z'``."""
        return F.cross_entropy(
            self._adjusted(logits, label), label, reduction='none')

    def statistics_step(self, logits: Tensor, label: Tensor,
                        weight: Optional[Tensor],
                        scale: float) -> Tuple[Tensor, Tensor]:
        """``|dL/dz_ij| = scale * w_i * |softmax(z'_i)_j - y_ij|``."""
        # d CE / d z = softmax(z') - onehot  (the shift is a constant)
        grad = self._adjusted(logits, label).softmax(dim=-1)
        grad[torch.arange(label.numel(), device=label.device), label] -= 1.0
        s = torch.full((label.numel(), ),
                       scale,
                       dtype=torch.float64,
                       device=logits.device)
        if weight is not None:
            s = s * weight.detach().to(torch.float64)
        return split_pos_neg(grad, label, s, self.num_classes)
