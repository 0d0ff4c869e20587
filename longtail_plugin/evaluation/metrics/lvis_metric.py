"""LVIS metric with frequency-group results and a per-category record.

:class:`LongTailLVISMetric` extends MMDetection's ``LVISMetric``:

* AP, AP50, AP75, APs/m/l and APr/APc/APf for ``bbox`` and ``segm`` from the
  official LVIS API (Gupta et al., CVPR 2019), on numpy >= 1.24 (the fix is
  confined to the evaluation call, see :mod:`longtail_plugin.compat`);
* per-category AP with each category's frequency group and training counts,
  written to ``per_category_ap.json`` in the run's log directory (the
  timestamped folder inside ``work_dir``) or beside ``outfile_prefix``, so
  plots and analyses never need to re-run the evaluation.

Groups and training counts come from the categories of the evaluation
annotation file (LVIS val files carry the *training* ``frequency`` and
``image_count``), or from ``train_ann_file`` when given.
"""
import json
import os
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.logging import MMLogger

from mmdet.evaluation.metrics import LVISMetric
from mmdet.registry import METRICS

from ...compat.lvis_numpy import LVISEvalCompat
from ...utils.category_info import (FREQUENCY_GROUPS, CategoryInfo,
                                    category_info_from_dataset,
                                    load_category_info)

__all__ = ['LongTailLVISMetric', 'per_category_ap']

SUMMARY_KEYS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc',
                'APf')


def per_category_ap(precision: np.ndarray) -> np.ndarray:
    """AP of each category from an LVIS/COCO ``precision`` array.

    Args:
        precision: array of shape (T, R, K, A) (IoU thresholds, recall
            thresholds, categories, area ranges) where -1 marks "no ground
            truth"; the area range "all" is index 0.

    Returns:
        Array of K APs, NaN where a category has no ground truth.
    """
    p = precision[:, :, :, 0]
    valid = p > -1
    count = valid.sum(axis=(0, 1))
    total = np.where(valid, p, 0).sum(axis=(0, 1))
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


