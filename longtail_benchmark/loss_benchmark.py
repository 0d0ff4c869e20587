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
  training mode, statistics collection included, with the chunked pass
  (``impl='chunked'``, what ``impl='auto'`` runs on CPU);
* ``efl_fused``: the same with the fused Triton kernel (``impl='triton'``,
  what ``impl='auto'`` runs on CUDA when Triton is installed); CUDA only
  (on CPU Triton runs only in its interpreter, which says nothing about
  speed), reported as not measured elsewhere;

and, for two-stage RoI classifiers (``C + 1`` columns, 25% foreground RoIs):

* ``sigmoid_ce``: MMDetection's ``CrossEntropyLoss(use_sigmoid=True)``, the
  plain sigmoid cross-entropy EQL v2 is measured against,
* ``eqlv2``: :class:`~longtail_plugin.models.losses.EqualizationLossV2` in
  training mode, statistics collection included.

Each case runs in a fresh Python process (so peaks do not mix) with the
given number of torch threads: one measured pass for the peak memory, then
``reps`` timed passes (median). With ``rounds > 1`` the whole sequence of
cases is repeated and each case's time is the median over the rounds of its
round median; its ratio to the reference is the median of the per-round
ratios (each taken between cases run one right after the other), which
keeps the ratios meaningful on a machine shared with other jobs. By
default (``paired``) each method's process also times its reference, the
two alternating pass by pass, and the round's ratio is the median of the
ratios of adjacent passes (the reference's own process gives its time and
memory).
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
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

__all__ = [
    'METHODS', 'ROI_METHODS', 'run_case', 'run_benchmark', 'format_table',
    'summarize', 'naive_efl', 'rss_bytes', 'reset_peak_rss',
    'peak_extra_memory', 'resolve_threads'
]

METHODS = ('bce', 'focal_py', 'focal_mmcv', 'efl_naive', 'efl', 'efl_fused')
CUDA_ONLY = {
    'focal_mmcv': 'the mmcv op is CUDA only',
    'efl_fused': 'the fused Triton kernel runs on CUDA; no GPU measured here',
}
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
    elif method in ('efl', 'efl_fused'):
        from longtail_plugin.models.losses.efl_loss import EqualizedFocalLoss
        impl = 'chunked' if method == 'efl' else 'triton'
        module = EqualizedFocalLoss(num_classes=c, impl=impl).to(device)
        module.train()
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
             reps: int = 3, threads: Optional[int] = None,
             ref: Optional[str] = None) -> Dict:
    """Measure one method at one size in this process (see module doc).

    With ``ref`` (e.g. ``'bce'``), the timed passes alternate with passes of
    the reference (reference first), and ``paired_ratio`` is the median of
    the ratios of adjacent passes: both see the same load of the machine.
    The peak memory is the method's (measured before the reference is
    built).
    """
    import torch
    if threads:
        torch.set_num_threads(int(threads))
    cuda = device.startswith('cuda')
    result = dict(method=method, n=n, c=c, device=device, reps=reps,
                  threads=torch.get_num_threads())
    try:
        # warm up lazy initialisation on a small problem first
        for m in (method, ref) if ref else (method, ):
            _, small = _build_step(m, 64, c, device)
            small()
        logits, step = _build_step(method, n, c, device)
    except Exception as e:  # method not available here
        result['error'] = f'{type(e).__name__}: {e}'
        return result
    result['logits_bytes'] = logits.numel() * logits.element_size()

    def timed(fn) -> float:
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    result.update(peak_extra_memory(step, device))
    ref_step = _build_step(ref, n, c, device)[1] if ref else None
    times: List[float] = []
    ref_times: List[float] = []
    for _ in range(max(1, reps)):
        if ref_step is not None:
            ref_times.append(timed(ref_step))
        times.append(timed(step))
    result['times'] = times
    result['median_s'] = statistics.median(times)
    if ref_step is not None:
        result['ref'] = ref
        result['ref_times'] = ref_times
        result['paired_ratio'] = statistics.median(
            t / r for t, r in zip(times, ref_times))
    return result


# ---------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------
def _run_in_subprocess(method: str, n: int, c: int, device: str, reps: int,
                       threads: Optional[int], timeout: float,
                       ref: Optional[str] = None) -> Dict:
    # load this file alone: importing the package (MMDetection included)
    # costs seconds that the BCE / naive cases do not need
    code = ('import importlib.util, json, sys; '
            'spec = importlib.util.spec_from_file_location('
            '"_loss_benchmark", sys.argv[2]); '
            'mod = importlib.util.module_from_spec(spec); '
            'spec.loader.exec_module(mod); '
            'print("@@" + json.dumps(mod.run_case(*json.loads(sys.argv[1]))))')
    args = json.dumps([method, n, c, device, reps, threads, ref])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env['PYTHONPATH'] = root + os.pathsep + env.get('PYTHONPATH', '')
    from longtail_benchmark.child_process import run_json_child
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


def resolve_threads(values: Optional[Sequence[Union[int, str]]]
                    ) -> List[int]:
    """Thread counts to measure: ints, or ``'all'`` for every CPU this
    process may run on; duplicates dropped, order kept. ``None``: 1, 2 and
    all."""
    if not values:
        values = [1, 2, 'all']
    try:
        every = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        every = os.cpu_count() or 1
    out: List[int] = []
    for v in values:
        t = every if str(v) == 'all' else int(v)
        if t < 1:
            raise ValueError(f'thread counts must be >= 1, got {v!r}')
        if t not in out:
            out.append(t)
    return out


