"""Log the gradient statistics of the equalization losses during training.

Every ``interval`` training iterations :class:`GradRatioLoggerHook` finds
every :class:`~longtail_plugin.utils.GradientStatistics` in the model and
writes, per LVIS frequency group (r / c / f, read from the training
annotation file), the mean gradient ratio ``g_j`` - and, when the owning
loss exposes them through ``per_class_scalars()``, the mean of its
per-class factors (EQL v2: ``pos_weight`` / ``neg_weight``) - to the message
hub as ``train/grad_ratio_r`` etc. MMEngine's ``LoggerHook`` then prints them
in the text log and sends them to the visualiser backends (TensorBoard,...).

Config::

    custom_hooks = [dict(type='GradRatioLoggerHook')]

``interval`` defaults to the logger's interval; ``ann_file`` (+ ``data_root``)
defaults to the training dataset's, found by
:func:`~longtail_plugin.utils.train_ann_file` (the function
``TrainCategoryInfoHook`` uses: the config names the file once, in
``train_dataloader.dataset``).
"""
from typing import Any, Dict, Optional

import numpy as np
from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from ...utils.category_info import load_category_info, train_ann_file
from ...utils.grad_ratio import model_grad_scalars

__all__ = ['GradRatioLoggerHook']

DATA_BATCH = Optional[Any]


@HOOKS.register_module()
class GradRatioLoggerHook(Hook):
    """Log per-frequency-group gradient ratios of the equalization losses.

    Args:
        interval: logging interval in iterations; ``None`` uses the
            ``LoggerHook`` interval of the config (50 when absent).
        ann_file: training annotation file giving the frequency groups;
            ``None`` takes the training dataset's.
        data_root: data root for a relative ``ann_file``.
    """

    # before LoggerHook (BELOW_NORMAL), so the values are in the same line
    priority = 'NORMAL'

    def __init__(self,
                 interval: Optional[int] = None,
                 ann_file: Optional[str] = None,
                 data_root: Optional[str] = None) -> None:
        self.interval = interval
        self.ann_file = ann_file
        self.data_root = data_root
        self._groups: Optional[Dict[str, np.ndarray]] = None
        self._resolved = False
        self._warned = set()

    def _logger_interval(self, runner) -> int:
        cfg = getattr(runner, 'cfg', None) or {}
        logger = (cfg.get('default_hooks', None) or {}).get('logger', None)
        interval = logger.get('interval') if isinstance(logger,
                                                        dict) else None
        return int(interval) if interval else 50

    def _resolve(self, runner) -> None:
        self._resolved = True
        if self.interval is None:
            self.interval = self._logger_interval(runner)
        ann_file, data_root = self.ann_file, self.data_root
        if ann_file is None:
            ann_file, data_root = train_ann_file(runner), None
        if ann_file is None:
            self._warn(runner, 'GradRatioLoggerHook: no training annotation '
                       'file found; logging the mean ratio over all classes')
            return
        try:
            info = load_category_info(ann_file, data_root)
        except (OSError, ValueError) as e:
            self._warn(runner, f'GradRatioLoggerHook: {e}; logging the mean '
                       'ratio over all classes')
            return
        self._groups = info.group_indices()

    def _warn(self, runner, msg: str) -> None:
        if msg in self._warned:
            return
        self._warned.add(msg)
        logger = getattr(runner, 'logger', None)
        if logger is not None:
            logger.warning(msg)

    def before_train(self, runner) -> None:
        self._resolve(runner)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        if not self._resolved:
            self._resolve(runner)
        if not self.every_n_train_iters(runner, self.interval):
            return
        scalars, notes = model_grad_scalars(runner.model, self._groups)
        for note in notes:
            self._warn(runner, f'GradRatioLoggerHook: {note}')
        for key, value in scalars.items():
            runner.message_hub.update_scalar(f'train/{key}', value)
