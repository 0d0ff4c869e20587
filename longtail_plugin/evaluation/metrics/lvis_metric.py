"""LVIS metric with frequency-group results and a per-category record.

:class:`LongTailLVISMetric` extends MMDetection's ``LVISMetric``:

* AP, AP50, AP75, APs/m/l and APr/APc/APf for ``bbox`` and ``segm`` by the
  LVIS protocol (Gupta et al., CVPR 2019), computed by a choice of
  *backends* (:mod:`longtail_plugin.evaluation.backends`): the official LVIS
  API (``backend='lvis'``, on numpy >= 1.24 through
  :mod:`longtail_plugin.compat`) or a compiled library that gives the same
  numbers to 1e-6 an order of magnitude faster (``backend='auto'``, the
  default, picks the fastest one installed);
* ``boundary``: Boundary AP of the masks (Cheng et al., "Boundary IoU:
  Improving Object-Centric Image Segmentation Evaluation", CVPR 2021): the
  LVIS protocol with ``min(mask IoU, boundary IoU)`` as the IoU, boundary
  width ``boundary_dilation_ratio`` (0.02) of the image diagonal;
* ``fixed_ap=True``: the fixed-AP protocol of Dave et al. ("Evaluating
  Large-Vocabulary Object Detectors: The Devil is in the Details", 2021):
  no per-image cap, the ``max_dets_per_cat`` (10,000) best detections of
  each category over the whole set; keys become ``{metric}_fixed_AP`` ...;
* per-category AP with each category's frequency group and training counts,
  written to ``per_category_ap.json`` in the run's log directory (the
  timestamped folder inside ``work_dir``) or beside ``outfile_prefix``, so
  plots and analyses never need to re-run the evaluation.

Detections reach the backend in memory (:mod:`.predictions`): ``process``
keeps each image's arrays and its masks as joined RLE strings, and
``compute_metrics`` hands the backend one column set per results kind -
no results JSON is written unless ``outfile_prefix`` or ``format_only``
asks for it (then only for the IoU types evaluated). Detections are
validated before any backend sees them (a label outside the classes, a
non-finite box or score, an image the annotation file does not have: an
error naming the image and the field, whichever the backend).

In distributed runs MMEngine gathers the processed results on rank 0 (as
for any ``BaseMetric``), which runs the evaluation once.

Groups and training counts come from the categories of the evaluation
annotation file (LVIS val files carry the *training* ``frequency`` and
``image_count``), or from ``train_ann_file`` when given.
"""
import json
import os
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.logging import MMLogger

from mmdet.evaluation.metrics import LVISMetric
from mmdet.registry import METRICS

from ..backends import (DEFAULT_DILATION_RATIO, DEFAULT_MAX_DETS,
                        DEFAULT_MAX_DETS_PER_CAT, SUMMARY_KEYS, Detections,
                        EvalBackend, paused_gc, per_category_ap,
                        resolve_backend, validate_detections)
from ...utils.category_info import (FREQUENCY_GROUPS, CategoryInfo,
                                    category_info_from_dataset,
                                    load_category_info)
from .predictions import (RESULT_KINDS, EncodedMasks,
                          predictions_to_detections, write_results_json)

__all__ = ['LongTailLVISMetric', 'per_category_ap']

#: IoU types this metric evaluates itself (``proposal`` goes to mmdet).
BOX_METRICS = ('bbox', 'segm', 'boundary')
_CONFIG_KEY = 'val_evaluator.backend'


