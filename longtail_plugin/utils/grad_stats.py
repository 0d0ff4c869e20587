"""Accumulated positive/negative gradient statistics of a classifier.

Shared by every gradient-guided loss of the equalization family (EQL v2,
Equalized Focal Loss, Softmax-EQL) and read by the gradient-ratio logging
hook and plot tool. One class, so that the buffers, the cross-process
all-reduce, the non-finite guard and the checkpoint handling exist once.

For class ``j`` and every step ``t`` a loss reports

.. math::

    P_j^t = \\sum_i |\\partial L / \\partial z_{ij}| \\, y_{ij}, \\qquad
    N_j^t = \\sum_i |\\partial L / \\partial z_{ij}| \\, (1 - y_{ij})

(possibly weighted, see each loss), and this module keeps

.. math::

    pos_j = \\sum_t P_j^t, \\quad neg_j = \\sum_t N_j^t, \\quad
    g_j = pos_j / (neg_j + \\epsilon)

(a class that has received no gradient yet keeps the initial ratio).

``g_j`` is the "gradient ratio" of Tan et al., "Equalization Loss v2: A New
Gradient Balance Approach for Long-tailed Object Detection" (CVPR 2021):
1 means balanced training of class ``j``, near 0 means it is suppressed.

Design:

* Statistics are float64 buffers (persistent: saved in checkpoints and
  restored on ``--resume``), accumulated in float64 whatever the training
  precision, so autocast/fp16 cannot round small per-step sums away.
* Under ``torch.distributed`` the per-step sums are all-reduced (summed)
  *before* the finiteness check, so every replica takes the same decision
  and all replicas hold bit-identical statistics. Every rank must therefore
  call :meth:`GradientStatistics.update` the same number of times (the
  losses call it even for an empty batch).
* A step whose sums are not finite is skipped entirely (nothing is added),
  counted in ``num_skipped`` and reported through MMEngine's logger. A
  negative sum is a caller's bug and raises.
* Checkpoints: statistics of another class count start afresh with a
  warning under non-strict loading (``load_from``: fine-tuning onto another
  vocabulary) and fail strict loading (their keys are reported as
  unexpected); non-finite or negative statistics in a checkpoint are an
  error at load naming the key, before anything is copied.
"""
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

__all__ = [
    'GradientStatistics', 'split_pos_neg', 'find_gradient_statistics',
    'current_iter'
]


def current_iter() -> Optional[int]:
    """MMEngine's current training iteration (the message hub's ``'iter'``
    info, set by the runner's ``RuntimeInfoHook`` before each iteration),
    or ``None`` outside a runner."""
    try:
        from mmengine.logging import MessageHub
        it = MessageHub.get_current_instance().get_info('iter')
        return None if it is None else int(it)
    except Exception:  # pragma: no cover - logging must never break a step
        return None


def _warn(msg: str) -> None:
    try:
        from mmengine.logging import MMLogger
        MMLogger.get_current_instance().warning(msg)
    except Exception:  # pragma: no cover
        import warnings
        warnings.warn(msg)


def _all_reduce_sum(data: Tensor) -> None:
    """In-place sum over processes; a no-op without torch.distributed."""
    import torch.distributed as torch_dist
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    if torch_dist.get_world_size() < 2:
        return
    from mmengine.dist import all_reduce
    all_reduce(data, op='sum')


