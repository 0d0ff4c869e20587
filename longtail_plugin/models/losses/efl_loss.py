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

When the buffered sums are flushed (in this order of authority):

1. :class:`~longtail_plugin.engine.hooks.EFLStatsFlushHook` (``custom_hooks``
   in the configs) flushes every EFL/EQFL loss of the model in
   ``after_train_iter`` - exactly at the end of each iteration, before the
   checkpoint hook saves. This is the authoritative mechanism.
2. Fallback without the hook: at the first call of a *new* iteration
   (detected through MMEngine's message hub ``'iter'`` info, which the
   runner sets before each iteration), pending sums of the previous
   iteration are flushed before the new factors are computed.
3. Explicitly: :meth:`flush_statistics` (unit tests, custom loops).

Only calls in training mode (``module.training``) whose logits take part in
autograd (grad mode on and ``pred.requires_grad``) contribute.

Implementation. The dense ``N x C`` part is computed by a custom
``torch.autograd.Function`` that walks the logits in row chunks: the
forward pass produces the loss and the per-class gradient sums without
materialising any ``N x C`` intermediate, and the backward pass recomputes
the gradient from the saved inputs (logits, labels, weights). Every entry is
first treated as a negative; the at most one positive entry per anchor is
then handled exactly on the gathered ``(anchor, label)`` pairs.
"""
import contextlib
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS
from ...utils.grad_stats import GradientStatistics

__all__ = [
    'EqualizedFocalLoss', 'EqualizedQualityFocalLoss',
    'equalized_focal_loss', 'equalized_quality_focal_loss',
    'EqualizedLossStatsMixin', 'efl_focusing_factors'
]

_LOG2E = 1.4426950408889634
# elements per chunk of the dense pass: small enough that the temporaries of
# one chunk stay in the CPU's cache (and below ATen's parallel grain size, so
# each op runs without thread synchronisation); on GPUs chunks are large.
_CPU_CHUNK_ELEMS = 1 << 15
_GPU_CHUNK_ELEMS = 1 << 24


def _compute_dtype(t: Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _no_autocast(device: torch.device):
    """Context in which autocast is off for ``device``."""
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except Exception:  # pragma: no cover - device without autocast support
        return contextlib.nullcontext()


def _current_iter() -> Optional[int]:
    """MMEngine's current training iteration (set by the runner's
    ``RuntimeInfoHook`` before each iteration), or ``None``."""
    try:
        from mmengine.logging import MessageHub
        it = MessageHub.get_current_instance().get_info('iter')
    except Exception:  # pragma: no cover
        return None
    return None if it is None else int(it)


def _default_chunk_elems(t: Tensor) -> int:
    return _CPU_CHUNK_ELEMS if t.device.type == 'cpu' else _GPU_CHUNK_ELEMS


def efl_focusing_factors(ratio: Tensor, gamma_b: float,
                         scale_factor: float) -> Tuple[Tensor, Tensor]:
    """``(gamma_j, gamma_j / gamma_b)`` from the gradient ratio ``g_j``
    (float64; the loss casts them to its compute dtype)."""
    g = ratio.detach().double().clamp(0.0, 1.0)
    gamma = gamma_b + scale_factor * (1.0 - g)
    return gamma, gamma / gamma_b


# ---------------------------------------------------------------------------
# element-wise kernels
# ---------------------------------------------------------------------------
def _softplus(x: Tensor) -> Tensor:
    """``log(1 + exp(x))``; the linear branch starts where ``exp(-x)`` is
    below the dtype's resolution."""
    return F.softplus(x, threshold=20.0 if x.dtype != torch.float64 else 40.0)


