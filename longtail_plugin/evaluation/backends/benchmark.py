"""Timing of the LVIS evaluation backends at LVIS scale (logic of
``tools/benchmark_eval.py``).

For each size, an LVIS v1 val-shaped ground truth and 300 detections per
image are generated once (:func:`.synthetic.lvis_scale_case`) and written as
JSON, as ``LongTailLVISMetric`` writes them. Each (size, IoU type, backend)
case then runs in a fresh Python process, which loads the ground truth
(untimed, as the metric has it in memory), evaluates the results file
(timed: loading the results, caps, matching, accumulation, summary), and
reports its wall time and its peak resident memory (``VmHWM``; the
process imports the backends package and its libraries only, not torch).
"""
from __future__ import annotations

import json
import os
import os.path as osp
import resource
import sys
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

__all__ = ['CaseResult', 'prepare_case', 'run_case', 'run_case_subprocess',
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


def prepare_case(cache_dir: str, num_images: int, iou_type: str,
                 dets_per_image: int = 300, num_categories: int = 1203,
                 seed: int = 0) -> Dict[str, str]:
    """Write (once) the ground truth and results files of a case."""
    from .synthetic import detections_from_gt, lvis_scale_case
    os.makedirs(cache_dir, exist_ok=True)
    stem = osp.join(cache_dir, f'n{num_images}_k{num_categories}_s{seed}')
    gt_path = f'{stem}.gt.json'
    masks = iou_type != 'bbox'
    res_path = f'{stem}_d{dets_per_image}.{"segm" if masks else "bbox"}.json'
    gt = None
    if not osp.exists(gt_path):
        gt = lvis_scale_case(num_images, num_categories=num_categories,
                             seed=seed)
        _dump(gt, gt_path)
    if not osp.exists(res_path):
        if gt is None:
            with open(gt_path) as f:
                gt = json.load(f)
        dets = detections_from_gt(gt, dets_per_image, seed=seed + 1,
                                  with_masks=masks)
        _dump(dets, res_path)
    return dict(gt=gt_path, results=res_path)


def _dump(obj, path: str) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def _peak_rss_mb() -> float:
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


def run_case(gt_path: str, results_path: str, iou_type: str,
             backend: str) -> Dict[str, float]:
    """Evaluate in this process; returns seconds, peak RSS, AP, count."""
    from . import get_backend
    with open(gt_path) as f:
        gt = json.load(f)
    impl = get_backend(backend)
    start = time.perf_counter()
    result = impl.evaluate(gt, results_path, iou_type)
    seconds = time.perf_counter() - start
    return dict(seconds=seconds, peak_rss_mb=_peak_rss_mb(),
                ap=result.summary['AP'] if result else None)


def run_case_subprocess(gt_path: str, results_path: str, iou_type: str,
                        backend: str, num_images: int,
                        timeout: Optional[float] = None,
                        nice: int = 0) -> CaseResult:
    """:func:`run_case` in a fresh interpreter (its own peak memory)."""
    # The child imports the backends package only: the plugin's own
    # __init__ (torch, mmdet) would add some 500 MiB to every process.
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    code = ('import json, os, sys, types\n'
            f'root = {root!r}\n'
            "for name, sub in (('longtail_plugin', ''), "
            "('longtail_plugin.evaluation', 'evaluation'), "
            "('longtail_plugin.compat', 'compat')):\n"
            '    m = types.ModuleType(name)\n'
            '    m.__path__ = [os.path.join(root, sub)]\n'
            '    sys.modules[name] = m\n'
            'from longtail_plugin.evaluation.backends.benchmark import '
            'run_case\n'
            'print("RESULT " + json.dumps(run_case(*sys.argv[1:5])))')
    cmd = [sys.executable, '-c', code, gt_path, results_path, iou_type,
           backend]
    out = CaseResult(num_images, iou_type, backend)
    from ...utils.child_process import run_json_child
    child = run_json_child(
        cmd, 'RESULT ', timeout=timeout, tail_lines=1,
        preexec_fn=(lambda: os.nice(nice)) if nice else None)
    if child.timed_out:
        out.skipped = f'over the {timeout:.0f} s limit'
        return out
    if child.returncode != 0 or child.data is None:
        out.skipped = (f'failed: {child.tail[0]}' if child.tail else
                       f'failed: {child.returncode}')
        return out
    data = child.data
    out.seconds = data['seconds']
    out.peak_rss_mb = data['peak_rss_mb']
    out.ap = data['ap']
    return out


def markdown_table(rows: Sequence[CaseResult],
                   reference: str = 'lvis') -> str:
    """Rows side by side with the speed-up over ``reference``."""
    ref = {(r.num_images, r.iou_type): r.seconds for r in rows
           if r.backend == reference and r.seconds}
    lines = ['| images | IoU type | backend | time (s) | speed-up vs '
             f'{reference} | peak RSS (MiB) | AP |',
             '|---:|---|---|---:|---:|---:|---:|']
    for r in rows:
        if r.seconds is None:
            lines.append(f'| {r.num_images} | {r.iou_type} | {r.backend} '
                         f'| skipped: {r.skipped} | | | |')
            continue
        base = ref.get((r.num_images, r.iou_type))
        speed = f'{base / r.seconds:.1f}x' if base else 'n/a'
        ap = '' if r.ap is None else f'{r.ap:.4f}'
        lines.append(f'| {r.num_images} | {r.iou_type} | {r.backend} | '
                     f'{r.seconds:.2f} | {speed} | {r.peak_rss_mb:.0f} | '
                     f'{ap} |')
    return '\n'.join(lines)


def as_dicts(rows: Sequence[CaseResult]) -> List[dict]:
    """Rows as plain dicts (for a JSON record)."""
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

    from . import SUMMARY_KEYS, get_backend
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
