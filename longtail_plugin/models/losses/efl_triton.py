r"""Fused Triton kernel of Equalized Focal Loss / Equalized Quality Focal Loss
(Li et al., "Equalized Focal Loss for Dense Long-Tailed Object Detection",
CVPR 2022) for a summed or averaged loss: one read of the logits, one write
of the gradient.

One program handles a ``BLOCK_M x BLOCK_N`` tile of the logits ``z`` and
computes, for every entry, the terms of :mod:`.efl_kernel` (a positive EFL
entry is the negative entry at ``x = -z``; a positive EQFL entry has the
quality terms):

* the loss ``c_ij h_ij`` summed over the tile's rows, per column,
* the gradient ``dL/dz_ij = +-c_ij g_ij``, written in the logits' dtype,
* ``|dL/dz_ij|`` summed over the tile's rows per column, split into
  positives and negatives (the statistics),

with ``c_ij = (gamma_j / gamma_b) * alpha_t * w_ij * scale``. The per-tile
column sums (float32 over ``BLOCK_M`` rows) are added up in float64 by
torch, in tile order (deterministic, no atomics). Everything is computed in
float32 for float32 / float16 / bfloat16 logits, in float64 for float64
logits, with the coefficients computed as the chunked pass computes them.

The gradient is computed in the forward pass (the loss is a sum, so its
gradient is known up to ``grad_output``), kept for the backward pass and
scaled there by ``grad_output`` in place: peak memory is the gradient (one
logits' size) plus the per-tile sums. A second backward pass through the
same graph (``retain_graph=True``) recomputes the gradient with the chunked
implementation.

Selection (``impl`` of the losses): ``'auto'`` uses this kernel for CUDA
logits when Triton imports; ``'triton'`` asks for it wherever it applies
and fails if Triton cannot run (on CPU it runs in Triton's interpreter when
``TRITON_INTERPRET=1`` is set, which is how the tests check it against the
chunked implementation); ``'chunked'`` never uses it. The kernel covers
``reduction='mean' | 'sum'``; ``reduction='none'`` takes the chunked path.

The losses import this module (and so Triton) only when the fused path is
asked for or the logits are on CUDA: ``import longtail_plugin`` never loads
Triton.
"""
import functools
import os
from typing import Optional, Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from .efl_kernel import (LOG2E, EqualizedFocalFunction, compute_dtype,
                         default_chunk_elems, no_autocast)

__all__ = ['FusedEqualizedFocalFunction', 'fused_forward', 'interpret_mode']

BLOCK_M = 32
BLOCK_N = 128