@METRICS.register_module()
class LongTailLVISMetric(LVISMetric):
    """LVIS metric reporting r/c/f groups and a per-category JSON record.

    Args:
        train_ann_file: training annotation file to read groups and counts
            from; by default the evaluation file's categories are used.
        per_category_file: where to write the per-category record. A bare
            file name goes into the run's log directory. ``None`` disables
            it. Defaults to ``'per_category_ap.json'``.
        **kwargs: everything :class:`mmdet.evaluation.LVISMetric` takes.
    """

    default_prefix: Optional[str] = 'lvis'

    def __init__(self,
                 *args,
                 train_ann_file: Optional[str] = None,
                 per_category_file: Optional[str] = 'per_category_ap.json',
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.train_ann_file = train_ann_file
        self.per_category_file = per_category_file
        self.last_per_category: Optional[dict] = None

    # ------------------------------------------------------------------
    def _category_info(self) -> Optional[CategoryInfo]:
        path = self.train_ann_file
        if path is not None:
            return load_category_info(path)
        if self._lvis_api is None:
            return None
        return category_info_from_dataset(self._lvis_api.dataset)

    def _per_category_path(self, outfile_prefix: Optional[str]) -> \
            Optional[str]:
        if self.per_category_file is None:
            return None
        if osp.isabs(self.per_category_file) or osp.dirname(
                self.per_category_file):
            return self.per_category_file
        log_file = getattr(MMLogger.get_current_instance(), 'log_file', None)
        if log_file:
            return osp.join(osp.dirname(log_file), self.per_category_file)
        if outfile_prefix is not None:
            return osp.join(
                osp.dirname(outfile_prefix) or '.', self.per_category_file)
        return None

    # ------------------------------------------------------------------
    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Evaluate ``bbox``/``segm`` with the LVIS API; delegate proposals.

        Returns:
            ``{metric}_{AP,AP50,AP75,APs,APm,APl,APr,APc,APf}``; AP values
            are rounded to 3 decimals as in MMDetection.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        box_metrics = [m for m in self.metrics if m in ('bbox', 'segm')]
        other = [m for m in self.metrics if m not in ('bbox', 'segm')]
        eval_results: Dict[str, float] = OrderedDict()
        if other:
            metrics = self.metrics
            self.metrics = other
            try:
                eval_results.update(super().compute_metrics(results))
            finally:
                self.metrics = metrics
        if not box_metrics:
            return eval_results

        gts, preds = zip(*results)
        tmp_dir = None
        if self.outfile_prefix is None:
            tmp_dir = tempfile.TemporaryDirectory()
            outfile_prefix = osp.join(tmp_dir.name, 'results')
        else:
            outfile_prefix = self.outfile_prefix
        try:
            if self._lvis_api is None:
                from lvis import LVIS
                logger.info('Converting ground truth to coco format...')
                self._lvis_api = LVIS(
                    self.gt_to_coco_json(
                        gt_dicts=gts, outfile_prefix=outfile_prefix))
            if self.cat_ids is None:
                self.cat_ids = self._lvis_api.get_cat_ids()
            if self.img_ids is None:
                self.img_ids = self._lvis_api.get_img_ids()
            saved_metrics = self.metrics
            self.metrics = box_metrics
            try:
                result_files = self.results2json(preds, outfile_prefix)
            finally:
                self.metrics = saved_metrics
            if self.format_only:
                logger.info(f'results are saved in {osp.dirname(outfile_prefix)}')
                return eval_results

            per_cat: Dict[str, np.ndarray] = {}
            for metric in box_metrics:
                logger.info(f'Evaluating {metric}...')
                summary, cat_ap = self._evaluate_one(metric,
                                                     result_files[metric])
                if summary is None:
                    logger.info('The testing results of the whole dataset '
                                'is empty.')
                    for k in self._items():
                        eval_results[f'{metric}_{k}'] = 0.0
                    continue
                for k in self._items():
                    eval_results[f'{metric}_{k}'] = float(
                        f'{float(summary[k]):.3f}')
                per_cat[metric] = cat_ap
            self._write_per_category(per_cat, eval_results, outfile_prefix)
        finally:
            if tmp_dir is not None:
                tmp_dir.cleanup()
        return eval_results

    def _items(self) -> Sequence[str]:
        return self.metric_items or SUMMARY_KEYS

    def _evaluate_one(self, metric: str, result_file: str):
        from lvis import LVISResults
        try:
            lvis_dt = LVISResults(self._lvis_api, result_file)
        except IndexError:  # the LVIS API's answer to an empty result file
            return None, None
        lvis_eval = LVISEvalCompat(self._lvis_api, lvis_dt, metric)
        lvis_eval.params.imgIds = self.img_ids
        lvis_eval.evaluate()
        lvis_eval.accumulate()
        lvis_eval.summarize()
        lvis_eval.print_results()
        cat_ap = per_category_ap(lvis_eval.eval['precision'])
        return lvis_eval.get_results(), cat_ap

    def _write_per_category(self, per_cat: Dict[str, np.ndarray],
                            summary: Dict[str, float],
                            outfile_prefix: Optional[str]) -> None:
        info = self._category_info()
        cats = {c['id']: c for c in self._lvis_api.dataset['categories']}
        index = {cid: i for i, cid in enumerate(info.cat_ids)} \
            if info is not None else {}
        records: List[dict] = []
        for k, cat_id in enumerate(self.cat_ids):
            rec = dict(id=int(cat_id), name=cats[cat_id].get('name', ''))
            if cat_id in index:
                i = index[cat_id]
                rec.update(
                    group=info.groups[i],
                    train_image_count=int(info.image_count[i]),
                    train_instance_count=int(info.instance_count[i]))
            for metric, ap in per_cat.items():
                rec[f'{metric}_AP'] = None if np.isnan(ap[k]) else float(
                    ap[k])
            records.append(rec)
        groups = {}
        for g in FREQUENCY_GROUPS:
            members = [r for r in records if r.get('group') == g]
            groups[g] = dict(num_categories=len(members))
            for metric in per_cat:
                aps = [r[f'{metric}_AP'] for r in members
                       if r[f'{metric}_AP'] is not None]
                groups[g][f'{metric}_mean_AP'] = float(
                    np.mean(aps)) if aps else None
        self.last_per_category = dict(
            summary=dict(summary), groups=groups, categories=records)
        path = self._per_category_path(outfile_prefix)
        if path is None:
            return
        os.makedirs(osp.dirname(path) or '.', exist_ok=True)
        with open(path, 'w') as f:
            json.dump(self.last_per_category, f, indent=1)
        MMLogger.get_current_instance().info(
            f'per-category AP written to {path}')