def run_benchmark(sizes: Sequence[int],
                  num_classes: int = 1203,
                  methods: Sequence[str] = METHODS,
                  device: str = 'cpu',
                  reps: int = 3,
                  threads: Optional[Sequence[Union[int, str]]] = None,
                  timeout: float = 300.0,
                  progress=None,
                  rounds: int = 1,
                  paired: bool = True) -> List[Dict]:
    """Every (round, threads, size, method) case, each in a fresh process;
    the raw results (see :func:`summarize`). ``threads``: see
    :func:`resolve_threads` (on CUDA only the first count is used).
    ``paired``: time each method alternately with its reference in its
    process (see :func:`run_case`)."""
    counts = resolve_threads(threads)
    if device.startswith('cuda'):
        counts = counts[:1]
    results = []
    for rnd in range(max(1, int(rounds))):
        for t in counts:
            for n in sizes:
                for m in methods:
                    base = dict(method=m, n=int(n), c=int(num_classes),
                                device=device, threads=t, round=rnd)
                    if m in CUDA_ONLY and not device.startswith('cuda'):
                        results.append(dict(base, error=CUDA_ONLY[m]))
                        continue
                    if progress is not None:
                        progress(f'round {rnd + 1}/{rounds}, {t} thread(s), '
                                 f'{n} x {num_classes}: {m} ...')
                    ref = _ref_name(m)
                    r = _run_in_subprocess(
                        m, int(n), int(num_classes), device, reps, t,
                        timeout, ref if paired and m != ref else None)
                    r.update(threads=t, round=rnd)
                    results.append(r)
    return results


def _ref_name(method: str) -> str:
    return 'sigmoid_ce' if method in ROI_METHODS else 'bce'


def summarize(results: Sequence[Dict]) -> List[Dict]:
    """One row per (threads, size, method), in first-seen order: the
    median over rounds of the round medians (``median_s``), the median of
    the per-round ratios to the reference (``time_ratio``), the largest
    peak over rounds, and ``ratios`` (one per round)."""
    groups: Dict[tuple, List[Dict]] = {}
    for r in results:
        key = (r.get('threads'), r['n'], r['c'], r['method'])
        groups.setdefault(key, []).append(r)
    refs = {(r.get('threads'), r['n'], r['c'], r['method'], r.get('round')):
            r for r in results if 'error' not in r}
    rows = []
    for (t, n, c, m), rs in groups.items():
        ok = [r for r in rs if 'error' not in r]
        row = dict(method=m, n=n, c=c, threads=t, rounds=len(rs))
        if not ok:
            row['error'] = rs[0]['error']
            rows.append(row)
            continue
        if len(ok) < len(rs):
            bad = next(r for r in rs if 'error' in r)
            row['failed'] = f"{len(rs) - len(ok)} failed: {bad['error']}"
        row['median_s'] = statistics.median(r['median_s'] for r in ok)
        row['logits_bytes'] = ok[0]['logits_bytes']
        peaks = [r['peak_extra_bytes'] for r in ok
                 if r.get('peak_extra_bytes') is not None]
        if peaks:
            row['peak_extra_bytes'] = max(peaks)
        ratios, mem_ratios = [], []
        for r in ok:
            ref = refs.get((t, n, c, _ref_name(m), r.get('round')))
            if 'paired_ratio' in r:
                ratios.append(r['paired_ratio'])
            elif ref is not None:
                ratios.append(r['median_s'] / ref['median_s'])
            if ref is None:
                continue
            rp = ref.get('peak_extra_bytes')
            if rp and r.get('peak_extra_bytes') is not None:
                mem_ratios.append(r['peak_extra_bytes'] / rp)
        if ratios:
            row['ratios'] = ratios
            row['time_ratio'] = statistics.median(ratios)
        if mem_ratios:
            row['mem_ratio'] = max(mem_ratios)
        rows.append(row)
    return rows


def format_table(results: Sequence[Dict]) -> str:
    """Markdown table of :func:`summarize`'s rows (raw results are
    summarized first); ratios are against the reference at the same size
    and thread count: ``bce`` for the dense losses, ``sigmoid_ce`` for the
    RoI losses."""
    rows = summarize(results)
    multi = any(r['rounds'] > 1 for r in rows)
    lines = [
        '| rows x classes | threads | method | fwd+bwd ms (median) '
        '| time / ref | peak extra MB | peak / logits | peak / ref |' +
        (' time / ref per round |' if multi else ''),
        '|---|---:|---|---:|---:|---:|---:|---:|' + ('---|' if multi else '')
    ]
    for r in rows:
        size = f"{r['n']} x {r['c']}"
        head = f"| {size} | {r.get('threads', '')} | {r['method']} |"
        if 'error' in r:
            lines.append(f"{head} n/a ({r['error']}) | | | | |" +
                         (' |' if multi else ''))
            continue
        ms = r['median_s'] * 1e3
        t_ratio = f"{r['time_ratio']:.2f}" if 'time_ratio' in r else ''
        peak = r.get('peak_extra_bytes')
        if peak is None:
            mem = per_logits = ''
        else:
            mem = f'{peak / 2**20:.0f}'
            per_logits = f"{peak / r['logits_bytes']:.2f}"
        m_ratio = f"{r['mem_ratio']:.2f}" if 'mem_ratio' in r else ''
        line = (f'{head} {ms:.0f} | {t_ratio} | {mem} | {per_logits} | '
                f'{m_ratio} |')
        if multi:
            line += ' ' + ', '.join(f'{x:.2f}'
                                    for x in r.get('ratios', []))
            line += f" ({r['failed']}) |" if 'failed' in r else ' |'
        lines.append(line)
    return '\n'.join(lines)
