r"""Equalized Focal Loss (EFL) and Equalized Quality Focal Loss (EQFL).

Li, Bo; Yao, Yongqiang; Tan, Jingru; Zhang, Gang; Yu, Fengwei; Lu, Jianwei;
Luo, Ye: "Equalized Focal Loss for Dense Long-Tailed Object Detection",
CVPR 2022 (arXiv:2201.02593).

Notation: ``z_ij`` the logit of anchor ``i`` for foreground class ``j``,
``p = sigmoid(z)``, ``y_ij = 1`` when anchor ``i`` is assigned to class ``j``
(background anchors have ``y_i = 0`` everywhere), ``p_t = p`` if ``y = 1``
else ``1 - p``, ``alpha_t = alpha`` if ``y = 1`` else ``1 - alpha``.

Each class has its own focusing factor, driven by the accumulated gradient
ratio ``g_j`` of :class:`~longtail_plugin.utils.grad_stats.GradientStatistics`:

.. math::

    g_j = \mathrm{clamp}\Big(\frac{\sum_t P_j^t}{\sum_t N_j^t + \epsilon},
                             0, 1\Big), \qquad
    \gamma_j = \gamma_b + s\,(1 - g_j),

.. math::

    \mathrm{EFL}(z_{ij}) = -\,\alpha_t\,\frac{\gamma_j}{\gamma_b}\,
        (1 - p_t)^{\gamma_j}\,\log(p_t),

reduced like MMDetection's ``FocalLoss`` (label weights, ``avg_factor``,
``loss_weight``). ``gamma_j`` and the weighting factor ``gamma_j/gamma_b`` are
constants of the step (no gradient flows through them). Defaults follow the
paper: ``gamma_b = 2``, ``alpha = 0.25``, ``s = 8``, initial ``g_j = 1`` (so
EFL starts as the focal loss).

EQFL puts the same per-class focusing and weighting factors on the quality
focal loss of GFL (Li et al., NeurIPS 2020), with quality target ``t`` on the
positive column:

.. math::

    \mathrm{EQFL}(z_{ij}) = \frac{\gamma_j}{\gamma_b}\,
        |t_{ij} - p_{ij}|^{\gamma_j}\,\mathrm{BCE}(z_{ij}, t_{ij}).

Statistics. ``P_j^t`` / ``N_j^t`` are the sums, over every anchor that takes
part in the step's loss, of ``|dL/dz_ij|`` of the *final* loss (after the
label weights, ``avg_factor`` and ``loss_weight``) split by the target:
positives of class ``j`` vs all other anchors. They are computed
analytically inside the loss (no backward hook), in float32 or better
whatever the autocast dtype of the logits. MMDetection's dense heads call
the classification loss once per FPN level; the contributions of all levels
are buffered in the loss and handed to ``GradientStatistics.update``
(all-reduced across processes, non-finite steps skipped) once per training
iteration, so every level of an iteration uses the same ``gamma_j``.

When the buffered sums are flushed (see
:class:`~longtail_plugin.utils.grad_stats_buffer.BufferedGradientStatistics`):
by :class:`~longtail_plugin.engine.hooks.EFLStatsFlushHook` at the end of
each iteration (the configs), else at the first call of the next iteration
(a new message-hub ``'iter'`` under a runner; in a plain PyTorch loop, the
first call after a backward pass through the pending losses), or explicitly
through :meth:`flush_statistics`.

Only calls in training mode (``module.training``) whose logits take part in
autograd (grad mode on and ``pred.requires_grad``) contribute.

Implementation (``impl``): the dense ``N x C`` part runs in
:mod:`.efl_kernel` (row chunks, no ``N x C`` intermediate, CPU threads) or,
for CUDA logits with Triton installed, in the fused kernel of
:mod:`.efl_triton` (one read of the logits, one write of the gradient).
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from mmdet.registry import MODELS
from ...utils.grad_stats_buffer import BufferedGradientStatistics
from .base_cls_loss import BaseClassificationLoss
from .efl_kernel import apply_chunked
from .utils import reduction_scale

__all__ = [
    'EqualizedFocalLoss', 'EqualizedQualityFocalLoss',
    'equalized_focal_loss', 'equalized_quality_focal_loss',
    'efl_focusing_factors', 'IMPLS'
]

#: implementations of the dense pass (see the module doc)
IMPLS = ('auto', 'chunked', 'triton')


def efl_focusing_factors(ratio: Tensor, gamma_b: float,
                         scale_factor: float) -> Tuple[Tensor, Tensor]:
    """``(gamma_j, gamma_j / gamma_b)`` from the gradient ratio ``g_j``
    (float64; the loss casts them to its compute dtype)."""
    g = ratio.detach().double().clamp(0.0, 1.0)
    gamma = gamma_b + scale_factor * (1.0 - g)
    return gamma, gamma / gamma_b


# ---------------------------------------------------------------------------
# functional interface
# ---------------------------------------------------------------------------
def _normalise_weight(weight: Optional[Tensor], n: int,
                      c: int) -> Optional[Tensor]:
    if weight is None:
        return None
    weight = weight.detach()
    if weight.dim() == 2 and weight.shape == (n, c):
        return weight
    if weight.numel() == n:
        return weight.reshape(n)
    if weight.numel() == n * c:
        return weight.reshape(n, c)
    raise ValueError(f'weight of shape {tuple(weight.shape)} does not fit '
                     f'predictions of shape {(n, c)}')


def _as_vector(value: Union[float, Tensor], c: int,
               like: Tensor) -> Tensor:
    if torch.is_tensor(value):
        return value.detach().to(like.device).expand(c)
    return torch.full((c, ), float(value), device=like.device)


def _use_fused(pred: Tensor, mode: str, impl: str) -> bool:
    """Whether this call runs in the fused Triton kernel (module doc)."""
    if impl not in IMPLS:
        raise ValueError(f'impl must be one of {IMPLS}, got {impl!r}')
    if impl == 'chunked' or mode != 'sum':
        return False
    on_cuda = pred.device.type == 'cuda'
    if impl == 'auto' and not on_cuda:
        return False
    try:
        from . import efl_triton  # noqa: F401  (imports triton)
    except ImportError as e:
        if impl == 'auto':
            return False
        raise RuntimeError(f"impl='triton' needs the triton package: "
                           f'{e}') from e
    if not on_cuda and not efl_triton.interpret_mode():
        raise RuntimeError(
            f"impl='triton' runs on CUDA logits (or on the CPU in Triton's "
            f'interpreter, TRITON_INTERPRET=1); got {pred.device.type} '
            f'logits')
    return True


def _run(pred, labels, score, weight, gamma, factor, neg_coef, pos_coef,
         reduction, avg_factor, loss_weight, row_mode, collect, chunk_elems,
         impl, threads):
    if pred.dim() != 2:
        raise ValueError(f'pred must be [N, C], got {tuple(pred.shape)}')
    n, c = pred.shape
    weight = _normalise_weight(weight, n, c)
    scale = loss_weight * reduction_scale(reduction, avg_factor,
                                          n if row_mode else n * c)
    mode = 'sum' if reduction != 'none' else ('row' if row_mode else 'elem')
    gamma = _as_vector(gamma, c, pred)
    factor = _as_vector(factor, c, pred)
    labels = labels.detach().reshape(n).long()
    if score is not None:
        score = score.detach().reshape(n)
    if _use_fused(pred, mode, impl):
        from .efl_triton import FusedEqualizedFocalFunction
        return FusedEqualizedFocalFunction.apply(pred, labels, score, weight,
                                                 gamma, factor,
                                                 float(neg_coef),
                                                 float(pos_coef),
                                                 float(scale), bool(collect))
    return apply_chunked(pred, labels, score, weight, gamma, factor,
                         neg_coef, pos_coef, scale, mode, collect,
                         chunk_elems, threads)


def equalized_focal_loss(pred: Tensor,
                         labels: Tensor,
                         gamma: Union[float, Tensor],
                         factor: Union[float, Tensor] = 1.0,
                         alpha: float = 0.25,
                         weight: Optional[Tensor] = None,
                         reduction: str = 'mean',
                         avg_factor: Optional[float] = None,
                         loss_weight: float = 1.0,
                         return_stats: bool = False,
                         chunk_elems: Optional[int] = None,
                         impl: str = 'auto',
                         threads: Optional[int] = None):
    """Functional EFL with given per-class ``gamma`` and ``factor``.

    Args:
        pred: ``[N, C]`` logits.
        labels: ``[N]`` class indices; background is any value outside
            ``[0, C)`` (MMDetection uses ``C``).
        gamma: focusing factors ``gamma_j`` (scalar or ``[C]``).
        factor: weighting factors ``gamma_j / gamma_b`` (scalar or ``[C]``).
        alpha, weight, reduction, avg_factor, loss_weight: as in
            ``mmdet.models.losses.FocalLoss``.
        return_stats: also return ``(pos, neg)``, float64 ``[C]`` sums of
            ``|dL/dz|`` (of ``loss.sum()`` when ``reduction='none'``).
        chunk_elems: elements per chunk of the chunked pass (``None``: the
            device default of :mod:`.efl_kernel`).
        impl: 'auto' | 'chunked' | 'triton' (see the module doc).
        threads: CPU threads of the chunked pass (``None``:
            ``torch.get_num_threads()``).

    Returns:
        The loss, or ``(loss, pos, neg)``.
    """
    loss, pos, neg = _run(pred, labels, None, weight, gamma, factor,
                          1.0 - alpha, alpha, reduction, avg_factor,
                          loss_weight, False, return_stats, chunk_elems,
                          impl, threads)
    return (loss, pos, neg) if return_stats else loss


def equalized_quality_focal_loss(pred: Tensor,
                                 target: Tuple[Tensor, Tensor],
                                 gamma: Union[float, Tensor],
                                 factor: Union[float, Tensor] = 1.0,
                                 weight: Optional[Tensor] = None,
                                 reduction: str = 'mean',
                                 avg_factor: Optional[float] = None,
                                 loss_weight: float = 1.0,
                                 return_stats: bool = False,
                                 chunk_elems: Optional[int] = None,
                                 impl: str = 'auto',
                                 threads: Optional[int] = None):
    """Functional EQFL; ``target = (labels [N], scores [N])`` as in
    ``mmdet.models.losses.QualityFocalLoss``. With ``reduction='none'`` the
    per-anchor loss ``[N]`` (summed over classes) is returned, as QFL does.
    Other arguments as :func:`equalized_focal_loss`.
    """
    labels, score = target
    loss, pos, neg = _run(pred, labels, score, weight, gamma, factor, 1.0,
                          1.0, reduction, avg_factor, loss_weight, True,
                          return_stats, chunk_elems, impl, threads)
    return (loss, pos, neg) if return_stats else loss


# ---------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------
class _EqualizedLossBase(BaseClassificationLoss):
    """What EFL and EQFL share: the statistics (buffered per iteration),
    the focusing factors, the checks of the frame."""

    use_sigmoid = True
    # a dense head's classifier: C sigmoid outputs, no custom channels
    custom_cls_channels = False

    def __init__(self, num_classes: int, use_sigmoid: bool, gamma: float,
                 scale_factor: float, reduction: str, loss_weight: float,
                 init_ratio: float, eps: float, activated: bool,
                 chunk_elems: Optional[int], impl: str) -> None:
        super().__init__(num_classes, use_sigmoid, reduction, loss_weight)
        name = type(self).__name__
        if activated:
            raise ValueError(f'{name} takes logits: activated=False')
        if gamma < 1:
            # EQFL's positive gradient has |p - t|^(gamma - 1)
            raise ValueError(f'{name}: the base focusing factor must be '
                             f'>= 1, got {gamma}')
        if impl not in IMPLS:
            raise ValueError(f'{name}: impl must be one of {IMPLS}, got '
                             f'{impl!r}')
        self.activated = False
        self.gamma = float(gamma)
        self.scale_factor = float(scale_factor)
        self.chunk_elems = chunk_elems
        self.impl = impl
        self.grad_stats = BufferedGradientStatistics(
            self.num_classes, init_ratio=init_ratio, eps=eps, name=name)

    # --- statistics, public for hooks and custom loops --------------------
    @property
    def has_pending_statistics(self) -> bool:
        return self.grad_stats.has_pending

    def pending_statistics(self) -> Optional[Tuple[Tensor, Tensor]]:
        """Buffered ``(pos, neg)`` of the current iteration, or ``None``."""
        return self.grad_stats.pending()

    def flush_statistics(self) -> bool:
        """Add the buffered sums of the finished iteration to the statistics
        (one all-reduced ``GradientStatistics.update``); True when a step
        was added."""
        return self.grad_stats.flush()

    def discard_pending_statistics(self) -> None:
        self.grad_stats.discard_pending()

    def focusing_factors(self) -> Tuple[Tensor, Tensor]:
        """``(gamma_j, gamma_j / gamma_b)`` of the current statistics."""
        return efl_focusing_factors(self.grad_stats.ratio(), self.gamma,
                                    self.scale_factor)

    def per_class_scalars(self) -> Dict[str, Tensor]:
        """Per-class values for ``GradRatioLoggerHook``."""
        gamma, factor = self.focusing_factors()
        return dict(focal_gamma=gamma, weight_factor=factor)

    def _call(self, fn, pred: Tensor, target, **kwargs) -> Tensor:
        """Start-of-call flush, factors, the loss, the buffered sums."""
        self.grad_stats.begin_call()
        collect = bool(self.training and torch.is_grad_enabled()
                       and pred.requires_grad)
        gamma, factor = self.focusing_factors()
        out = fn(pred, target, gamma, factor, loss_weight=self.loss_weight,
                 return_stats=collect, chunk_elems=self.chunk_elems,
                 impl=self.impl, **kwargs)
        if not collect:
            return out
        loss, pos, neg = out
        self.grad_stats.record(pos, neg, output=loss)
        return loss


@MODELS.register_module()
class EqualizedFocalLoss(_EqualizedLossBase):
    """Equalized Focal Loss (Li et al., CVPR 2022); see the module doc.

    Drop-in replacement of ``FocalLoss`` for dense heads with a sigmoid
    classifier (RetinaHead, ATSSHead, FCOSHead, ...).

    Args:
        num_classes: number of foreground classes ``C``.
        use_sigmoid: must be True (read by the heads).
        gamma: base focusing factor ``gamma_b``.
        alpha: balance factor ``alpha``.
        scale_factor: ``s`` of ``gamma_j = gamma_b + s (1 - g_j)``.
        reduction: 'none' | 'mean' | 'sum'.
        loss_weight: weight of the loss.
        init_ratio: initial ``g_j``.
        eps: epsilon of the ratio.
        activated: must be False (logits in).
        chunk_elems: elements per chunk of the chunked pass (``None``: a
            device-dependent default).
        impl: 'auto' (the fused Triton kernel for CUDA logits when Triton
            is installed, else the chunked pass) | 'chunked' | 'triton'.
    """

    def __init__(self,
                 num_classes: int,
                 use_sigmoid: bool = True,
                 gamma: float = 2.0,
                 alpha: float = 0.25,
                 scale_factor: float = 8.0,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 init_ratio: float = 1.0,
                 eps: float = 1e-10,
                 activated: bool = False,
                 chunk_elems: Optional[int] = None,
                 impl: str = 'auto') -> None:
        super().__init__(num_classes, use_sigmoid, gamma, scale_factor,
                         reduction, loss_weight, init_ratio, eps, activated,
                         chunk_elems, impl)
        self.alpha = float(alpha)

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Loss of ``pred [N, C]`` against class indices ``target [N]``
        (background ``= C``) or one-hot ``target [N, C]``."""
        reduction = self.resolve_reduction(reduction_override)
        width = self.check_width(pred)
        if target.dim() == 2 and target.shape == pred.shape:
            t = target.detach()  # one-hot -> indices
            target = torch.where(t.any(1), t.argmax(1),
                                 torch.full_like(t[:, 0], width,
                                                 dtype=torch.long))
        target = self.check_labels(target, pred.size(0), width)
        return self._call(equalized_focal_loss, pred, target,
                          alpha=self.alpha, weight=weight,
                          reduction=reduction, avg_factor=avg_factor)


