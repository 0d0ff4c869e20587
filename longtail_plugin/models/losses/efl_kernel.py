r"""The chunked dense pass of Equalized Focal Loss / Equalized Quality Focal
Loss (Li et al., "Equalized Focal Loss for Dense Long-Tailed Object
Detection", CVPR 2022): loss, gradient and per-class gradient sums without
any ``N x C`` intermediate.

Notation as in :mod:`.efl_loss`: logits ``z [N, C]``, ``p = sigmoid(z)``,
per-class focusing factors ``gamma_j`` and weighting factors
``gamma_j / gamma_b``. For a negative entry (target 0) with logit ``x``,
``sp = softplus(x) = -log(1 - p)``:

.. math::

    h(x) = p^{\gamma}\,\mathrm{sp}, \qquad
    g(x) = \frac{dh}{dx} = p^{\gamma}\,\big(p + \gamma (1 - p)\,
        \mathrm{sp}\big) \ge 0,

and a positive EFL entry with logit ``z`` is the negative entry at
``x = -z``. The loss of entry ``(i, j)`` is ``c_ij h`` with the coefficient
``c_ij = (gamma_j / gamma_b) * alpha_t * w_ij * scale`` (``scale`` is the
reduction: ``loss_weight / avg_factor``, ...).

:class:`EqualizedFocalFunction` walks the logits in row chunks: every entry
is first treated as a negative, then the at most one positive entry per
anchor is handled exactly on the gathered ``(anchor, label)`` pairs. The
forward pass returns the loss and the per-class sums of ``|dL/dz|`` split
by the target; the backward pass recomputes the gradient from the saved
logits, labels and weights.

CPU threads. A chunk holds at most ``CPU_CHUNK_ELEMS`` (32768) elements:
below ATen's parallel grain, so each op of a chunk runs on the calling
thread, in cache, without OpenMP barriers (those made larger, internally
threaded chunks up to 10x slower on a loaded 2-core machine). The chunks
are split into ``threads`` contiguous groups (``torch.get_num_threads()``
by default) run side by side on Python threads; every chunk writes its own
rows of the outputs and its own row of the per-chunk column sums, which are
added up in float64 in chunk order, so the result does not depend on the
thread count. Torch ops release the GIL while they compute; Python holds
it only to dispatch the ops (each chunk's views are made once per pass):
about a sixth of the single-thread CPU time at 20k x 1203 (measured with
one-row chunks), which bounds two threads at about 1.7x.

GPU (the non-fused path, e.g. without Triton): a chunk holds an eighth of
the logits' bytes in compute-dtype elements (an eighth of the elements for
float32 logits, a sixteenth for 16-bit ones; between 64K and 16M elements),
so the chunk's temporaries stay below the logits' size and the peak, the
gradient included, below twice the logits.
"""
import contextlib
import threading
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    'EqualizedFocalFunction', 'apply_chunked', 'CPU_CHUNK_ELEMS', 'LOG2E',
    'default_chunk_elems', 'default_threads', 'compute_dtype', 'no_autocast',
    'neg_terms', 'positives', 'positive_terms', 'pos_focal_terms',
    'pos_quality_terms', 'run_parallel'
]

LOG2E = 1.4426950408889634
#: elements per chunk on CPU (ATen's ``at::internal::GRAIN_SIZE``)
CPU_CHUNK_ELEMS = 1 << 15
_GPU_MIN_CHUNK_ELEMS = 1 << 16
_GPU_MAX_CHUNK_ELEMS = 1 << 24
# a thread gets at least this many chunks, or the pass stays on one thread
_MIN_CHUNKS_PER_THREAD = 4


def compute_dtype(t: Tensor) -> torch.dtype:
    """float64 for float64 inputs, float32 for every other float dtype."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def no_autocast(device: torch.device):
    """Context in which autocast is off for ``device``."""
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except Exception:  # pragma: no cover - device without autocast support
        return contextlib.nullcontext()


def default_chunk_elems(t: Tensor) -> int:
    """Elements per chunk for logits ``t [N, C]`` (see the module doc)."""
    if t.device.type == 'cpu':
        return CPU_CHUNK_ELEMS
    # about six compute-dtype temporaries of a chunk stay below 3/4 of the
    # logits' bytes; the gradient adds one logits' size in the backward pass
    cdt_size = 8 if t.dtype == torch.float64 else 4
    elems = t.numel() * t.element_size() // (8 * cdt_size)
    return int(min(_GPU_MAX_CHUNK_ELEMS, max(_GPU_MIN_CHUNK_ELEMS, elems)))


def default_threads(t: Tensor) -> int:
    """Threads of the dense pass: torch's intra-op count on CPU, 1 else."""
    return torch.get_num_threads() if t.device.type == 'cpu' else 1