class GradientStatistics(nn.Module):
    """Per-class accumulated positive / negative gradient magnitudes.

    Args:
        num_classes: number of classes ``C`` whose statistics are kept
            (foreground classes only for detection losses).
        init_ratio: initial value of the ratio ``g_j`` before any update
            (100 in EQL v2 so that its weights start at ~1; 1 in EFL).
        eps: the ``epsilon`` of ``g_j = pos_j / (neg_j + eps)``.
        name: name used in log messages (e.g. the owning loss).

    Buffers (all persistent):
        ``pos_grad``, ``neg_grad``, ``pos_neg``: float64 ``[C]``;
        ``num_updates``, ``num_skipped``: int64 scalars.
    """

    _FLOAT_BUFFERS = ('pos_grad', 'neg_grad', 'pos_neg')
    _COUNT_BUFFERS = ('num_updates', 'num_skipped')

    def __init__(self,
                 num_classes: int,
                 init_ratio: float = 1.0,
                 eps: float = 1e-10,
                 name: str = 'grad_stats') -> None:
        super().__init__()
        if int(num_classes) <= 0:
            raise ValueError(
                f'GradientStatistics: num_classes must be positive, got '
                f'{num_classes}')
        self.num_classes = int(num_classes)
        self.init_ratio = float(init_ratio)
        self.eps = float(eps)
        self.name = name
        c = self.num_classes
        self.register_buffer('pos_grad', torch.zeros(c, dtype=torch.float64))
        self.register_buffer('neg_grad', torch.zeros(c, dtype=torch.float64))
        self.register_buffer(
            'pos_neg', torch.full((c, ), self.init_ratio,
                                  dtype=torch.float64))
        self.register_buffer('num_updates',
                             torch.zeros((), dtype=torch.int64))
        self.register_buffer('num_skipped',
                             torch.zeros((), dtype=torch.int64))

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, '
                f'init_ratio={self.init_ratio}, eps={self.eps}, '
                f'name={self.name!r}')

    def ratio(self) -> Tensor:
        """The gradient ratio ``g_j`` as a detached float32 ``[C]`` tensor."""
        return self.pos_neg.detach().to(torch.float32)

    @torch.no_grad()
    def update(self, pos: Tensor, neg: Tensor) -> bool:
        """Add one step's per-class sums.

        Args:
            pos: ``[C]`` sum of ``|dL/dz|`` over the positives of each class.
            neg: ``[C]`` sum of ``|dL/dz|`` over the negatives of each class.

        Returns:
            True when the step was added, False when it was skipped because
            a (globally summed) value was not finite.
        """
        pos = torch.as_tensor(pos).detach()
        neg = torch.as_tensor(neg).detach()
        for key, t in (('pos', pos), ('neg', neg)):
            if tuple(t.shape) != (self.num_classes, ):
                raise ValueError(
                    f'{self.name}: update() expects `{key}` of shape '
                    f'({self.num_classes},), got {tuple(t.shape)}')
            # sums of gradient magnitudes cannot be negative: a caller bug,
            # never data (non-finite values are skipped below instead)
            if bool(((t < 0) & torch.isfinite(t)).any()):
                raise ValueError(
                    f'{self.name}: update() got a negative `{key}` sum '
                    f'({float(t.min())}); the sums must be >= 0')
        # one collective for both vectors; float64 whatever came in
        both = torch.cat([pos, neg]).to(
            device=self.pos_grad.device, dtype=torch.float64)
        _all_reduce_sum(both)
        if not bool(torch.isfinite(both).all()):
            self.num_skipped += 1
            it = current_iter()
            where = f'iteration {it}' if it is not None else 'this step'
            _warn(f'{self.name}: non-finite gradient statistics at {where} '
                  f'(update call {int(self.num_updates + self.num_skipped)})'
                  f'; the step is not added to the statistics '
                  f'({int(self.num_skipped)} skipped so far)')
            return False
        c = self.num_classes
        self.pos_grad += both[:c]
        self.neg_grad += both[c:]
        # a class that has received no gradient at all keeps its initial
        # ratio (0 / eps would otherwise read as "fully suppressed")
        seen = (self.pos_grad + self.neg_grad) > 0
        self.pos_neg.copy_(
            torch.where(seen, self.pos_grad / (self.neg_grad + self.eps),
                        self.pos_neg))
        self.num_updates += 1
        return True

    def _apply(self, fn, *args, **kwargs):
        # ``module.half()`` / ``.to(dtype)`` must not lower the precision
        # of the accumulators; device moves still apply.
        super()._apply(fn, *args, **kwargs)
        for n in self._FLOAT_BUFFERS:
            buf = self._buffers[n]
            if buf is not None and buf.dtype != torch.float64:
                try:
                    self._buffers[n] = buf.to(torch.float64)
                except (RuntimeError, TypeError):  # pragma: no cover
                    pass  # e.g. MPS has no float64
        return self

    @torch.no_grad()
    def reset(self) -> None:
        """Forget everything (back to the initial ratio)."""
        self.pos_grad.zero_()
        self.neg_grad.zero_()
        self.pos_neg.fill_(self.init_ratio)
        self.num_updates.zero_()
        self.num_skipped.zero_()

    def _load_from_state_dict(self, state_dict: Dict[str, Any], prefix: str,
                              local_metadata: dict, strict: bool,
                              missing_keys: List[str],
                              unexpected_keys: List[str],
                              error_msgs: List[str]) -> None:
        present = [
            n for n in self._FLOAT_BUFFERS if prefix + n in state_dict
        ]
        mismatched = [
            n for n in present
            if tuple(getattr(state_dict[prefix + n], 'shape', ())) != (
                self.num_classes, )
        ]
        if mismatched:
            n = mismatched[0]
            shape = tuple(getattr(state_dict[prefix + n], 'shape', ()))
            msg = (f'checkpoint key {prefix + n!r} has shape {shape} but '
                   f'{self.name} keeps statistics for {self.num_classes} '
                   f'classes: the checkpoint was trained with a different '
                   f'class count')
            # Another class count: the statistics cannot carry over, they
            # start afresh. The checkpoint's keys are reported as unexpected,
            # so strict loading (torch's default, MMEngine's strict=True)
            # fails naming them, while non-strict loading (``load_from``,
            # fine-tuning onto another vocabulary) goes on with a warning -
            # as both treat the classifier's own mismatched weights. Torch
            # and MMEngine pass strict=True to every module, so the choice
            # is theirs, made from the reported keys.
            _warn(msg + '; its gradient statistics start afresh '
                  '(re-initialised). Strict loading fails on these keys.')
            for key in list(state_dict):
                if key.startswith(prefix) and key[len(prefix):] in (
                        self._FLOAT_BUFFERS + self._COUNT_BUFFERS):
                    state_dict.pop(key)
                    unexpected_keys.append(key)
            self.reset()
            return
        for n in present:
            value = state_dict[prefix + n]
            if torch.is_tensor(value) and not bool(
                    (torch.isfinite(value) & (value >= 0)).all()):
                raise ValueError(
                    f'checkpoint key {prefix + n!r} holds non-finite or '
                    f'negative values: the checkpoint\'s gradient '
                    f'statistics of {self.name} are corrupt (every later '
                    f'loss would be NaN). Drop the "{prefix}*" keys from '
                    f'the checkpoint to start the statistics afresh.')
        if present:
            # checkpoints written before the counters existed (or by other
            # implementations keeping only pos/neg/ratio) still load.
            for n in self._COUNT_BUFFERS:
                state_dict.setdefault(prefix + n, getattr(self, n).clone())
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)


