"""The LVIS metric end to end: ``LongTailLVISMetric.compute_metrics`` side
by side with MMDetection's own ``LVISMetric`` on the same predictions.

What a user's ``test.py`` or validation hook runs after the last batch:
each side is handed what its own ``process`` stores for the case's
MMDetection-shaped predictions (:mod:`.cases`; MMDetection's: arrays and a
RLE dict per mask, ours: arrays and one :class:`EncodedMasks` per image),
with the annotation file already loaded by the metric's constructor (both
sides alike, untimed), and ``compute_metrics`` is timed: for MMDetection
``results2json`` (a dict per detection, JSON files) and the official LVIS
API; for ours the in-memory path and the default backend. Each case runs
in a fresh process, which reports its wall time, its peak resident memory
(``VmHWM``, including torch and MMDetection, which both sides import) and
the AP of each IoU type, and its CPU time (all threads; on a machine
shared with other jobs the wall time grows with the load, the CPU time
much less). MMDetection's ``LVISMetric`` runs the LVIS API
directly, which needs numpy's removed ``np.float`` alias: that child, and
only it, sets ``np.float = float`` before evaluating.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

__all__ = ['E2EResult', 'run_e2e_case', 'run_e2e_subprocess',
           'e2e_markdown', 'SIDES']

#: ``ours``: LongTailLVISMetric (backend 'auto'); ``mmdet``: LVISMetric.
SIDES = ('ours', 'mmdet')


@dataclass
class E2EResult:
    """One timed ``compute_metrics``."""
    num_images: int
    metrics: str
    side: str
    seconds: Optional[float] = None
    cpu_seconds: Optional[float] = None
    peak_rss_mb: Optional[float] = None
    ap: Dict[str, float] = field(default_factory=dict)
    backend: str = ''
    skipped: str = ''


def run_e2e_case(gt_path: str, preds_path: str, metrics: str,
                 side: str) -> dict:
    """Build the metric, give it the stored predictions, time
    ``compute_metrics`` (in this process)."""
    import logging

    import numpy as np
    from mmengine.logging import MMLogger

    from .backend_timing import peak_rss_mb
    from .cases import load_predictions
    MMLogger.get_instance('mmengine', log_level='WARNING')
    logging.getLogger('lvis').setLevel(logging.WARNING)
    metric_list = metrics.split('+')
    masks = any(m != 'bbox' for m in metric_list)
    if side == 'mmdet':
        np.float = float  # the LVIS API's alias; this process only
        from mmdet.evaluation.metrics import LVISMetric
        metric = LVISMetric(ann_file=gt_path, metric=metric_list)
        preds = load_predictions(preds_path, masks=masks, encoded=False)
    else:
        from longtail_plugin.evaluation import LongTailLVISMetric
        metric = LongTailLVISMetric(ann_file=gt_path, metric=metric_list,
                                    per_category_file=None)
        preds = load_predictions(preds_path, masks=masks, encoded=True)
    with open(gt_path) as f:
        cats = sorted(json.load(f)['categories'], key=lambda c: c['id'])
    metric.dataset_meta = dict(classes=tuple(c['name'] for c in cats))
    results = [(dict(img_id=p['img_id']), p) for p in preds]
    start, cpu_start = time.perf_counter(), time.process_time()
    out = metric.compute_metrics(results)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    ap = {m: out.get(f'{m}_AP') for m in metric_list}
    backend = ','.join(f'{m}:{b}' for m, b in getattr(
        metric, 'last_backends', {}).items()) or 'lvis (official)'
    return dict(seconds=seconds, cpu_seconds=cpu_seconds,
                peak_rss_mb=peak_rss_mb(), ap=ap, backend=backend)


def run_e2e_subprocess(gt_path: str, preds_path: str, metrics: str,
                       side: str, num_images: int,
                       timeout: Optional[float] = None,
                       nice: int = 0) -> E2EResult:
    """:func:`run_e2e_case` in a fresh interpreter."""
    from .backend_timing import run_in_child
    data, skipped = run_in_child(__name__, 'run_e2e_case',
                                 [gt_path, preds_path, metrics, side],
                                 timeout, nice)
    out = E2EResult(num_images, metrics, side, skipped=skipped)
    if data is not None:
        out.seconds = data['seconds']
        out.cpu_seconds = data['cpu_seconds']
        out.peak_rss_mb = data['peak_rss_mb']
        out.ap = data['ap']
        out.backend = data['backend']
    return out


def e2e_markdown(rows: Sequence[E2EResult]) -> str:
    """Rows with the speed-up of ours over MMDetection's per case."""
    from .backend_timing import speedup_table
    return speedup_table(
        rows, 'images | metrics | metric',
        lambda r: (r.num_images, r.metrics),
        lambda r: (f'`LongTailLVISMetric` ({r.backend})' if r.side == 'ours'
                   else "mmdet's `LVISMetric`"),
        lambda r: r.side == 'mmdet',
        lambda r: ', '.join(f'{k} {v:.3f}' for k, v in r.ap.items()
                            if v is not None),
        extra=('CPU (s)', lambda r: f'{r.cpu_seconds:.2f}'))
