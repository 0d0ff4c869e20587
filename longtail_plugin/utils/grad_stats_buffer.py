"""Gradient statistics updated once per training iteration from several
loss calls.

MMDetection's dense heads call the classification loss once per FPN level.
Equalized Focal Loss (Li et al., CVPR 2022) wants every level of an
iteration to use the same per-class factors and the statistics to take one
step per iteration, so the levels' per-class gradient sums are buffered and
handed to :meth:`GradientStatistics.update` (all-reduced across processes,
non-finite steps skipped) once, when the iteration ends.

When the pending sums are flushed, in this order of authority:

1. :meth:`BufferedGradientStatistics.flush`, called for every such module of
   the model by ``EFLStatsFlushHook.after_train_iter`` (the configs' way:
   exactly at the end of each iteration, before the checkpoint is saved) or
   by the user (a custom loop, tests).
2. At the start of the next loss call (:meth:`begin_call`), when the
   pending step has ended:

   * MMEngine's message hub reports another ``'iter'`` than the one the
     sums were recorded in (a runner without the hook), or
   * a backward pass has gone through a loss whose sums are pending (a plain
     PyTorch loop: forward of every level, backward, then the next
     iteration's first call). A loop that calls ``backward`` once per level
     therefore takes one step per level.

What is still pending when the module's ``state_dict`` is taken is not in
that checkpoint: a warning says so, once per module.
"""
import warnings
import weakref
from typing import Optional, Tuple

import torch
from torch import Tensor

from .grad_stats import GradientStatistics, current_iter

__all__ = ['BufferedGradientStatistics']


def _mark_backward(ref: 'weakref.ref') -> None:
    stats = ref()
    if stats is not None:
        stats._backward_seen = True


class BufferedGradientStatistics(GradientStatistics):
    """:class:`GradientStatistics` whose per-call sums are added once per
    iteration (see the module doc).

    Same arguments and buffers as :class:`GradientStatistics`, so
    checkpoints are interchangeable; the pending sums are not part of the
    state (a checkpoint is taken after the iteration's flush).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pending: Optional[Tuple[Tensor, Tensor]] = None
        self._pending_iter: Optional[int] = None
        self._backward_seen = False
        self._warned_state_dict = False

    @property
    def has_pending(self) -> bool:
        """Whether sums of the current iteration are waiting."""
        return self._pending is not None

    def pending(self) -> Optional[Tuple[Tensor, Tensor]]:
        """The buffered float64 ``(pos, neg)`` of the current iteration, or
        ``None``."""
        if self._pending is None:
            return None
        return self._pending[0].clone(), self._pending[1].clone()

    @torch.no_grad()
    def record(self, pos: Tensor, neg: Tensor,
               output: Optional[Tensor] = None) -> None:
        """Add one loss call's per-class sums to the pending step.

        Args:
            pos, neg: ``[C]`` sums of ``|dL/dz|`` of this call.
            output: the call's loss; a backward pass through it marks the
                step as ended (the plain-loop rule of the module doc).
        """
        pos = pos.detach().to(torch.float64)
        neg = neg.detach().to(torch.float64)
        if self._pending is None:
            self._pending = (pos.clone(), neg.clone())
            self._pending_iter = current_iter()
            self._backward_seen = False
        else:
            self._pending[0].add_(pos)
            self._pending[1].add_(neg)
        if output is not None and output.requires_grad:
            ref = weakref.ref(self)
            output.register_hook(lambda grad: _mark_backward(ref))

    def flush(self) -> bool:
        """Hand the pending sums to :meth:`update` (one all-reduced step).

        Returns:
            True when a step was added; False when nothing was pending or
            the step was skipped as non-finite.
        """
        if self._pending is None:
            return False
        pos, neg = self._pending
        self.discard_pending()
        return bool(self.update(pos, neg))

    def discard_pending(self) -> None:
        """Forget the pending sums (e.g. a benchmark's repeated calls)."""
        self._pending = None
        self._pending_iter = None
        self._backward_seen = False

    def begin_call(self) -> bool:
        """Flush the previous iteration's sums if that iteration has ended
        (another message-hub ``'iter'``, or a backward pass since they were
        recorded). Call it at the start of every loss call.

        Returns:
            Whether a flush happened.
        """
        if self._pending is None:
            return False
        ended = self._backward_seen
        if not ended:
            it = current_iter()
            ended = it is not None and it != self._pending_iter
        if ended:
            self.flush()
        return ended

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        if self._pending is not None and not self._warned_state_dict:
            self._warned_state_dict = True
            warnings.warn(
                f'{self.name}: state_dict() taken while gradient sums of the '
                f'current iteration are pending; they are not in this state. '
                f'Add dict(type="EFLStatsFlushHook") to custom_hooks, or '
                f'call flush_statistics() before saving in a custom loop '
                f'(warned once).', RuntimeWarning, stacklevel=3)
        super()._save_to_state_dict(destination, prefix, keep_vars)
