"""Speed and memory of dense classification losses at LVIS scale.

Compares, on the same ``N x C`` logits (``C = 1203`` for LVIS v1), one
forward + backward pass of

* ``bce``: ``F.binary_cross_entropy_with_logits`` against a precomputed dense
  one-hot target (the reference every ratio is taken against),
* ``focal_py``: MMDetection's ``py_sigmoid_focal_loss`` (one-hot target),
* ``focal_mmcv``: MMDetection's ``sigmoid_focal_loss`` (the mmcv op; CUDA
  only),
* ``efl_naive``: Equalized Focal Loss written element-wise with autograd
  (per-class ``gamma_j`` broadcast, one-hot target),
* ``efl``: :class:`~longtail_plugin.models.losses.EqualizedFocalLoss` in
  training mode, statistics collection included;

and, for two-stage RoI classifiers (``C + 1`` columns, 25% foreground RoIs):

* ``sigmoid_ce``: MMDetection's ``CrossEntropyLoss(use_sigmoid=True)``, the
  plain sigmoid cross-entropy EQL v2 is measured against,
* ``eqlv2``: :class:`~longtail_plugin.models.losses.EqualizationLossV2` in
  training mode, statistics collection included.

Each case runs in a fresh Python process (so peaks do not mix): one
measured pass for the peak memory, then ``reps`` timed passes (median).
Peak extra memory is what the pass adds on top of the inputs (the logits'
gradient included): on CUDA ``torch.cuda.max_memory_allocated`` minus the
memory allocated before; on CPU the process's peak resident set size
(``VmHWM``, reset through ``/proc/self/clear_refs``) minus the resident set
before the pass.

``tools/benchmark_losses.py`` is the command line.
"""
import json
import os
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

__all__ = [
    'METHODS', 'ROI_METHODS', 'run_case', 'run_benchmark', 'format_table',
    'naive_efl', 'rss_bytes', 'reset_peak_rss', 'peak_extra_memory'
]

METHODS = ('bce', 'focal_py', 'focal_mmcv', 'efl_naive', 'efl')
ROI_METHODS = ('sigmoid_ce', 'eqlv2')


def naive_efl(pred, onehot, gamma, factor, alpha=0.25, weight=None,
              avg_factor=None):
    """Element-wise EFL with autograd (every intermediate is ``N x C``)."""
    import torch.nn.functional as F
    p = pred.sigmoid()
    t = onehot
    pt = p * t + (1 - p) * (1 - t)
    alpha_t = alpha * t + (1 - alpha) * (1 - t)
    loss = F.binary_cross_entropy_with_logits(
        pred, t, reduction='none') * alpha_t * (1 - pt).pow(gamma) * factor
    if weight is not None:
        loss = loss * weight[:, None]
    return loss.sum() / (1.0 if avg_factor is None else avg_factor)


# ---------------------------------------------------------------------------
# one case, inside the worker process
# ---------------------------------------------------------------------------
def rss_bytes(field: str) -> Optional[int]:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in
    bytes; ``None`` where the file does not exist."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset this process's ``VmHWM`` to its current RSS (Linux); ``False``
    where the kernel does not allow it."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def peak_extra_memory(fn: Callable[[], Any], device: str) -> Dict:
    """Peak memory ``fn()`` adds to what this process holds now.

    CUDA: ``max_memory_allocated`` over ``memory_allocated`` before the call
    (peak statistics reset first). CPU: the resident-set high-water mark
    ``VmHWM`` over ``VmRSS`` before the call, with ``VmHWM`` reset first
    where the kernel allows it (``peak_method`` says whether it was).

    Returns:
        ``{peak_extra_bytes, peak_method}``, or ``{}`` where the process's
        memory cannot be read.
    """
    import torch
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return dict(
            peak_extra_bytes=torch.cuda.max_memory_allocated() - base,
            peak_method='cuda max_memory_allocated')
    base = rss_bytes('VmRSS')
    exact = reset_peak_rss()
    fn()
    peak = rss_bytes('VmHWM')
    if base is None or peak is None:
        return {}
    return dict(peak_extra_bytes=peak - base,
                peak_method='VmHWM' if exact else 'VmHWM (not reset)')


