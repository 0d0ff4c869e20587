"""The frame every classification loss of the plugin is built on.

:class:`BaseClassificationLoss` holds what EQL, EQL v2, Softmax-EQL (and a
new loss such as Balanced Group Softmax) would otherwise each repeat, so that
a loss is its formula and little else:

* MMDetection's custom-classifier protocol (as ``seesaw_loss.py``):
  ``custom_cls_channels`` / ``custom_activation`` / ``custom_accuracy`` and
  :meth:`~BaseClassificationLoss.get_cls_channels`. The bbox head asks the
  loss for its channel count at build time; the frame checks the head's
  ``num_classes`` against the loss's there and remembers that the loss now
  serves a head (the logits width is then exactly the head's).
* Checks, each raising ``ValueError`` that names the loss and the valid
  range: ``use_sigmoid`` against the loss's kind, ``reduction`` /
  ``reduction_override``, ``num_classes`` (against the head at build time,
  and against the categories of ``ann_file`` for losses that read one, see
  :meth:`~BaseClassificationLoss.check_ann_file_classes`), the logits width
  at call time, labels that are not integers or lie outside ``[0, C]`` (``C``
  = background; ``[0, C - 1]`` for a plain classifier without a background
  column), weights that do not have one value per sample.
* An empty batch returns a zero loss that keeps the graph (DDP needs every
  parameter used) and still takes part in the statistics' all-reduce.
* One reduction rule: MMDetection's ``weight_reduce_loss`` (see
  :mod:`.utils`), then ``loss_weight``.
* Gradient statistics (:class:`~longtail_plugin.utils.GradientStatistics`)
  when the loss asks for them (``stats_init_ratio``): updated in training
  mode only, once per call, with what :meth:`statistics_step` returns.

A subclass sets the class attributes ``use_sigmoid`` (the classifier kind),
``num_extra_channels`` (head channels beyond the ``C`` classes),
``accepts_extra_column`` (whether, outside a head, ``C + 1`` wide logits are
also accepted) and ``custom_activation`` / ``custom_accuracy``, and
implements :meth:`loss_per_sample` (plus :meth:`statistics_step`,
:meth:`get_activation`, :meth:`get_accuracy` as it needs). A sketch::

    @MODELS.register_module()
    class MyLoss(BaseClassificationLoss):
        use_sigmoid = False
        num_extra_channels = 1          # softmax head: C classes + background

        def loss_per_sample(self, logits, label):
            return F.cross_entropy(logits, label, reduction='none')

Label convention (MMDetection's): ``0 .. C-1`` foreground, ``C``
background.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from ...utils.grad_stats import GradientStatistics
from .utils import REDUCTIONS, reduction_scale, upcast, weighted_reduce

__all__ = ['BaseClassificationLoss']


class BaseClassificationLoss(nn.Module):
    """Frame of a classification loss (see the module docstring).

    Args:
        num_classes: number of foreground classes ``C``.
        use_sigmoid: the config's ``use_sigmoid``; must match the loss's
            kind (the class attribute of the same name). MMDetection's
            heads read it.
        reduction: 'none' | 'mean' | 'sum'.
        loss_weight: weight of the loss.
        stats_init_ratio: when given, the loss keeps
            :class:`~longtail_plugin.utils.GradientStatistics` for its ``C``
            classes (``self.grad_stats``) starting at this ratio.
        stats_eps: the ``eps`` of the statistics' ratio.
    """

    #: the classifier kind: True = one sigmoid per class, False = softmax
    use_sigmoid: bool = True
    #: channels the head gets beyond the ``C`` classes (objectness or
    #: background column)
    num_extra_channels: int = 0
    #: outside a head, ``C`` and ``C + 1`` wide logits are both accepted
    accepts_extra_column: bool = False
    #: MMDetection's protocol (read by ``BBoxHead``)
    custom_cls_channels: bool = True
    custom_activation: bool = False
    custom_accuracy: bool = False

    def __init__(self,
                 num_classes: int,
                 use_sigmoid: Optional[bool] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 stats_init_ratio: Optional[float] = None,
                 stats_eps: float = 1e-10) -> None:
        super().__init__()
        name = type(self).__name__
        kind = type(self).use_sigmoid
        if use_sigmoid is not None and bool(use_sigmoid) != kind:
            raise ValueError(
                f'{name} is a {"sigmoid" if kind else "softmax"} loss: '
                f'use_sigmoid must be {kind}, got {use_sigmoid}')
        if isinstance(num_classes, bool) or int(num_classes) != num_classes \
                or int(num_classes) <= 0:
            raise ValueError(f'{name}: num_classes must be a positive '
                             f'integer, got {num_classes!r}')
        if reduction not in REDUCTIONS:
            raise ValueError(f'{name}: reduction must be one of '
                             f'{REDUCTIONS}, got {reduction!r}')
        self.num_classes = int(num_classes)
        self.reduction = reduction
        self.loss_weight = float(loss_weight)
        #: head channels once a head has asked (``get_cls_channels``)
        self.head_cls_channels: Optional[int] = None
        if stats_init_ratio is not None:
            self.grad_stats = GradientStatistics(
                self.num_classes,
                init_ratio=stats_init_ratio,
                eps=stats_eps,
                name=name)
        else:
            self.grad_stats = None

    # --- MMDetection's custom classifier protocol -------------------------
    def get_cls_channels(self, num_classes: int) -> int:
        """Channels of the head's classifier: ``C + num_extra_channels``.

        Called by the bbox head at build time with its ``num_classes``;
        a head with another class count is an error.
        """
        if num_classes != self.num_classes:
            raise ValueError(
                f'{type(self).__name__}: num_classes={self.num_classes} but '
                f'the head has num_classes={num_classes} (set both to the '
                f'number of categories of the training set)')
        self.head_cls_channels = num_classes + self.num_extra_channels
        return self.head_cls_channels

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """Test-time scores ``[..., C + 1]`` (background last)."""
        raise NotImplementedError

    def get_accuracy(self, cls_score: Tensor,
                     labels: Tensor) -> Dict[str, Tensor]:
        """Accuracies to log (only used with ``custom_accuracy``)."""
        raise NotImplementedError

    # --- checks -----------------------------------------------------------
    def valid_widths(self) -> Tuple[int, ...]:
        """Logit widths :meth:`forward` accepts."""
        c = self.num_classes
        if self.head_cls_channels is not None:
            return (self.head_cls_channels, )
        widths = (c + self.num_extra_channels, )
        if self.accepts_extra_column and self.num_extra_channels == 0:
            widths += (c + 1, )
        elif self.accepts_extra_column:
            widths = (c, ) + widths
        return widths

    def check_width(self, cls_score: Tensor) -> int:
        """The logits width ``K``; an error unless it is a valid width."""
        k = cls_score.size(-1) if cls_score.dim() else 0
        widths = self.valid_widths()
        if cls_score.dim() != 2 or k not in widths:
            expected = ' or '.join(str(w) for w in widths)
            raise ValueError(
                f'{type(self).__name__}: cls_score has shape '
                f'{tuple(cls_score.shape)}, expected [N, {expected}] '
                f'for num_classes={self.num_classes}')
        return k

    def max_label(self, width: int) -> int:
        """Largest valid label for logits of ``width`` columns (``C``, the
        background label, unless a subclass says otherwise)."""
        return self.num_classes

    def check_labels(self, label: Tensor, num: int, width: int) -> Tensor:
        """``label`` as ``[num]`` int64; an error for non-integer labels or
        labels outside ``[0, max_label(width)]``."""
        name = type(self).__name__
        hi = self.max_label(width)
        if label.dtype.is_floating_point or label.is_complex() or \
                label.dtype == torch.bool:
            raise ValueError(
                f'{name}: labels must be integers in [0, {hi}], got dtype '
                f'{label.dtype}')
        if label.numel() != num:
            raise ValueError(f'{name}: {label.numel()} labels for {num} '
                             f'rows of cls_score')
        label = label.reshape(num).long()
        if num:
            # one device-to-host copy per call (this runs every iteration)
            lo_seen, hi_seen = torch.stack(torch.aminmax(label)).tolist()
            if lo_seen < 0 or hi_seen > hi:
                bad = lo_seen if lo_seen < 0 else hi_seen
                meaning = f'0..{self.num_classes - 1} classes'
                if hi == self.num_classes:
                    meaning += f', {hi} background'
                raise ValueError(
                    f'{name}: label {bad} is outside the valid range '
                    f'[0, {hi}] ({meaning})')
        return label

    def check_weight(self, weight: Optional[Tensor],
                     num: int) -> Optional[Tensor]:
        """Label weights as ``[num]`` (one per sample), or ``None``."""
        if weight is None:
            return None
        if weight.numel() != num:
            raise ValueError(
                f'{type(self).__name__}: weight has shape '
                f'{tuple(weight.shape)}, expected one value per sample '
                f'({num})')
        return weight.reshape(num)

    def resolve_reduction(self, reduction_override: Optional[str]) -> str:
        """``reduction_override`` or the configured reduction."""
        if reduction_override not in (None, ) + REDUCTIONS:
            raise ValueError(
                f'{type(self).__name__}: reduction_override must be None or '
                f'one of {REDUCTIONS}, got {reduction_override!r}')
        return reduction_override or self.reduction

    def check_ann_file_classes(self, info, key: str = 'ann_file') -> None:
        """Error naming ``key`` and the file when the categories of an
        annotation file (:class:`~longtail_plugin.utils.CategoryInfo`)
        are not ``num_classes``."""
        if info.num_classes != self.num_classes:
            raise ValueError(
                f'{type(self).__name__}: num_classes={self.num_classes} but '
                f'{key}={info.source!r} has {info.num_classes} categories')

    # --- the loss ---------------------------------------------------------
    def loss_per_sample(self, logits: Tensor, label: Tensor) -> Tensor:
        """The loss of each sample, ``[N]`` (summed over classes).

        Args:
            logits: ``[N, K]`` logits, float32 or float64 (``K`` a valid
                width).
            label: ``[N]`` int64 labels, checked.
        """
        raise NotImplementedError

    def statistics_step(self, logits: Tensor, label: Tensor,
                        weight: Optional[Tensor],
                        scale: float) -> Tuple[Tensor, Tensor]:
        """``(pos, neg)`` per-class sums of this step for ``grad_stats``.

        Called without gradient, in training mode, after the loss. ``scale``
        is ``d(returned loss) / d(loss_per_sample)`` of one sample before its
        label weight (``loss_weight`` and the reduction included).
        """
        raise NotImplementedError

    @staticmethod
    def zero_loss(cls_score: Tensor, reduction: str) -> Tensor:
        """Zero loss that keeps the graph (``[N]`` zeros for 'none')."""
        if reduction == 'none':
            return cls_score.sum(dim=-1) * 0.0
        return cls_score.sum() * 0.0

    def check_inputs(self, cls_score: Tensor, label: Tensor,
                     weight: Optional[Tensor],
                     reduction_override: Optional[str]
                     ) -> Tuple[str, Tensor, Optional[Tensor]]:
        """The checks of every call: ``(reduction, label, weight)`` after
        the reduction, logits-width, label and weight checks."""
        reduction = self.resolve_reduction(reduction_override)
        width = self.check_width(cls_score)
        num = cls_score.size(0)
        return (reduction, self.check_labels(label, num, width),
                self.check_weight(weight, num))

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """Checked, reduced loss; updates the statistics in training mode.

        Args:
            cls_score: ``[N, K]`` logits (``K`` see :meth:`valid_widths`).
            label: ``[N]`` integer labels in ``[0, C]``, ``C`` = background.
            weight: optional ``[N]`` label weights.
            avg_factor: normaliser for 'mean' (the bbox head passes the
                number of samples with a positive label weight).
            reduction_override: 'none' | 'mean' | 'sum'.

        Returns:
            The loss (``[N]`` per sample for reduction 'none').
        """
        reduction, label, weight = self.check_inputs(
            cls_score, label, weight, reduction_override)
        num = cls_score.size(0)
        stats = self.grad_stats is not None and self.training
        if num == 0:
            if stats:
                # keep the all-reduce in step with the other processes
                zeros = cls_score.new_zeros(self.num_classes,
                                            dtype=torch.float64)
                self.grad_stats.update(zeros, zeros)
            return self.zero_loss(cls_score, reduction)
        logits = upcast(cls_score)
        per_sample = self.loss_per_sample(logits, label)
        loss = self.loss_weight * weighted_reduce(per_sample, weight,
                                                  reduction, avg_factor)
        if stats:
            scale = self.loss_weight * reduction_scale(
                reduction, avg_factor, num)
            with torch.no_grad():
                pos, neg = self.statistics_step(logits.detach(), label,
                                                weight, scale)
            self.grad_stats.update(pos, neg)
        return loss