@METRICS.register_module()
class LongTailLVISMetric(LVISMetric):
    """LVIS metric reporting r/c/f groups and a per-category JSON record.

    Args:
        metric: any of ``'bbox'``, ``'segm'``, ``'boundary'`` (Boundary AP
            of the masks; needs mask predictions), ``'proposal'``,
            ``'proposal_fast'``.
        backend: who computes the LVIS evaluation: ``'auto'`` (default: the
            fastest installed backend that supports the IoU type, see
            :data:`~longtail_plugin.evaluation.backends.PREFERENCE`),
            ``'lvis'`` (the official LVIS API), ``'faster_coco_eval'``,
            ``'hotcoco'`` or ``'vernier'``. All give the same numbers (to
            1e-6, tested). A named backend that lacks one of the IoU types
            of ``metric`` (hotcoco: ``boundary``) is a build-time error
            naming the backends that have it (as ``resolve_backend``).
        max_dets: detections kept per image (the LVIS protocol's 300).
        fixed_ap: use the fixed-AP protocol (Dave et al. 2021) instead: no
            per-image cap, ``max_dets_per_cat`` detections per category
            over the whole set. Keys become ``{metric}_fixed_{item}``.
        max_dets_per_cat: the fixed-AP cap (10,000 in the paper).
        boundary_dilation_ratio: boundary width of ``boundary`` as a
            fraction of the image diagonal (0.02, Cheng et al. 2021).
        train_ann_file: training annotation file to read groups and counts
            from; by default the evaluation file's categories are used.
        per_category_file: where to write the per-category record. A bare
            file name goes into the run's log directory. ``None`` disables
            it. Defaults to ``'per_category_ap.json'``.
        **kwargs: everything :class:`mmdet.evaluation.LVISMetric` takes.

    Raises:
        KeyError: ``backend`` is not a known backend name.
        BackendUnavailableError: the named backend's package is missing (the
            message names ``val_evaluator.backend`` and the pip package).
        ValueError: the named backend lacks an IoU type of ``metric``.
    """

    default_prefix: Optional[str] = 'lvis'

    def __init__(self,
                 *args,
                 metric: Union[str, List[str]] = 'bbox',
                 backend: str = 'auto',
                 max_dets: int = DEFAULT_MAX_DETS,
                 fixed_ap: bool = False,
                 max_dets_per_cat: int = DEFAULT_MAX_DETS_PER_CAT,
                 boundary_dilation_ratio: float = DEFAULT_DILATION_RATIO,
                 train_ann_file: Optional[str] = None,
                 per_category_file: Optional[str] = 'per_category_ap.json',
                 **kwargs) -> None:
        metrics = list(metric) if isinstance(metric, (list, tuple)) \
            else [metric]
        # mmdet's LVISMetric does not know 'boundary': check the rest there.
        mmdet_metrics = [m for m in metrics if m != 'boundary'] or ['bbox']
        super().__init__(*args, metric=mmdet_metrics, **kwargs)
        self.metrics = metrics
        self.backend = backend
        for m in metrics:  # fail at build time
            if m in BOX_METRICS:
                self._backend_for(m)
        self.max_dets = max_dets
        self.fixed_ap = fixed_ap
        self.max_dets_per_cat = max_dets_per_cat
        self.boundary_dilation_ratio = boundary_dilation_ratio
        self.train_ann_file = train_ann_file
        self.per_category_file = per_category_file
        self.last_per_category: Optional[dict] = None
        self.last_backends: Dict[str, str] = {}

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

    def _backend_for(self, metric: str) -> EvalBackend:
        """The backend that evaluates ``metric`` (see ``backend``)."""
        return resolve_backend(self.backend, metric, _CONFIG_KEY)

    # ------------------------------------------------------------------
    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep each image's predictions compactly for ``compute_metrics``.

        As MMDetection's ``LVISMetric.process`` (arrays of boxes, scores,
        labels, mask scores; the image size and, without ``ann_file``, the
        ground truth), except the masks: one :class:`.EncodedMasks` per
        image (``rle_masks``) instead of a dict per detection.
        """
        for data_sample in data_samples:
            pred = data_sample['pred_instances']
            result = dict(img_id=data_sample['img_id'])
            for key in ('bboxes', 'scores', 'labels', 'mask_scores'):
                if key in pred:
                    value = pred[key]
                    result[key] = value.detach().cpu().numpy() if hasattr(
                        value, 'detach') else np.asarray(value)
            if 'masks' in pred:
                result['rle_masks'] = EncodedMasks.from_masks(pred['masks'])
            gt = dict(width=data_sample['ori_shape'][1],
                      height=data_sample['ori_shape'][0],
                      img_id=data_sample['img_id'])
            if self._lvis_api is None:
                assert 'instances' in data_sample, \
                    'ground truth is required for evaluation when ' \
                    '`ann_file` is not provided'
                gt['anns'] = data_sample['instances']
            self.results.append((gt, result))

    def _key(self, metric: str, item: str) -> str:
        return f'{metric}_fixed_{item}' if self.fixed_ap else \
            f'{metric}_{item}'

    # ------------------------------------------------------------------
    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Evaluate ``bbox``/``segm``/``boundary``; delegate proposals.

        Returns:
            ``{metric}_{AP,AP50,AP75,APs,APm,APl,APr,APc,APf}`` (with
            ``fixed_ap``: ``{metric}_fixed_{...}``); AP values are rounded to
            3 decimals as in MMDetection.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        box_metrics = [m for m in self.metrics if m in BOX_METRICS]
        other = [m for m in self.metrics if m not in BOX_METRICS]
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
            gt = self._lvis_api.dataset
            kinds = sorted({RESULT_KINDS[m] for m in box_metrics})
            with paused_gc():
                dets: Dict[str, Detections] = {
                    k: predictions_to_detections(preds, self.cat_ids, k)
                    for k in kinds}
                if self.outfile_prefix is not None:
                    for kind, d in dets.items():
                        validate_detections(d, gt, kind)
                        path = write_results_json(
                            d, f'{outfile_prefix}.{kind}.json', kind)
                        logger.info(f'{kind} results written to {path}')
            if self.format_only:
                logger.info(f'results are saved in {osp.dirname(outfile_prefix)}')
                return eval_results

            per_cat: Dict[str, np.ndarray] = {}
            for metric in box_metrics:
                logger.info(f'Evaluating {metric}...')
                summary, cat_ap = self._evaluate_one(
                    metric, dets[RESULT_KINDS[metric]])
                if summary is None:
                    logger.info('The testing results of the whole dataset '
                                'is empty.')
                    for k in self._items():
                        eval_results[self._key(metric, k)] = 0.0
                    continue
                for k in self._items():
                    eval_results[self._key(metric, k)] = float(
                        f'{float(summary[k]):.3f}')
                per_cat[metric] = cat_ap
            self._write_per_category(per_cat, eval_results, outfile_prefix)
        finally:
            if tmp_dir is not None:
                tmp_dir.cleanup()
        return eval_results

    def _items(self) -> Sequence[str]:
        return self.metric_items or SUMMARY_KEYS

    def _evaluate_one(
            self, metric: str, dets: Detections
    ) -> Tuple[Optional[Dict[str, float]], Optional[np.ndarray]]:
        """Evaluate one IoU type on the chosen backend.

        Returns:
            ``(summary, per-category AP in self.cat_ids order)``, or
            ``(None, None)`` when there is no detection at all.
        """
        logger = MMLogger.get_current_instance()
        backend = self._backend_for(metric)
        self.last_backends[metric] = backend.name
        result = backend.evaluate(
            self._lvis_api.dataset, dets, iou_type=metric,
            img_ids=self.img_ids,
            max_dets=-1 if self.fixed_ap else self.max_dets,
            max_dets_per_cat=self.max_dets_per_cat if self.fixed_ap
            else None,
            dilation_ratio=self.boundary_dilation_ratio)
        if result is None:
            return None, None
        protocol = (f'fixed AP, {self.max_dets_per_cat} detections per '
                    'category' if self.fixed_ap else
                    f'{self.max_dets} detections per image')
        logger.info(f'{metric} ({protocol}; backend {backend.name}): ' +
                    ' '.join(f'{k}={result.summary[k]:.3f}'
                             for k in SUMMARY_KEYS))
        ap_of = dict(zip(result.cat_ids, result.per_category_ap))
        cat_ap = np.array([ap_of.get(int(c), np.nan) for c in self.cat_ids],
                          dtype=float)
        return result.summary, cat_ap

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
                rec[self._key(metric, 'AP')] = None if np.isnan(
                    ap[k]) else float(ap[k])
            records.append(rec)
        groups = {}
        for g in FREQUENCY_GROUPS:
            members = [r for r in records if r.get('group') == g]
            groups[g] = dict(num_categories=len(members))
            for metric in per_cat:
                key = self._key(metric, 'AP')
                aps = [r[key] for r in members if r[key] is not None]
                groups[g][self._key(metric, 'mean_AP')] = float(
                    np.mean(aps)) if aps else None
        evaluation = dict(
            backends={m: self.last_backends.get(m) for m in per_cat},
            protocol='fixed_ap' if self.fixed_ap else 'standard',
            max_dets_per_image=None if self.fixed_ap else self.max_dets,
            max_dets_per_category=self.max_dets_per_cat
            if self.fixed_ap else None)
        if 'boundary' in per_cat:
            evaluation['boundary_dilation_ratio'] = \
                self.boundary_dilation_ratio
        self.last_per_category = dict(
            summary=dict(summary), groups=groups, categories=records,
            evaluation=evaluation)
        path = self._per_category_path(outfile_prefix)
        if path is None:
            return
        os.makedirs(osp.dirname(path) or '.', exist_ok=True)
        with open(path, 'w') as f:
            json.dump(self.last_per_category, f, indent=1)
        MMLogger.get_current_instance().info(
            f'per-category AP written to {path}')