def _neg_terms(x: Tensor,
               gamma: Tensor,
               want_loss: bool,
               want_grad: bool,
               gamma_log2e: Optional[Tensor] = None
               ) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """Focal terms of a negative entry (target 0) with logit ``x``.

    With ``p = sigmoid(x)`` and ``sp = softplus(x) = -log(1 - p)``:

    * ``h = p^gamma * sp``  (the loss without constant factors),
    * ``g = p^gamma * (p + gamma (1 - p) sp) = dh/dx >= 0``.

    A positive entry (target 1) with logit ``z`` is the negative entry with
    ``x = -z`` (and ``d/dz = -d/dx``). ``gamma`` broadcasts against ``x``;
    ``gamma_log2e`` is ``gamma * log2(e)`` when precomputed. One softplus,
    one sigmoid and one ``exp2`` per element, about ten passes over a
    chunk that stays in cache.
    """
    if gamma_log2e is None:
        gamma_log2e = gamma * _LOG2E
    sp = _softplus(x)  # -log(1 - p)
    a = torch.sub(x, sp)  # log p
    a.mul_(gamma_log2e).exp2_()  # p^gamma
    h = torch.mul(a, sp) if want_loss else None
    if not want_grad:
        return h, None
    p = torch.sigmoid(x)
    sp.mul_(gamma)
    g = torch.addcmul(p, sp, torch.rsub(p, 1.0))  # p + gamma sp (1 - p)
    g.mul_(a)
    return h, g


def _pos_focal(z: Tensor, gamma: Tensor) -> Tuple[Tensor, Tensor]:
    """Target-1 focal terms: ``(-(1-p)^gamma log p, d/dz of it)``."""
    h, g = _neg_terms(-z, gamma, True, True)
    return h, g.neg_()


def _pos_quality(z: Tensor, t: Tensor, gamma: Tensor) -> Tuple[Tensor, Tensor]:
    """Quality focal terms of a positive entry with quality target ``t``:
    ``(|t - p|^gamma BCE(z, t), d/dz of it)``; ``gamma >= 1`` assumed."""
    p = torch.sigmoid(z)
    bce = _softplus(z) - t * z
    d = p - t
    ad = d.abs()
    loss = bce * ad.pow(gamma)
    grad = torch.sign(d) * ad.pow(gamma - 1) * (
        ad * ad + gamma * bce * p * (1 - p))
    return loss, grad


# ---------------------------------------------------------------------------
# the fused autograd function
# ---------------------------------------------------------------------------
def _positives(labels: Tensor, num_classes: int) -> Tuple[Tensor, Tensor]:
    valid = (labels >= 0) & (labels < num_classes)
    rows = valid.nonzero(as_tuple=True)[0]
    return rows, labels[rows].long()