def _build_step(method: str, n: int, c: int, device: str):
    """Inputs and a ``step()`` doing one forward + backward."""
    import torch
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(n, c, generator=g) * 2 - 4).to(device)
    # ~1% positive anchors, the rest background (label c)
    labels = torch.full((n, ), c, dtype=torch.long)
    npos = max(1, n // 100)
    idx = torch.randperm(n, generator=g)[:npos]
    labels[idx] = torch.randint(0, c, (npos, ), generator=g)
    labels = labels.to(device)
    weight = torch.ones(n, device=device)
    avg_factor = float(npos)
    ratio = torch.rand(c, generator=g).to(device)
    gamma = 2.0 + 8.0 * (1 - ratio)
    factor = gamma / 2.0
    if method in ROI_METHODS:
        # RoI classifier: C + 1 columns, a quarter of the RoIs foreground
        logits = (torch.randn(n, c + 1, generator=g) * 2 - 2).to(device)
        labels = torch.full((n, ), c, dtype=torch.long)
        idx = torch.randperm(n, generator=g)[:max(1, n // 4)]
        labels[idx] = torch.randint(0, c, (len(idx), ), generator=g)
        labels = labels.to(device)
    need_onehot = method in ('bce', 'focal_py', 'efl_naive')
    onehot = None
    if need_onehot:
        onehot = F.one_hot(labels, c + 1)[:, :c].to(logits.dtype)

    if method == 'bce':

        def loss_fn(x):
            return F.binary_cross_entropy_with_logits(
                x, onehot, weight[:, None], reduction='sum') / avg_factor
    elif method == 'focal_py':
        from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss

        def loss_fn(x):
            return py_sigmoid_focal_loss(
                x, onehot, weight, avg_factor=avg_factor)
    elif method == 'focal_mmcv':
        if device == 'cpu':
            raise RuntimeError('the mmcv sigmoid_focal_loss op is CUDA only')
        from mmdet.models.losses.focal_loss import sigmoid_focal_loss

        def loss_fn(x):
            return sigmoid_focal_loss(x, labels, weight, avg_factor=avg_factor)
    elif method == 'efl_naive':

        def loss_fn(x):
            return naive_efl(x, onehot, gamma, factor, 0.25, weight,
                             avg_factor)
    elif method == 'efl':
        from longtail_plugin.models.losses.efl_loss import EqualizedFocalLoss
        module = EqualizedFocalLoss(num_classes=c).to(device).train()
        with torch.no_grad():
            module.grad_stats.pos_neg.copy_(ratio.double())

        def loss_fn(x):
            out = module(x, labels, weight, avg_factor=avg_factor)
            module.discard_pending_statistics()
            return out
    elif method == 'sigmoid_ce':
        from mmdet.models.losses import CrossEntropyLoss
        module = CrossEntropyLoss(use_sigmoid=True)

        def loss_fn(x):
            return module(x, labels, weight)
    elif method == 'eqlv2':
        from longtail_plugin.models.losses import EqualizationLossV2
        module = EqualizationLossV2(num_classes=c).to(device).train()
        with torch.no_grad():
            module.grad_stats.pos_neg.copy_(ratio.double())

        def loss_fn(x):
            return module(x, labels, weight)
    else:
        raise ValueError(f'unknown method {method!r}')

    def step():
        x = logits.detach().requires_grad_()
        loss_fn(x).backward()
        return x

    return logits, step


def run_case(method: str, n: int, c: int, device: str = 'cpu',
             reps: int = 3, threads: Optional[int] = None) -> Dict:
    """Measure one method at one size in this process (see module doc)."""
    import torch
    if threads:
        torch.set_num_threads(int(threads))
    cuda = device.startswith('cuda')
    result = dict(method=method, n=n, c=c, device=device, reps=reps,
                  threads=torch.get_num_threads())
    try:
        # warm up lazy initialisation on a small problem first
        _, small = _build_step(method, 64, c, device)
        small()
        logits, step = _build_step(method, n, c, device)
    except Exception as e:  # method not available here
        result['error'] = f'{type(e).__name__}: {e}'
        return result
    result['logits_bytes'] = logits.numel() * logits.element_size()

    def sync():
        if cuda:
            torch.cuda.synchronize()

    result.update(peak_extra_memory(step, device))
    times: List[float] = []
    for _ in range(max(1, reps)):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    result['times'] = times
    result['median_s'] = statistics.median(times)
    return result


# ---------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------
def _run_in_subprocess(method: str, n: int, c: int, device: str, reps: int,
                       threads: Optional[int], timeout: float) -> Dict:
    # load this file alone: importing the package (MMDetection included)
    # costs seconds that the BCE / naive cases do not need
    code = ('import importlib.util, json, sys; '
            'spec = importlib.util.spec_from_file_location('
            '"_loss_benchmark", sys.argv[2]); '
            'mod = importlib.util.module_from_spec(spec); '
            'spec.loader.exec_module(mod); '
            'print("@@" + json.dumps(mod.run_case(*json.loads(sys.argv[1]))))')
    args = json.dumps([method, n, c, device, reps, threads])
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    env = dict(os.environ)
    env['PYTHONPATH'] = root + os.pathsep + env.get('PYTHONPATH', '')
    from longtail_plugin.utils.child_process import run_json_child
    out = run_json_child(
        [sys.executable, '-c', code, args, os.path.abspath(__file__)],
        '@@', timeout=timeout, env=env)
    if out.timed_out:
        return dict(method=method, n=n, c=c, device=device,
                    error=f'timed out after {timeout:.0f} s')
    if out.data is not None:
        return out.data
    return dict(method=method, n=n, c=c, device=device,
                error=f'worker failed (rc {out.returncode}): ' +
                ' | '.join(out.tail))


def run_benchmark(sizes: Sequence[int],
                  num_classes: int = 1203,
                  methods: Sequence[str] = METHODS,
                  device: str = 'cpu',
                  reps: int = 3,
                  threads: Optional[int] = None,
                  timeout: float = 300.0,
                  progress=None) -> List[Dict]:
    """Every (size, method) case, each in a fresh process."""
    results = []
    for n in sizes:
        for m in methods:
            if m == 'focal_mmcv' and not device.startswith('cuda'):
                results.append(dict(method=m, n=n, c=num_classes,
                                    device=device, error='CUDA only'))
                continue
            if progress is not None:
                progress(f'{n} x {num_classes}: {m} ...')
            results.append(
                _run_in_subprocess(m, int(n), int(num_classes), device,
                                   reps, threads, timeout))
    return results


def format_table(results: Sequence[Dict]) -> str:
    """Markdown table; ratios are against the reference at the same size:
    ``bce`` for the dense losses, ``sigmoid_ce`` for the RoI losses."""
    refs = {(r['method'], r['n'], r['c']): r for r in results
            if r['method'] in ('bce', 'sigmoid_ce') and 'error' not in r}
    lines = [
        '| rows x classes | method | fwd+bwd ms (median) | time / ref '
        '| peak extra MB | peak / logits | peak / ref |',
        '|---|---|---:|---:|---:|---:|---:|'
    ]
    for r in results:
        size = f"{r['n']} x {r['c']}"
        if 'error' in r:
            lines.append(f"| {size} | {r['method']} | n/a ({r['error']}) "
                         f'| | | | |')
            continue
        ref_name = 'sigmoid_ce' if r['method'] in ROI_METHODS else 'bce'
        ref = refs.get((ref_name, r['n'], r['c']))
        ms = r['median_s'] * 1e3
        t_ratio = f"{r['median_s'] / ref['median_s']:.2f}" if ref else ''
        peak = r.get('peak_extra_bytes')
        if peak is None:
            mem = per_logits = m_ratio = ''
        else:
            mem = f'{peak / 2**20:.0f}'
            per_logits = f"{peak / r['logits_bytes']:.2f}"
            rp = ref.get('peak_extra_bytes') if ref else None
            m_ratio = f'{peak / rp:.2f}' if rp else ''
        lines.append(f"| {size} | {r['method']} | {ms:.0f} | {t_ratio} | "
                     f'{mem} | {per_logits} | {m_ratio} |')
    return '\n'.join(lines)