def _efl_tile_kernel(z_ptr, label_ptr, score_ptr, w_ptr, gamma_ptr,
                     gamma_l2_ptr, cneg_ptr, cpos_ptr, grad_ptr, loss_ptr,
                     pos_ptr, neg_ptr, N, C, stride_z, stride_w, stride_g,
                     W_MODE: tl.constexpr, QUALITY: tl.constexpr,
                     WRITE_GRAD: tl.constexpr, COLLECT: tl.constexpr,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """One tile: the loss and statistics column sums and the gradient (see
    the module doc). The compute dtype is that of ``gamma`` (float32, or
    float64 for float64 logits). Decorated by :func:`_kernel`."""
    cdt = gamma_ptr.dtype.element_ty
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rmask = rows < N
    cmask = cols < C
    mask = rmask[:, None] & cmask[None, :]
    rows64 = rows.to(tl.int64)
    z = tl.load(z_ptr + rows64[:, None] * stride_z + cols[None, :],
                mask=mask, other=0.0).to(cdt)
    label = tl.load(label_ptr + rows, mask=rmask, other=-1)
    gamma = tl.load(gamma_ptr + cols, mask=cmask, other=1.0)[None, :]
    gamma_l2 = tl.load(gamma_l2_ptr + cols, mask=cmask, other=1.0)[None, :]
    cneg = tl.load(cneg_ptr + cols, mask=cmask, other=0.0)[None, :]
    cpos = tl.load(cpos_ptr + cols, mask=cmask, other=0.0)[None, :]
    is_pos = (label[:, None] == cols[None, :]) & mask

    # coefficient c_ij, zero outside the logits
    coef = tl.where(is_pos, cpos, cneg)
    if W_MODE == 1:
        w = tl.load(w_ptr + rows, mask=rmask, other=0.0).to(cdt)
        coef = coef * w[:, None]
    if W_MODE == 2:
        coef = coef * tl.load(
            w_ptr + rows64[:, None] * stride_w + cols[None, :], mask=mask,
            other=0.0).to(cdt)
    coef = tl.where(mask, coef, 0.0)

    # focal terms of x (= z for a negative entry, -z for an EFL positive)
    x = tl.where(is_pos, -z, z)
    u = tl.exp(-tl.abs(x))
    v = 1.0 + u
    # log1p(u), accurate where 1 + u rounds (Goldberg's correction)
    l1p = tl.where(v == 1.0, u, tl.log(v) * (u / (v - 1.0)))
    sp = tl.maximum(x, 0.0) + l1p  # softplus(x) = -log(1 - sigmoid(x))
    a = tl.exp2((x - sp) * gamma_l2)  # p^gamma
    h = a * sp
    p = 1.0 / (1.0 + tl.exp(-x))
    g = (p + (sp * gamma) * (1.0 - p)) * a
    d = tl.where(is_pos, -g, g)  # d/dz of h
    if QUALITY:
        # positive EQFL entries: |t - q|^gamma BCE(z, t), q = sigmoid(z)
        t = tl.load(score_ptr + rows, mask=rmask, other=0.0).to(cdt)[:, None]
        q = 1.0 - p  # sigmoid(z) = 1 - sigmoid(-z) at x = -z
        bce = (sp + z) - t * z  # softplus(z) = softplus(-z) + z
        dq = q - t
        ad = tl.abs(dq)
        lad = tl.log2(tl.where(ad > 0, ad, 1.0))
        pw = tl.where(ad > 0, tl.exp2(gamma * lad), 0.0)
        pw1 = tl.where(ad > 0, tl.exp2((gamma - 1.0) * lad),
                       tl.where(gamma == 1.0, 1.0, 0.0))
        sgn = tl.where(dq > 0, 1.0, tl.where(dq < 0, -1.0, 0.0))
        h = tl.where(is_pos, bce * pw, h)
        d = tl.where(is_pos,
                     sgn * pw1 * (ad * ad + gamma * bce * q * (1.0 - q)), d)

    grad = d * coef
    out = pid_m * C + cols
    # column sums; tl.reduce with the standard sum rather than tl.sum (a
    # jitted helper), so the interpreter also runs when Triton was imported
    # before TRITON_INTERPRET was set
    add = tl.standard._sum_combine
    tl.store(loss_ptr + out, tl.reduce(h * coef, 0, add), mask=cmask)
    if COLLECT:
        ag = tl.abs(grad)
        tl.store(pos_ptr + out, tl.reduce(tl.where(is_pos, ag, 0.0), 0, add),
                 mask=cmask)
        tl.store(neg_ptr + out, tl.reduce(tl.where(is_pos, 0.0, ag), 0, add),
                 mask=cmask)
    if WRITE_GRAD:
        tl.store(grad_ptr + rows64[:, None] * stride_g + cols[None, :],
                 grad.to(grad_ptr.dtype.element_ty), mask=mask)


def interpret_mode() -> bool:
    """``TRITON_INTERPRET=1``: Triton runs kernels on the CPU (numpy)."""
    return os.environ.get('TRITON_INTERPRET', '0') == '1'


@functools.lru_cache(maxsize=2)
def _kernel(interpret: bool):
    """The jitted kernel, or its interpreted twin under
    ``TRITON_INTERPRET=1`` (Triton reads the variable when decorating)."""
    return triton.jit(_efl_tile_kernel)


def fused_forward(pred: Tensor, labels: Tensor, score: Optional[Tensor],
                  weight: Optional[Tensor], gamma: Tensor, factor: Tensor,
                  neg_coef: float, pos_coef: float, scale: float,
                  write_grad: bool, collect: bool
                  ) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
    """Run the kernel over ``pred [N, C]``: ``(loss, pos, neg, grad)``
    (float64 sums; ``grad`` in the logits' dtype, or ``None``). Arguments
    as :class:`~.efl_kernel.EqualizedFocalFunction`'s."""
    n, c = pred.shape
    dev = pred.device
    cdt = compute_dtype(pred)
    z = pred if pred.stride(1) == 1 else pred.contiguous()
    labels = labels.contiguous()
    grid_m = triton.cdiv(n, BLOCK_M)
    block_n = min(BLOCK_N, triton.next_power_of_2(max(c, 16)))
    # the coefficients as the chunked pass computes them
    gamma = gamma.to(device=dev, dtype=cdt).contiguous()
    factor = factor.to(device=dev, dtype=cdt)
    gamma_l2 = (gamma * LOG2E).contiguous()
    cneg = (factor * (neg_coef * scale)).contiguous()
    cpos = (factor * (pos_coef * scale)).contiguous()
    loss_part = torch.zeros((grid_m, c), dtype=cdt, device=dev)
    pos_part = torch.zeros_like(loss_part) if collect else loss_part
    neg_part = torch.zeros_like(loss_part) if collect else loss_part
    grad = torch.empty((n, c), dtype=pred.dtype, device=dev) \
        if write_grad else z
    if weight is None:
        w_mode, w, stride_w = 0, z, 0
    elif weight.dim() == 1:
        w_mode, w, stride_w = 1, weight.contiguous(), 0
    else:
        w = weight if weight.stride(1) == 1 else weight.contiguous()
        w_mode, stride_w = 2, w.stride(0)
    sc = z if score is None else score.contiguous()
    if n > 0 and c > 0:
        _kernel(interpret_mode())[(grid_m, triton.cdiv(c, block_n))](
            z, labels, sc, w, gamma, gamma_l2, cneg, cpos, grad, loss_part,
            pos_part, neg_part, n, c, z.stride(0), stride_w, grad.stride(0),
            W_MODE=w_mode, QUALITY=score is not None,
            WRITE_GRAD=bool(write_grad), COLLECT=bool(collect),
            BLOCK_M=BLOCK_M, BLOCK_N=block_n)
    loss = loss_part.double().sum()
    if collect:
        pos = pos_part.double().sum(0)
        neg = neg_part.double().sum(0)
    else:
        pos = neg = torch.zeros(0, dtype=torch.float64, device=dev)
    return loss, pos, neg, (grad if write_grad else None)


class FusedEqualizedFocalFunction(torch.autograd.Function):
    """The fused kernel as an autograd function; same inputs and outputs as
    :class:`~.efl_kernel.EqualizedFocalFunction` with ``mode='sum'`` (no
    mode, chunk size or thread count)."""

    @staticmethod
    def forward(ctx, pred, labels, score, weight, gamma, factor, neg_coef,
                pos_coef, scale, collect):
        write_grad = bool(ctx.needs_input_grad[0])
        with no_autocast(pred.device):
            loss, pos, neg, grad = fused_forward(
                pred.detach(), labels, score,
                None if weight is None else weight.detach(), gamma, factor,
                neg_coef, pos_coef, scale, write_grad, collect)
        ctx.grad = grad
        ctx.save_for_backward(pred, labels, score, weight, gamma, factor)
        ctx.coefs = (neg_coef, pos_coef, scale)
        ctx.mark_non_differentiable(pos, neg)
        return loss.to(compute_dtype(pred)), pos, neg

    @staticmethod
    def backward(ctx, grad_out, _gpos, _gneg):
        nargs = 10
        if not ctx.needs_input_grad[0]:
            return (None, ) * nargs
        grad, ctx.grad = ctx.grad, None
        if grad is not None:
            # the loss is a sum: its gradient scales with grad_output
            return (grad.mul_(grad_out.to(grad.dtype)), ) + (None, ) * (
                nargs - 1)
        # a second backward pass (retain_graph): recompute, chunked
        pred, labels, score, weight, gamma, factor = ctx.saved_tensors
        neg_coef, pos_coef, scale = ctx.coefs
        with torch.enable_grad():
            x = pred.detach().requires_grad_()
            loss, _, _ = EqualizedFocalFunction.apply(
                x, labels, score, weight, gamma, factor, neg_coef, pos_coef,
                scale, 'sum', False, default_chunk_elems(x), 1)
            (g, ) = torch.autograd.grad(loss, x, grad_out.to(loss.dtype))
        return (g, ) + (None, ) * (nargs - 1)
