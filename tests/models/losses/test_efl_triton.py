"""The fused Triton kernel of EFL / EQFL against the chunked implementation
(the exact one, itself tested against float64 references in
test_efl_loss.py), run on the CPU in Triton's interpreter
(``TRITON_INTERPRET=1``): loss, gradient, statistics, float32 / float64 /
bfloat16 / float16 logits, label weights, several tiles, the module path."""
import subprocess
import sys

import pytest
import torch

pytest.importorskip('triton')

from longtail_plugin.models.losses import (  # noqa: E402
    EqualizedFocalLoss, EqualizedQualityFocalLoss)
from longtail_plugin.models.losses.efl_kernel import \
    EqualizedFocalFunction  # noqa: E402
from longtail_plugin.models.losses.efl_loss import (  # noqa: E402
    equalized_focal_loss, equalized_quality_focal_loss)


@pytest.fixture
def interpret(monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    from longtail_plugin.models.losses import efl_triton
    return efl_triton


def _inputs(n, c, dtype, weight_kind, quality, seed):
    gen = torch.Generator().manual_seed(seed)
    z = (torch.randn(n, c, generator=gen, dtype=torch.float64) * 3)
    labels = torch.full((n, ), c, dtype=torch.long)
    pos = torch.rand(n, generator=gen) < 0.3
    labels[pos] = torch.randint(0, c, (int(pos.sum()), ), generator=gen)
    wdt = torch.float64 if dtype == torch.float64 else torch.float32
    weight = {
        'none': None,
        'row': (torch.rand(n, generator=gen) > 0.2).to(wdt),
        'elem': torch.rand(n, c, generator=gen, dtype=wdt)
    }[weight_kind]
    score = torch.rand(n, generator=gen, dtype=wdt) if quality else None
    gamma = 2.0 + 8.0 * torch.rand(c, generator=gen, dtype=torch.float64)
    return z.to(dtype), labels, weight, score, gamma, gamma / 2.0


def _both(z, labels, weight, score, gamma, factor, efl_triton,
          grad_scale=1.0):
    """(loss, pos, neg, grad) of the chunked and the fused function."""
    nc, pc = (1.0, 1.0) if score is not None else (0.75, 0.25)
    out = []
    for fused in (False, True):
        x = z.clone().requires_grad_()
        if fused:
            res = efl_triton.FusedEqualizedFocalFunction.apply(
                x, labels, score, weight, gamma, factor, nc, pc, 0.37, True)
        else:
            # several chunks, one thread: the reference implementation
            res = EqualizedFocalFunction.apply(x, labels, score, weight,
                                               gamma, factor, nc, pc, 0.37,
                                               'sum', True, 5 * z.size(1), 1)
        loss, pos, neg = res
        (loss * grad_scale).backward()
        out.append((loss, pos, neg, x.grad))
    return out


def _rel(a, b):
    return float((a.double() - b.double()).norm() /
                 b.double().norm().clamp_min(1e-300))


@pytest.mark.parametrize('quality', [False, True], ids=['efl', 'eqfl'])
@pytest.mark.parametrize('weight_kind', ['none', 'row', 'elem'])
@pytest.mark.parametrize('n,c', [(70, 37), (45, 150)])
def test_fused_matches_chunked_float32(interpret, quality, weight_kind, n,
                                       c):
    """1e-6 relative in float32: the loss, each class's statistics (to
    1e-6 of the largest), the gradient (norm-wise); (45, 150) spans two
    column tiles, (70, 37) three row tiles with masked columns."""
    args = _inputs(n, c, torch.float32, weight_kind, quality, seed=n + c)
    (lc, pc, nc, gc), (lf, pf, nf, gf) = _both(*args, interpret,
                                                grad_scale=1.5)
    assert lf.dtype == torch.float32 and gf.dtype == torch.float32
    torch.testing.assert_close(lf, lc, rtol=1e-6, atol=0)
    for a, b in ((pf, pc), (nf, nc)):
        assert a.dtype == torch.float64
        torch.testing.assert_close(a, b, rtol=1e-6,
                                   atol=1e-6 * float(b.abs().max()))
    assert _rel(gf, gc) < 1e-6
    # element-wise: within float32 rounding of the largest entries
    torch.testing.assert_close(gf, gc, rtol=1e-4,
                               atol=1e-6 * float(gc.abs().max()))


@pytest.mark.parametrize('quality', [False, True], ids=['efl', 'eqfl'])
def test_fused_matches_chunked_float64(interpret, quality):
    """In float64 the two implementations agree to rounding: the kernel
    computes the same formulas."""
    args = _inputs(50, 37, torch.float64, 'elem', quality, seed=3)
    (lc, pc, nc, gc), (lf, pf, nf, gf) = _both(*args, interpret)
    assert lf.dtype == torch.float64 and gf.dtype == torch.float64
    for a, b in ((lf, lc), (pf, pc), (nf, nc), (gf, gc)):
        torch.testing.assert_close(a, b, rtol=1e-12,
                                   atol=1e-13 * float(b.abs().max()))


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('quality', [False, True], ids=['efl', 'eqfl'])
def test_fused_matches_chunked_half(interpret, dtype, quality):
    """16-bit logits are computed in float32 by both: loss and statistics
    as in float32, the gradient (stored in the logits' dtype) within one
    rounding of that dtype."""
    args = _inputs(70, 37, dtype, 'row', quality, seed=5)
    (lc, pc, nc, gc), (lf, pf, nf, gf) = _both(*args, interpret)
    assert gf.dtype == dtype and lf.dtype == torch.float32
    torch.testing.assert_close(lf, lc, rtol=1e-6, atol=0)
    for a, b in ((pf, pc), (nf, nc)):
        torch.testing.assert_close(a, b, rtol=1e-6,
                                   atol=2e-6 * float(b.abs().max()))
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(gf.float(), gc.float(), rtol=eps,
                               atol=eps * float(gc.abs().max()))


def test_module_uses_fused_kernel_and_same_statistics(interpret,
                                                      monkeypatch):
    """impl='triton' in training: two levels, the statistics after the
    flush equal those of impl='chunked'; reduction='none' takes the chunked
    path."""
    calls = []
    fused_apply = interpret.FusedEqualizedFocalFunction.apply

    def counting_apply(*args):
        calls.append(1)
        return fused_apply(*args)

    monkeypatch.setattr(interpret.FusedEqualizedFocalFunction, 'apply',
                        counting_apply)
    c = 9
    levels = [_inputs(n, c, torch.float32, 'row', False, seed=n)
              for n in (40, 13)]
    stats = {}
    for impl in ('chunked', 'triton'):
        loss = EqualizedFocalLoss(num_classes=c, loss_weight=1.3,
                                  impl=impl).train()
        with torch.no_grad():
            loss.grad_stats.pos_neg.copy_(torch.linspace(0.1, 1.0, c))
        grads = []
        total = 0
        for z, labels, w, _, _, _ in levels:
            x = z.clone().requires_grad_()
            grads.append(x)
            total = total + loss(x, labels, w, avg_factor=7.0)
        total.backward()
        assert loss.flush_statistics()
        stats[impl] = (float(total), loss.grad_stats.pos_grad.clone(),
                       loss.grad_stats.neg_grad.clone(),
                       [g.grad for g in grads])
        none = loss(levels[0][0], levels[0][1], reduction_override='none')
        assert none.shape == levels[0][0].shape
    assert len(calls) == 2  # the two training levels of impl='triton'
    (lc, pc, nc, gc), (lf, pf, nf, gf) = stats['chunked'], stats['triton']
    assert abs(lf - lc) <= 1e-6 * abs(lc)
    torch.testing.assert_close(pf, pc, rtol=1e-6, atol=1e-6 * float(pc.max()))
    torch.testing.assert_close(nf, nc, rtol=1e-6, atol=1e-6 * float(nc.max()))
    for a, b in zip(gf, gc):
        assert _rel(a, b) < 1e-6


def test_eqfl_module_fused(interpret):
    c = 6
    z, labels, w, score, _, _ = _inputs(30, c, torch.float32, 'row', True, 8)
    out = {}
    for impl in ('chunked', 'triton'):
        loss = EqualizedQualityFocalLoss(num_classes=c, impl=impl).train()
        x = z.clone().requires_grad_()
        val = loss(x, (labels, score), w, avg_factor=4.0)
        val.backward()
        loss.flush_statistics()
        out[impl] = (val.detach(), x.grad, loss.grad_stats.pos_grad.clone())
    torch.testing.assert_close(out['triton'][0], out['chunked'][0],
                               rtol=1e-6, atol=0)
    assert _rel(out['triton'][1], out['chunked'][1]) < 1e-6
    torch.testing.assert_close(out['triton'][2], out['chunked'][2],
                               rtol=1e-6,
                               atol=1e-6 * float(out['chunked'][2].max()))


def test_no_grad_empty_and_second_backward(interpret):
    c = 5
    z, labels, w, _, gamma, factor = _inputs(20, c, torch.float32, 'row',
                                             False, 9)
    ref = equalized_focal_loss(z, labels, gamma, factor, weight=w,
                               avg_factor=3.0, impl='chunked')
    with torch.no_grad():  # no gradient written
        out = equalized_focal_loss(z, labels, gamma, factor, weight=w,
                                   avg_factor=3.0, impl='triton')
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=0)
    # empty batch: zero loss with a graph
    x0 = torch.zeros(0, c, requires_grad=True)
    e = equalized_quality_focal_loss(
        x0, (torch.zeros(0, dtype=torch.long), torch.zeros(0)), 2.0,
        impl='triton', avg_factor=1.0)
    assert e.grad_fn is not None and float(e.detach()) == 0.0
    e.backward()
    assert x0.grad.shape == (0, c)
    # retain_graph: the second backward recomputes (chunked), same result
    x = z.clone().requires_grad_()
    loss = equalized_focal_loss(x, labels, gamma, factor, weight=w,
                                avg_factor=3.0, impl='triton')
    (g1, ) = torch.autograd.grad(loss, x, retain_graph=True)
    (g2, ) = torch.autograd.grad(loss * 2.0, x)
    assert _rel(g2, 2.0 * g1) < 1e-6
    # a row slice of a wider tensor (row stride != C)
    wide = torch.randn(20, 2 * c)
    xs = wide[:, :c]
    a = equalized_focal_loss(xs, labels, gamma, factor, impl='triton')
    b = equalized_focal_loss(xs.contiguous(), labels, gamma, factor,
                             impl='chunked')
    torch.testing.assert_close(a, b, rtol=1e-6, atol=0)


def test_triton_impl_needs_cuda_or_interpreter(monkeypatch):
    monkeypatch.delenv('TRITON_INTERPRET', raising=False)
    z = torch.randn(4, 3)
    with pytest.raises(RuntimeError, match='TRITON_INTERPRET'):
        equalized_focal_loss(z, torch.tensor([0, 3, 1, 3]), 2.0,
                             impl='triton')
    with pytest.raises(ValueError, match='impl'):
        EqualizedFocalLoss(num_classes=3, impl='fused')


def test_import_does_not_load_triton():
    code = ('import sys, longtail_plugin, longtail_plugin.models.losses; '
            'bad = [m for m in ("triton", "longtail_plugin.models.losses.'
            'efl_triton") if m in sys.modules]; assert not bad, bad')
    subprocess.run([sys.executable, '-c', code], check=True, timeout=120)