def run_parallel(work: Callable[[int], None], num: int,
                 threads: int) -> None:
    """``work(k)`` for ``k in range(num)``, in ``threads`` contiguous
    groups on Python threads (the caller runs the first group).

    Each thread runs with grad mode off (``work`` sees plain tensors) and
    autocast off; the first exception of any group is raised here after
    every group has finished.
    """
    threads = max(1, min(int(threads), num // _MIN_CHUNKS_PER_THREAD))
    if threads <= 1:
        for k in range(num):
            work(k)
        return
    bounds = [num * t // threads for t in range(threads + 1)]
    errors: List[BaseException] = []

    def group(t: int) -> None:
        try:
            with torch.no_grad():
                for k in range(bounds[t], bounds[t + 1]):
                    work(k)
        except BaseException as e:  # re-raised by the caller
            errors.append(e)

    workers = [
        threading.Thread(target=group, args=(t, ), daemon=True)
        for t in range(1, threads)
    ]
    for w in workers:
        w.start()
    group(0)
    for w in workers:
        w.join()
    if errors:
        raise errors[0]


# ---------------------------------------------------------------------------
# element-wise terms
# ---------------------------------------------------------------------------
def _softplus(x: Tensor) -> Tensor:
    """``log(1 + exp(x))``; the linear branch starts where ``exp(-x)`` is
    below the dtype's resolution."""
    return F.softplus(x, threshold=20.0 if x.dtype != torch.float64 else 40.0)


def neg_terms(x: Tensor,
              gamma: Tensor,
              want_loss: bool,
              want_grad: bool,
              gamma_log2e: Optional[Tensor] = None
              ) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """Focal terms ``(h, g)`` of a negative entry with logit ``x`` (see the
    module doc); ``gamma`` broadcasts against ``x``, ``gamma_log2e`` is
    ``gamma * log2(e)`` when precomputed. One softplus, one sigmoid and one
    ``exp2`` per element, about ten passes over a chunk that stays in
    cache."""
    if gamma_log2e is None:
        gamma_log2e = gamma * LOG2E
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


def pos_focal_terms(z: Tensor, gamma: Tensor) -> Tuple[Tensor, Tensor]:
    """Target-1 focal terms: ``(-(1-p)^gamma log p, d/dz of it)``."""
    h, g = neg_terms(-z, gamma, True, True)
    return h, g.neg_()


def pos_quality_terms(z: Tensor, t: Tensor,
                      gamma: Tensor) -> Tuple[Tensor, Tensor]:
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


def positives(labels: Tensor, num_classes: int) -> Tuple[Tensor, Tensor]:
    """Rows and columns of the positive entries (labels in ``[0, C)``)."""
    valid = (labels >= 0) & (labels < num_classes)
    rows = valid.nonzero(as_tuple=True)[0]
    return rows, labels[rows].long()


def _step(c: int, chunk_elems: int) -> int:
    """Rows per chunk."""
    return max(1, int(chunk_elems) // max(c, 1))


def _chunks(n: int, c: int, pos_rows: Tensor,
            chunk_elems: int) -> List[Tuple[int, int, int, int]]:
    """``(r0, r1, lo, hi)``: rows ``[r0, r1)`` hold positives
    ``pos_rows[lo:hi]``."""
    step = _step(c, chunk_elems)
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


def _split(t: Optional[Tensor], step: int) -> Optional[Sequence[Tensor]]:
    """Row-chunk views of ``t`` (made once: fewer ops per chunk)."""
    return None if t is None else t.split(step)


def _as_compute(z: Tensor, cdt: torch.dtype) -> Tensor:
    if z.dtype != cdt:
        z = z.to(cdt)
    return z if z.is_contiguous() else z.contiguous()


def positive_terms(pred: Tensor, pos_rows: Tensor, pos_cols: Tensor,
                   score: Optional[Tensor], weight: Optional[Tensor],
                   gamma: Tensor, factor: Tensor, pos_coef: float,
                   scale: float, cdt: torch.dtype
                   ) -> Tuple[Tensor, Tensor, Tensor]:
    """``(h, g, coef)`` of the positive entries: the loss terms, their
    derivatives (EFL focal or EQFL quality) and their coefficients."""
    zp = pred[pos_rows, pos_cols].to(cdt)
    gp = gamma[pos_cols]
    if score is None:
        hp, dp = pos_focal_terms(zp, gp)
    else:
        hp, dp = pos_quality_terms(zp, score[pos_rows].to(cdt), gp)
    cp = factor[pos_cols] * (pos_coef * scale)
    if weight is not None:
        cp = cp * (weight[pos_rows] if weight.dim() == 1 else
                   weight[pos_rows, pos_cols])
    return hp, dp, cp


class EqualizedFocalFunction(torch.autograd.Function):
    """Loss and per-class gradient sums of EFL / EQFL in one chunked pass.

    Inputs: ``pred [N, C]`` (any float dtype), ``labels [N]`` (background =
    anything outside ``[0, C)``), ``score [N]`` (EQFL quality target) or
    ``None`` (EFL), ``weight`` ``None`` / ``[N]`` / ``[N, C]``, ``gamma`` and
    ``factor`` ``[C]``, scalar coefficients of negative / positive entries,
    the reduction ``scale``, ``mode`` ('sum' -> scalar, 'elem' -> ``[N, C]``,
    'row' -> ``[N]``), whether to collect statistics, the chunk size, the
    number of CPU threads.

    Outputs: ``(loss, pos [C], neg [C])``; the statistics are float64 sums
    of ``|dL/dz|`` of ``loss`` ('sum') or of ``loss.sum()`` (other modes).
    """

    @staticmethod
    def forward(ctx, pred, labels, score, weight, gamma, factor, neg_coef,
                pos_coef, scale, mode, collect, chunk_elems, threads):
        n, c = pred.shape
        cdt = compute_dtype(pred)
        dev = pred.device
        pred_d = pred.detach()
        with no_autocast(dev):
            gamma = gamma.to(device=dev, dtype=cdt)
            factor = factor.to(device=dev, dtype=cdt)
            gamma_l2 = gamma * LOG2E
            w = None if weight is None else weight.to(cdt)
            colc = factor * (neg_coef * scale)
            pos_rows, pos_cols = positives(labels, c)
            pos_flat = pos_rows * c + pos_cols
            chunks = _chunks(n, c, pos_rows, chunk_elems)
            step = _step(c, chunk_elems)
            # flat index of each positive inside its chunk
            pos_local = pos_flat - torch.div(
                pos_rows, step, rounding_mode='floor') * (step * c)
            # per-chunk column sums (float32 over a few rows each), summed
            # over chunks in float64 at the end
            nk = len(chunks)
            hbuf = pred.new_empty((nk, c), dtype=cdt) if mode == 'sum' \
                else None
            gbuf = pred.new_empty((nk, c), dtype=cdt) if collect else None
            out = None
            if mode == 'elem':
                out = pred.new_empty((n, c), dtype=cdt)
            elif mode == 'row':
                out = pred.new_empty((n, ), dtype=cdt)
            zs, ws, outs = (_split(pred_d, step), _split(w, step),
                            _split(out, step))
            hs = None if hbuf is None else hbuf.unbind(0)
            gs = None if gbuf is None else gbuf.unbind(0)

            def chunk(k: int) -> None:
                _, _, lo, hi = chunks[k]
                z = _as_compute(zs[k], cdt)
                wc = None if ws is None else ws[k]
                h, g = neg_terms(z, gamma, True, collect, gamma_l2)
                local = pos_local[lo:hi] if hi > lo else None
                if mode == 'elem':
                    # positive entries are overwritten below
                    if wc is None:
                        torch.mul(h, colc, out=outs[k])
                    else:
                        h.mul_(colc)
                        torch.mul(h, wc.unsqueeze(1) if wc.dim() == 1 else wc,
                                  out=outs[k])
                else:
                    if local is not None:
                        h.view(-1).index_fill_(0, local, 0)
                    if mode == 'sum':
                        _col_sum(h, wc, out=hs[k])
                    else:
                        if wc is not None and wc.dim() == 2:
                            h.mul_(wc)
                        torch.mv(h, colc, out=outs[k])
                        if wc is not None and wc.dim() == 1:
                            outs[k].mul_(wc)
                if collect:
                    if local is not None:
                        g.view(-1).index_fill_(0, local, 0)
                    _col_sum(g, wc, out=gs[k])

            run_parallel(chunk, nk, threads)

            # positive entries, exactly, on the gathered (anchor, label) pairs
            lp, dp, cp = positive_terms(pred_d, pos_rows, pos_cols, score, w,
                                        gamma, factor, pos_coef, scale, cdt)
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
        ctx.mode, ctx.chunk_elems, ctx.threads = mode, chunk_elems, threads
        ctx.mark_non_differentiable(pos, neg)
        return loss, pos, neg

    @staticmethod
    def backward(ctx, grad_out, _gpos, _gneg):
        pred, labels, score, weight, gamma, factor = ctx.saved_tensors
        nargs = 13
        if not ctx.needs_input_grad[0]:
            return (None, ) * nargs
        n, c = pred.shape
        cdt = compute_dtype(pred)
        dev = pred.device
        mode = ctx.mode
        pred = pred.detach()
        with no_autocast(dev):
            go = grad_out.to(cdt)
            gamma_l2 = gamma * LOG2E
            w = None if weight is None else weight.to(cdt)
            colc = factor * (ctx.neg_coef * ctx.scale)
            if mode == 'sum':
                colc = colc * go
            # row factor: label weight (and grad_output per row)
            if mode == 'row':
                rowc = go if w is None else (
                    w * go.unsqueeze(1) if w.dim() == 2 else w * go)
            else:
                rowc = w
            pos_rows, pos_cols = positives(labels, c)
            grad = torch.empty((n, c), dtype=pred.dtype, device=dev)
            step = _step(c, ctx.chunk_elems)
            zs, grads, rows = (_split(pred, step), _split(grad, step),
                               _split(rowc, step))
            gos = _split(go, step) if mode == 'elem' else None

            def chunk(k: int) -> None:
                _, g = neg_terms(_as_compute(zs[k], cdt), gamma, False, True,
                                 gamma_l2)
                if gos is not None:
                    g.mul_(gos[k])
                if rows is None:
                    torch.mul(g, colc, out=grads[k])
                else:
                    g.mul_(colc)
                    rc = rows[k]
                    torch.mul(g, rc.unsqueeze(1) if rc.dim() == 1 else rc,
                              out=grads[k])

            run_parallel(chunk, len(zs), ctx.threads)

            _, dp, cp = positive_terms(pred, pos_rows, pos_cols, score, w,
                                       gamma, factor, ctx.pos_coef,
                                       ctx.scale, cdt)
            if mode == 'sum':
                cp = cp * go
            elif mode == 'elem':
                cp = cp * go[pos_rows, pos_cols]
            else:
                cp = cp * go[pos_rows]
            grad[pos_rows, pos_cols] = (dp * cp).to(grad.dtype)
        return (grad, ) + (None, ) * (nargs - 1)


def apply_chunked(pred: Tensor, labels: Tensor, score: Optional[Tensor],
                  weight: Optional[Tensor], gamma: Tensor, factor: Tensor,
                  neg_coef: float, pos_coef: float, scale: float, mode: str,
                  collect: bool, chunk_elems: Optional[int] = None,
                  threads: Optional[int] = None
                  ) -> Sequence[Tensor]:
    """:class:`EqualizedFocalFunction` with the device defaults for the
    chunk size and the thread count."""
    return EqualizedFocalFunction.apply(
        pred, labels, score, weight, gamma, factor, float(neg_coef),
        float(pos_coef), float(scale), mode, bool(collect),
        int(chunk_elems or default_chunk_elems(pred)),
        int(threads or default_threads(pred)))
