"""Give the training set's category statistics to the modules that need them.

A config names the training annotation file once, in
``train_dataloader.dataset`` (``data_root`` + ``ann_file``, as every
MMDetection config does). Modules that need the class frequencies of the
training set - EQL v1's tail indicator (Tan et al., CVPR 2020) - take them
from there when the run starts, so a user who moves the data changes one
place and no path is repeated in the loss config::

    default_hooks = dict(category_info=dict(type='TrainCategoryInfoHook'))

(``default_hooks`` is a dict, so child configs keep the entry; a
``custom_hooks`` list would be replaced by a child's.) In ``before_train``
the hook reads the file the runner's config names
(:func:`~longtail_plugin.utils.train_ann_file`) and calls
``bind_category_info(info)`` on every module of the model whose
``needs_category_info`` is true; a module given its own ``ann_file`` /
counts in its config keeps them. Nothing is read when no module asks (and
nothing at all in a test-only run, which never calls ``before_train``).
"""
from typing import Any, List

import torch.nn as nn
from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from ...utils.category_info import load_category_info, train_ann_file

__all__ = ['TrainCategoryInfoHook', 'modules_needing_category_info']


def modules_needing_category_info(model: nn.Module) -> List[tuple]:
    """``(path, module)`` of every module of ``model`` (model wrappers
    unwrapped) that asks for the training set's category statistics."""
    inner = getattr(model, 'module', None)
    if isinstance(inner, nn.Module):
        model = inner
    return [(n, m) for n, m in model.named_modules()
            if getattr(m, 'needs_category_info', False)
            and callable(getattr(m, 'bind_category_info', None))]


@HOOKS.register_module()
class TrainCategoryInfoHook(Hook):
    """Bind the training set's :class:`~longtail_plugin.utils.CategoryInfo`
    to the model's modules that ask for it (see the module doc)."""

    # before anything that could run the model
    priority = 'VERY_HIGH'

    def before_train(self, runner: Any) -> None:
        targets = modules_needing_category_info(runner.model)
        if not targets:
            return
        path = train_ann_file(runner)
        names = ', '.join(n or 'model' for n, _ in targets)
        if path is None:
            raise ValueError(
                f'TrainCategoryInfoHook: {names} need the class statistics '
                'of the training set but train_dataloader.dataset names no '
                '`ann_file`; set `ann_file` in their config instead')
        info = load_category_info(path)
        for _, module in targets:
            module.bind_category_info(info)
        runner.logger.info(f'TrainCategoryInfoHook: category statistics of '
                           f'{path} given to {names}')