def _chunks(n: int, c: int, pos_rows: Tensor,
            chunk_elems: int) -> List[Tuple[int, int, int, int]]:
    """``(r0, r1, lo, hi)``: rows ``[r0, r1)`` hold positives
    ``pos_rows[lo:hi]``."""
    step = max(1, int(chunk_elems) // max(c, 1))
    starts = list(range(0, n, step))
    if not starts:
        return []
    if pos_rows.numel():
        edges = torch.tensor(starts[1:] + [n], device=pos_rows.device)
        his = torch.searchsorted(pos_rows, edges).tolist()
    else:
        his = [0] * len(starts)
    out, lo = [], 0
    for r0, hi in zip(starts, his):
        out.append((r0, min(r0 + step, n), lo, hi))
        lo = hi
    return out


def _col_sum(t: Tensor, w: Optional[Tensor], out: Tensor) -> Tensor:
    """``out_j = sum_i w_i t_ij`` (``w`` is ``None``, ``[n]`` or ``[n, C]``;
    ``t`` may be overwritten)."""
    if w is None:
        return torch.sum(t, 0, out=out)
    if w.dim() == 1:
        return torch.mv(t.t(), w, out=out)
    return torch.sum(t.mul_(w), 0, out=out)


class _EqualizedFocalFunction(torch.autograd.Function):
    """Loss and per-class gradient sums of EFL / EQFL in one pass.

    Inputs: ``pred [N, C]`` (any float dtype), ``labels [N]`` (background =
    anything outside ``[0, C)``), ``score [N]`` (EQFL quality target) or
    ``None`` (EFL), ``weight`` ``None`` / ``[N]`` / ``[N, C]``, ``gamma`` and
    ``factor`` ``[C]``, scalar coefficients of negative / positive entries,
    the reduction ``scale``, ``mode`` ('sum' -> scalar, 'elem' -> ``[N, C]``,
    'row' -> ``[N]``), whether to collect statistics, the chunk size.

    Outputs: ``(loss, pos [C], neg [C])``; the statistics are the sums of
    ``|dL/dz|`` of ``loss`` ('sum') or of ``loss.sum()`` (other modes).
    """

    @staticmethod
    def forward(ctx, pred, labels, score, weight, gamma, factor, neg_coef,
                pos_coef, scale, mode, collect, chunk_elems):
        n, c = pred.shape
        cdt = _compute_dtype(pred)
        dev = pred.device
        with _no_autocast(dev):
            gamma = gamma.to(device=dev, dtype=cdt)
            factor = factor.to(device=dev, dtype=cdt)
            gamma_l2 = gamma * _LOG2E
            w = None if weight is None else weight.to(cdt)
            colc = factor * (neg_coef * scale)
            pos_rows, pos_cols = _positives(labels, c)
            pos_flat = pos_rows * c + pos_cols
            chunks = _chunks(n, c, pos_rows, chunk_elems)
            # per-chunk column sums (float32 over a few rows each), summed
            # over chunks in float64 at the end
            nk = len(chunks)
            hbuf = pred.new_empty((nk, c), dtype=cdt) if mode == 'sum' \
                else None
            gbuf = pred.new_empty((nk, c), dtype=cdt) if collect else None
            if mode == 'elem':
                out = pred.new_empty((n, c), dtype=cdt)
            elif mode == 'row':
                out = pred.new_empty((n, ), dtype=cdt)

            for k, (r0, r1, lo, hi) in enumerate(chunks):
                z = pred[r0:r1]
                if z.dtype != cdt:
                    z = z.to(cdt)
                z = z.contiguous()
                wc = None if w is None else w[r0:r1]
                h, g = _neg_terms(z, gamma, True, collect, gamma_l2)
                local = pos_flat[lo:hi] - r0 * c if hi > lo else None
                if mode == 'elem':
                    # positive entries are overwritten below
                    if wc is None:
                        torch.mul(h, colc, out=out[r0:r1])
                    else:
                        h.mul_(colc)
                        torch.mul(h, wc.unsqueeze(1) if wc.dim() == 1 else wc,
                                  out=out[r0:r1])
                else:
                    if local is not None:
                        h.view(-1).index_fill_(0, local, 0)
                    if mode == 'sum':
                        _col_sum(h, wc, out=hbuf[k])
                    else:
                        if wc is not None and wc.dim() == 2:
                            h.mul_(wc)
                        torch.mv(h, colc, out=out[r0:r1])
                        if wc is not None and wc.dim() == 1:
                            out[r0:r1].mul_(wc)
                if collect:
                    if local is not None:
                        g.view(-1).index_fill_(0, local, 0)
                    _col_sum(g, wc, out=gbuf[k])

            # positive entries, exactly, on the gathered (anchor, label) pairs
            zp = pred[pos_rows, pos_cols].to(cdt)
            gp = gamma[pos_cols]
            if score is None:
                lp, dp = _pos_focal(zp, gp)
            else:
                lp, dp = _pos_quality(zp, score[pos_rows].to(cdt), gp)
            cp = factor[pos_cols] * (pos_coef * scale)
            if w is not None:
                cp = cp * (w[pos_rows] if w.dim() == 1 else
                           w[pos_rows, pos_cols])
            lp = lp * cp
            if mode == 'sum':
                hsum = hbuf.double().sum(0)
                loss = (hsum * colc.double()).sum() + lp.double().sum()
                loss = loss.to(cdt)
            elif mode == 'elem':
                out[pos_rows, pos_cols] = lp
                loss = out
            else:
                out.index_add_(0, pos_rows, lp)
                loss = out

            if collect:
                neg = gbuf.double().sum(0) * colc.double()
                pos = torch.zeros(c, dtype=torch.float64, device=dev)
                pos.index_add_(0, pos_cols, (dp * cp).abs().double())
            else:
                pos = neg = torch.zeros(0, dtype=torch.float64, device=dev)

        ctx.save_for_backward(pred, labels, score, weight, gamma, factor)
        ctx.neg_coef, ctx.pos_coef, ctx.scale = neg_coef, pos_coef, scale
        ctx.mode, ctx.chunk_elems = mode, chunk_elems
        ctx.mark_non_differentiable(pos, neg)
        return loss, pos, neg

    @staticmethod
    def backward(ctx, grad_out, _gpos, _gneg):
        pred, labels, score, weight, gamma, factor = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return (None, ) * 12
        n, c = pred.shape
        cdt = _compute_dtype(pred)
        dev = pred.device
        mode = ctx.mode
        with _no_autocast(dev):
            go = grad_out.to(cdt)
            gamma_l2 = gamma * _LOG2E
            w = None if weight is None else weight.to(cdt)
            colc = factor * (ctx.neg_coef * ctx.scale)
            if mode == 'sum':
                colc = colc * go
            pos_rows, pos_cols = _positives(labels, c)
            grad = torch.empty((n, c), dtype=pred.dtype, device=dev)
            for r0, r1, _, _ in _chunks(n, c, pos_rows[:0], ctx.chunk_elems):
                z = pred[r0:r1]
                if z.dtype != cdt:
                    z = z.to(cdt)
                z = z.contiguous()
                _, g = _neg_terms(z, gamma, False, True, gamma_l2)
                # row factor: label weight (and grad_output per row/element)
                if mode == 'elem':
                    g.mul_(go[r0:r1])
                    rowc = w
                elif mode == 'row':
                    rowc = go if w is None else (
                        w * go.unsqueeze(1) if w.dim() == 2 else w * go)
                else:
                    rowc = w
                if rowc is None:
                    torch.mul(g, colc, out=grad[r0:r1])
                else:
                    g.mul_(colc)
                    rc = rowc[r0:r1]
                    torch.mul(g, rc.unsqueeze(1) if rc.dim() == 1 else rc,
                              out=grad[r0:r1])

            zp = pred[pos_rows, pos_cols].to(cdt)
            gp = gamma[pos_cols]
            if score is None:
                _, dp = _pos_focal(zp, gp)
            else:
                _, dp = _pos_quality(zp, score[pos_rows].to(cdt), gp)
            cp = factor[pos_cols] * (ctx.pos_coef * ctx.scale)
            if w is not None:
                cp = cp * (w[pos_rows] if w.dim() == 1 else
                           w[pos_rows, pos_cols])
            if mode == 'sum':
                cp = cp * go
            elif mode == 'elem':
                cp = cp * go[pos_rows, pos_cols]
            else:
                cp = cp * go[pos_rows]
            grad[pos_rows, pos_cols] = (dp * cp).to(grad.dtype)
        return (grad, ) + (None, ) * 11


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


def _reduction_scale(reduction: str, avg_factor: Optional[float],
                     loss_weight: float, mean_count: int) -> float:
    if reduction not in ('none', 'mean', 'sum'):
        raise ValueError(f'unknown reduction {reduction!r}')
    if avg_factor is None:
        if reduction == 'mean':
            return loss_weight / max(mean_count, 1)
        return loss_weight
    if reduction == 'mean':
        # as mmdet.models.losses.utils.weight_reduce_loss
        eps = torch.finfo(torch.float32).eps
        return loss_weight / (float(avg_factor) + eps)
    if reduction == 'sum':
        raise ValueError('avg_factor can not be used with reduction="sum"')
    return loss_weight


def _as_vector(value: Union[float, Tensor], c: int,
               like: Tensor) -> Tensor:
    if torch.is_tensor(value):
        return value.detach().to(like.device).expand(c)
    return torch.full((c, ), float(value), device=like.device)


def _run(pred, labels, score, weight, gamma, factor, neg_coef, pos_coef,
         reduction, avg_factor, loss_weight, row_mode, collect, chunk_elems):
    if pred.dim() != 2:
        raise ValueError(f'pred must be [N, C], got {tuple(pred.shape)}')
    n, c = pred.shape
    weight = _normalise_weight(weight, n, c)
    mean_count = n if row_mode else n * c
    scale = _reduction_scale(reduction, avg_factor, loss_weight, mean_count)
    mode = 'sum' if reduction != 'none' else ('row' if row_mode else 'elem')
    gamma = _as_vector(gamma, c, pred)
    factor = _as_vector(factor, c, pred)
    labels = labels.detach().reshape(n).long()
    if score is not None:
        score = score.detach().reshape(n)
    chunk = chunk_elems or _default_chunk_elems(pred)
    return _EqualizedFocalFunction.apply(pred, labels, score, weight, gamma,
                                         factor, float(neg_coef),
                                         float(pos_coef), float(scale), mode,
                                         bool(collect), int(chunk))


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
                         chunk_elems: Optional[int] = None):
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

    Returns:
        The loss, or ``(loss, pos, neg)``.
    """
    loss, pos, neg = _run(pred, labels, None, weight, gamma, factor,
                          1.0 - alpha, alpha, reduction, avg_factor,
                          loss_weight, False, return_stats, chunk_elems)
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
                                 chunk_elems: Optional[int] = None):
    """Functional EQFL; ``target = (labels [N], scores [N])`` as in
    ``mmdet.models.losses.QualityFocalLoss``. With ``reduction='none'`` the
    per-anchor loss ``[N]`` (summed over classes) is returned, as QFL does.
    """
    labels, score = target
    loss, pos, neg = _run(pred, labels, score, weight, gamma, factor, 1.0,
                          1.0, reduction, avg_factor, loss_weight, True,
                          return_stats, chunk_elems)
    return (loss, pos, neg) if return_stats else loss


# ---------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------
class EqualizedLossStatsMixin:
    """Per-iteration buffering of gradient statistics (see module doc).

    The owner provides ``self.grad_stats`` (:class:`GradientStatistics`).
    """

    def _init_pending(self) -> None:
        self._pending: Optional[List[Tensor]] = None
        self._pending_iter: Optional[int] = None

    @property
    def has_pending_statistics(self) -> bool:
        return self._pending is not None

    def pending_statistics(self) -> Optional[Tuple[Tensor, Tensor]]:
        """Buffered ``(pos, neg)`` of the current iteration, or ``None``."""
        return None if self._pending is None else tuple(self._pending)

    def flush_statistics(self) -> bool:
        """Hand the buffered sums of the finished iteration to the
        statistics (one ``GradientStatistics.update``, all-reduced).

        Returns:
            True when something was added; False when nothing was pending or
            the step was skipped as non-finite.
        """
        if self._pending is None:
            return False
        pos, neg = self._pending
        self._pending = None
        self._pending_iter = None
        return bool(self.grad_stats.update(pos, neg))

    def discard_pending_statistics(self) -> None:
        self._pending = None
        self._pending_iter = None

    def _begin_call(self) -> None:
        """Fallback flush at the first call of a new iteration."""
        if self._pending is None:
            return
        it = _current_iter()
        if it is not None and it != self._pending_iter:
            self.flush_statistics()

    def _should_collect(self, pred: Tensor) -> bool:
        return bool(self.training and torch.is_grad_enabled()
                    and pred.requires_grad)

    def _record(self, pos: Tensor, neg: Tensor) -> None:
        if self._pending is None:
            self._pending = [pos.detach().double(), neg.detach().double()]
            self._pending_iter = _current_iter()
        else:
            self._pending[0] += pos.detach().double()
            self._pending[1] += neg.detach().double()


class _EqualizedLossBase(EqualizedLossStatsMixin, nn.Module):

    def __init__(self, num_classes: int, gamma: float, scale_factor: float,
                 reduction: str, loss_weight: float, init_ratio: float,
                 eps: float, use_sigmoid: bool, activated: bool,
                 chunk_elems: Optional[int], name: str) -> None:
        super().__init__()
        if not use_sigmoid:
            raise ValueError(f'{name} is a sigmoid loss: use_sigmoid=True')
        if activated:
            raise ValueError(f'{name} takes logits: activated=False')
        if gamma < 1:
            # EQFL's positive gradient has |p - t|^(gamma - 1)
            raise ValueError(f'{name}: the base focusing factor must be >= 1')
        self.num_classes = int(num_classes)
        self.use_sigmoid = True
        self.activated = False
        self.gamma = float(gamma)
        self.scale_factor = float(scale_factor)
        self.reduction = reduction
        self.loss_weight = float(loss_weight)
        self.chunk_elems = chunk_elems
        self.grad_stats = GradientStatistics(
            self.num_classes, init_ratio=init_ratio, eps=eps, name=name)
        self._init_pending()

    def focusing_factors(self) -> Tuple[Tensor, Tensor]:
        """``(gamma_j, gamma_j / gamma_b)`` of the current statistics."""
        return efl_focusing_factors(self.grad_stats.ratio(), self.gamma,
                                    self.scale_factor)

    def per_class_scalars(self) -> Dict[str, Tensor]:
        """Per-class values for ``GradRatioLoggerHook``."""
        gamma, factor = self.focusing_factors()
        return dict(focal_gamma=gamma, weight_factor=factor)

    def _check(self, pred: Tensor, reduction_override: Optional[str]) -> str:
        assert reduction_override in (None, 'none', 'mean', 'sum')
        if pred.dim() != 2 or pred.size(1) != self.num_classes:
            raise ValueError(
                f'{type(self).__name__} was built for num_classes='
                f'{self.num_classes}, got predictions of shape '
                f'{tuple(pred.shape)}')
        return reduction_override if reduction_override else self.reduction


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
        chunk_elems: elements per chunk of the dense pass (``None``: a
            device-dependent default).
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
                 chunk_elems: Optional[int] = None) -> None:
        super().__init__(num_classes, gamma, scale_factor, reduction,
                         loss_weight, init_ratio, eps, use_sigmoid,
                         activated, chunk_elems, 'EqualizedFocalLoss')
        self.alpha = float(alpha)

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Loss of ``pred [N, C]`` against class indices ``target [N]``
        (background ``= C``) or one-hot ``target [N, C]``."""
        reduction = self._check(pred, reduction_override)
        if target.dim() == pred.dim():  # one-hot -> indices
            t = target.detach()
            target = torch.where(t.any(1), t.argmax(1),
                                 torch.full_like(t[:, 0], pred.size(1),
                                                 dtype=torch.long)).long()
        self._begin_call()
        collect = self._should_collect(pred)
        gamma, factor = self.focusing_factors()
        out = equalized_focal_loss(
            pred, target, gamma, factor, alpha=self.alpha, weight=weight,
            reduction=reduction, avg_factor=avg_factor,
            loss_weight=self.loss_weight, return_stats=collect,
            chunk_elems=self.chunk_elems)
        if collect:
            loss, pos, neg = out
            self._record(pos, neg)
            return loss
        return out


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
        reduction, loss_weight, init_ratio, eps, activated, chunk_elems:
            as in :class:`EqualizedFocalLoss`.
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
                 chunk_elems: Optional[int] = None) -> None:
        super().__init__(num_classes, beta, scale_factor, reduction,
                         loss_weight, init_ratio, eps, use_sigmoid,
                         activated, chunk_elems, 'EqualizedQualityFocalLoss')

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
        reduction = self._check(pred, reduction_override)
        if torch.is_tensor(target) or len(target) != 2:
            raise NotImplementedError(
                'EqualizedQualityFocalLoss takes target=(labels, scores); '
                'dense soft targets [N, C] are not supported')
        self._begin_call()
        collect = self._should_collect(pred)
        gamma, factor = self.focusing_factors()
        out = equalized_quality_focal_loss(
            pred, tuple(target), gamma, factor, weight=weight,
            reduction=reduction, avg_factor=avg_factor,
            loss_weight=self.loss_weight, return_stats=collect,
            chunk_elems=self.chunk_elems)
        if collect:
            loss, pos, neg = out
            self._record(pos, neg)
            return loss
        return out
