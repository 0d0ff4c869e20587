"""Timing of the LVIS evaluation backends at LVIS scale.

For each size an LVIS v1 val-shaped ground truth and 300 detections per
image are generated once (:func:`.cases.prepare_case`). Each (size, IoU
type, backend) case then runs in a fresh Python process, which loads the
ground truth and the detections into memory (untimed: the metric holds
both), evaluates them (timed: validation, caps, the library's loading,
matching, accumulation, summary) and reports its wall time and its peak
resident memory (``VmHWM``; the process imports the backends package and
its libraries only, not torch).
"""
from __future__ import annotations

import json
import os
import os.path as osp
import resource
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

__all__ = ['CaseResult', 'run_case', 'run_case_subprocess', 'run_in_child',
           'peak_rss_mb', 'speedup_table',
           'markdown_table', 'as_dicts', 'parity_rows', 'parity_markdown']


@dataclass
class CaseResult:
    """One timed evaluation."""
    num_images: int
    iou_type: str
    backend: str
    seconds: Optional[float] = None
    peak_rss_mb: Optional[float] = None
    ap: Optional[float] = None
    num_dets: Optional[int] = None
    skipped: str = ''


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB.

    ``VmHWM`` of /proc/self/status belongs to the process image (reset by
    exec); ``ru_maxrss`` survives exec on Linux and would report the
    parent's peak when that is higher, so it is only the fallback.
    """
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_case(gt_path: str, preds_path: str, iou_type: str,
             backend: str) -> Dict[str, float]:
    """Evaluate in this process; returns seconds, peak RSS, AP."""
    from longtail_plugin.evaluation.backends import get_backend
    from longtail_plugin.evaluation.metrics.predictions import \
        predictions_to_detections

    from .cases import load_predictions
    with open(gt_path) as f:
        gt = json.load(f)
    cat_ids = sorted(int(c['id']) for c in gt['categories'])
    kind = 'bbox' if iou_type == 'bbox' else 'segm'
    dets = predictions_to_detections(
        load_predictions(preds_path, masks=kind == 'segm', encoded=True),
        cat_ids, kind)
    impl = get_backend(backend)
    start = time.perf_counter()
    result = impl.evaluate(gt, dets, iou_type)
    seconds = time.perf_counter() - start
    return dict(seconds=seconds, peak_rss_mb=peak_rss_mb(),
                ap=result.summary['AP'] if result else None)


#: Child preamble that makes the plugin's packages namespaces, so that the
#: backends load without the plugin's own __init__ (torch, mmdet: some
#: 500 MiB more in every process).
_LIGHT_IMPORTS = (
    'import os, types\n'
    "for name, sub in (('longtail_plugin', ''), "
    "('longtail_plugin.evaluation', 'evaluation'), "
    "('longtail_plugin.evaluation.metrics', 'evaluation/metrics'), "
    "('longtail_plugin.compat', 'compat')):\n"
    '    m = types.ModuleType(name)\n'
    "    m.__path__ = [os.path.join(REPO, 'longtail_plugin', sub)]\n"
    '    sys.modules[name] = m\n')


def run_in_child(module: str, func: str, args: Sequence[str],
                 timeout: Optional[float] = None, nice: int = 0,
                 light: bool = False) -> Tuple[Optional[dict], str]:
    """``module.func(*args)`` in a fresh interpreter (its own peak memory).

    Returns:
        ``(the JSON it returned, '')``, or ``(None, why not)`` when it timed
        out or failed.
    """
    from ..child_process import run_json_child
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    code = (f'import json, sys\nREPO = {repo!r}\nsys.path.insert(0, REPO)\n'
            + (_LIGHT_IMPORTS if light else '') +
            f'from {module} import {func}\n'
            f'print("RESULT " + json.dumps({func}(*sys.argv[1:])))')
    env = dict(os.environ,
               OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))
    child = run_json_child(
        [sys.executable, '-c', code, *args], 'RESULT ', timeout=timeout,
        env=env, tail_lines=1,
        preexec_fn=(lambda: os.nice(nice)) if nice else None)
    if child.timed_out:
        return None, f'over the {timeout:.0f} s limit'
    if child.returncode != 0 or child.data is None:
        return None, (f'failed: {child.tail[0]}' if child.tail else
                      f'failed: {child.returncode}')
    return child.data, ''


def run_case_subprocess(gt_path: str, preds_path: str, iou_type: str,
                        backend: str, num_images: int,
                        timeout: Optional[float] = None,
                        nice: int = 0) -> CaseResult:
    """:func:`run_case` in a fresh interpreter that imports the backends
    package only."""
    data, skipped = run_in_child(
        __name__, 'run_case', [gt_path, preds_path, iou_type, backend],
        timeout, nice, light=True)
    out = CaseResult(num_images, iou_type, backend, skipped=skipped)
    if data is not None:
        out.seconds = data['seconds']
        out.peak_rss_mb = data['peak_rss_mb']
        out.ap = data['ap']
    return out


def speedup_table(rows: Sequence[Any], columns: str, case: Callable,
                  name: Callable, is_reference: Callable,
                  ap_text: Callable,
                  extra: Optional[Tuple[str, Callable]] = None) -> str:
    """Markdown rows ``case | name | time | [extra |] speed-up over the
    reference row of the same case | peak RSS | AP``; skipped rows say
    why."""
    ref = {case(r): r.seconds for r in rows
           if is_reference(r) and r.seconds}
    more = f' {extra[0]} |' if extra else ''
    lines = [f'| {columns} | time (s) |{more} speed-up | peak RSS (MiB) | '
             'AP |', '|' + '---|' * (columns.count('|') + 1) + '---:|' +
             ('---:|' if extra else '') + '---:|---:|---|']
    for r in rows:
        head = f'| {" | ".join(map(str, case(r)))} | {name(r)} |'
        if r.seconds is None:
            lines.append(f'{head} skipped: {r.skipped} |' +
                         ' |' * (4 if extra else 3))
            continue
        base = ref.get(case(r))
        speed = f'{base / r.seconds:.1f}x' if base else 'n/a'
        cell = f' {extra[1](r)} |' if extra else ''
        lines.append(f'{head} {r.seconds:.2f} |{cell} {speed} | '
                     f'{r.peak_rss_mb:.0f} | {ap_text(r)} |')
    return '\n'.join(lines)


def markdown_table(rows: Sequence[CaseResult],
                   reference: str = 'lvis') -> str:
    """Rows side by side with the speed-up over ``reference``."""
    return speedup_table(
        rows, 'images | IoU type | backend',
        lambda r: (r.num_images, r.iou_type), lambda r: r.backend,
        lambda r: r.backend == reference,
        lambda r: '' if r.ap is None else f'{r.ap:.4f}')


def as_dicts(rows: Sequence[Any]) -> List[dict]:
    """Rows (dataclasses) as plain dicts (for a JSON record)."""
    return [asdict(r) for r in rows]


def parity_rows(gt_path: str, result_files: Sequence[str],
                backends: Sequence[str],
                reference: str = 'lvis') -> List[dict]:
    """Evaluate existing results files with every backend and compare each
    to ``reference`` (largest absolute difference of the summary numbers
    and of the per-category APs; NaN patterns must agree).

    The IoU type is read from the file name (``*.segm.json`` -> segm,
    otherwise bbox), as MMDetection names its results files.
    """
    import numpy as np

    from longtail_plugin.evaluation.backends import SUMMARY_KEYS, get_backend
    with open(gt_path) as f:
        gt = json.load(f)
    rows = []
    for path in result_files:
        iou = 'segm' if '.segm.' in osp.basename(path) else 'bbox'
        ref = get_backend(reference).evaluate(gt, path, iou)
        for name in backends:
            start = time.perf_counter()
            res = get_backend(name).evaluate(gt, path, iou)
            seconds = time.perf_counter() - start
            d_sum = max(abs(res.summary[k] - ref.summary[k])
                        for k in SUMMARY_KEYS)
            a, b = res.per_category_ap, ref.per_category_ap
            same_nan = bool(np.array_equal(np.isnan(a), np.isnan(b)))
            ok = ~np.isnan(b)
            d_cat = float(np.max(np.abs(a[ok] - b[ok]))) if ok.any() else 0.
            rows.append(dict(file=path, iou_type=iou, backend=name,
                             AP=res.summary['AP'], max_abs_diff_summary=d_sum,
                             max_abs_diff_per_category=d_cat,
                             same_undefined_categories=same_nan,
                             seconds=seconds))
    return rows


def parity_markdown(rows: Sequence[dict]) -> str:
    """:func:`parity_rows` as a markdown table."""
    lines = ['| results file | IoU type | backend | AP | max diff summary | '
             'max diff per-category | same NaN categories | time (s) |',
             '|---|---|---|---:|---:|---:|---|---:|']
    for r in rows:
        lines.append(
            f"| {r['file']} | {r['iou_type']} | {r['backend']} | "
            f"{r['AP']:.4f} | {r['max_abs_diff_summary']:.1e} | "
            f"{r['max_abs_diff_per_category']:.1e} | "
            f"{r['same_undefined_categories']} | {r['seconds']:.2f} |")
    return '\n'.join(lines)