def split_pos_neg(grad: Tensor,
                  target: Tensor,
                  weight: Optional[Tensor] = None,
                  num_classes: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """Split per-element gradient magnitudes into per-class pos/neg sums.

    Args:
        grad: ``[N, K]`` values of ``|dL/dz|`` (absolute value is taken).
        target: ``[N, K]`` binary (or soft, in [0, 1]) targets, or ``[N]``
            integer labels; a label ``>= K`` (e.g. background when only the
            foreground columns are passed) has no positive column.
        weight: optional weight broadcastable to ``[N, K]`` (``[N]`` is
            taken per sample).
        num_classes: keep only the first ``num_classes`` columns (e.g. drop a
            background column); defaults to ``K``.

    Returns:
        ``(pos, neg)``, each float64 ``[num_classes]``:
        ``pos_j = sum_i |g_ij| w_ij y_ij`` and
        ``neg_j = sum_i |g_ij| w_ij (1 - y_ij)``.
    """
    grad = grad.detach().abs().to(torch.float64)
    if grad.dim() != 2:
        raise ValueError(f'split_pos_neg: grad must be [N, K], got '
                         f'{tuple(grad.shape)}')
    n, k = grad.shape
    if target.dim() == 1:
        labels = target.detach().long()
        y = torch.zeros_like(grad)
        valid = (labels >= 0) & (labels < k)
        y[valid.nonzero(as_tuple=True)[0], labels[valid]] = 1.0
    else:
        y = target.detach().to(torch.float64)
    if weight is not None:
        w = weight.detach().to(torch.float64)
        if w.dim() == 1:
            w = w[:, None]
        grad = grad * w
    c = k if num_classes is None else int(num_classes)
    pos = (grad * y).sum(0)[:c]
    neg = (grad * (1.0 - y)).sum(0)[:c]
    return pos, neg


def find_gradient_statistics(
        model: nn.Module) -> List[Tuple[str, GradientStatistics]]:
    """Every :class:`GradientStatistics` in ``model`` with its module path.

    Model wrappers (DDP, MMEngine's wrappers) are unwrapped first.
    """
    inner = getattr(model, 'module', None)
    if isinstance(inner, nn.Module):
        model = inner
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, GradientStatistics)]