@MODELS.register_module()
class EqualizedQualityFocalLoss(_EqualizedLossBase):
    """Equalized Quality Focal Loss: the per-class focusing and weighting
    factors of EFL on GFL's quality focal loss (see the module doc).

    Drop-in replacement of ``QualityFocalLoss`` (GFLHead); the target is the
    ``(labels [N], scores [N])`` tuple.

    Args:
        num_classes: number of foreground classes ``C``.
        use_sigmoid: must be True.
        beta: base focusing factor ``gamma_b`` (``beta`` of QFL).
        scale_factor: ``s``.
        reduction, loss_weight, init_ratio, eps, activated, chunk_elems,
            impl: as in :class:`EqualizedFocalLoss`.
    """

    def __init__(self,
                 num_classes: int,
                 use_sigmoid: bool = True,
                 beta: float = 2.0,
                 scale_factor: float = 8.0,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 init_ratio: float = 1.0,
                 eps: float = 1e-10,
                 activated: bool = False,
                 chunk_elems: Optional[int] = None,
                 impl: str = 'auto') -> None:
        super().__init__(num_classes, use_sigmoid, beta, scale_factor,
                         reduction, loss_weight, init_ratio, eps, activated,
                         chunk_elems, impl)

    @property
    def beta(self) -> float:
        return self.gamma

    def forward(self,
                pred: Tensor,
                target: Sequence[Tensor],
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Loss of ``pred [N, C]`` against ``(labels [N], scores [N])``."""
        reduction = self.resolve_reduction(reduction_override)
        width = self.check_width(pred)
        if torch.is_tensor(target) or len(target) != 2:
            raise NotImplementedError(
                'EqualizedQualityFocalLoss takes target=(labels, scores); '
                'dense soft targets [N, C] are not supported')
        labels = self.check_labels(target[0], pred.size(0), width)
        return self._call(equalized_quality_focal_loss, pred,
                          (labels, target[1]), weight=weight,
                          reduction=reduction, avg_factor=avg_factor)
