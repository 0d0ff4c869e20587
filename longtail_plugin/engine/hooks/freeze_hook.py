"""Freeze parts of a detector by config, for decoupled fine-tuning.

Decoupled training (Kang et al., "Decoupling Representation and Classifier
for Long-Tailed Recognition", ICLR 2020) as used by Balanced Group Softmax
(Li et al., CVPR 2020) and by the LVIS Challenge 2020 winners (Tan et al.,
arXiv:2009.01559): stage 2 starts from a stage-1 checkpoint
(``load_from``), re-initialises the classifier and trains only part of the
model. BAGS trains ``roi_head.bbox_head.fc_cls`` alone; the LVIS 2020
recipe freezes the backbone only.

What "frozen" means here (our definition, checked by
``tests/engine/test_freeze_hook.py``): the module's parameters get
``requires_grad=False`` (no gradient is computed for them, so the optimizer,
its weight decay and momentum skip them and gradient clipping does not count
them), and every normalisation layer with running statistics inside it
(BatchNorm, SyncBN, InstanceNorm with ``track_running_stats``) is kept in
eval mode at every training iteration, so its running mean and variance do
not move. Other layers keep the model's train/eval mode (a detector reads
``self.training`` to choose its losses).

Why a hook and not MMEngine's ``paramwise_cfg.custom_keys`` with
``lr_mult=0, decay_mult=0``: that keeps the parameters but still updates
the BN running statistics, still spends the backward pass on the frozen
part, and lets the frozen gradients enter ``clip_grad``'s norm. For the
backbone alone MMDetection's own options are enough and need no hook:
``backbone=dict(frozen_stages=4, norm_eval=True)`` (ResNet: stem and all
four stages, BN in eval).

Config (BAGS stage 2: everything but the classifier frozen, the classifier
re-initialised)::

    custom_hooks = [dict(type='FreezeModulesHook',
                         trainable=['roi_head.bbox_head.fc_cls'],
                         reinit=['roi_head.bbox_head.fc_cls'])]
    find_unused_parameters = True   # only read under DistributedDataParallel

``frozen=[...]`` names the modules to freeze instead (e.g.
``['backbone', 'neck']``); at most one of ``frozen`` / ``trainable`` is
given (neither, with ``reinit``: only the re-initialisation). Names are
module paths of the detector (``model.named_modules()``); an unknown name
stops training with an error that lists the valid top-level names.

``reinit`` modules are re-initialised once, at the start of a fresh run
(``before_train`` at iteration 0, after ``load_from`` has loaded the
stage-1 weights; a resumed run keeps its trained weights), with
``reinit_cfg`` (default: weights N(0, 0.01), biases 0 - MMDetection's
``BBoxHead`` initialisation of ``fc_cls`` and the BAGS authors').

Under DistributedDataParallel the model is wrapped before any hook runs, so
DDP has registered the parameters frozen here; it then needs
``find_unused_parameters=True`` (DDP leaves the gradient of a parameter
unused on every rank untouched). The hook checks this and says so.
"""
from typing import Dict, List, Optional, Sequence

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import WEIGHT_INITIALIZERS
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm, _InstanceNorm

from mmdet.registry import HOOKS

__all__ = ['FreezeModulesHook', 'frozen_parameter_names', 'freeze_modules',
           'set_frozen_norms_eval', 'reinit_module']

_STATS_NORMS = (_BatchNorm, _InstanceNorm)


def _check_names(model: nn.Module, names: Sequence[str], key: str) -> None:
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules or n == '']
    if missing:
        top = sorted(n for n in modules if n and '.' not in n)
        raise ValueError(
            f'FreezeModulesHook: {key}={list(names)} names {missing}, which '
            f'the model does not have. Valid names are module paths such '
            f'as {top} or deeper (e.g. "roi_head.bbox_head.fc_cls").')


def _under(name: str, prefixes: Sequence[str]) -> bool:
    return any(name == p or name.startswith(p + '.') for p in prefixes)


def frozen_parameter_names(model: nn.Module,
                           frozen: Optional[Sequence[str]] = None,
                           trainable: Optional[Sequence[str]] = None
                           ) -> List[str]:
    """Names of the parameters that ``frozen`` / ``trainable`` freeze."""
    if (frozen is None) == (trainable is None):
        raise ValueError('FreezeModulesHook: give exactly one of `frozen` '
                         f'and `trainable` (got frozen={frozen}, '
                         f'trainable={trainable}).')
    names = list(frozen if frozen is not None else trainable)
    if not names:
        raise ValueError('FreezeModulesHook: `frozen` / `trainable` must name '
                         'at least one module.')
    _check_names(model, names,
                 'frozen' if frozen is not None else 'trainable')
    out = []
    for pname, _ in model.named_parameters():
        inside = _under(pname.rsplit('.', 1)[0], names)
        if inside == (frozen is not None):
            out.append(pname)
    return out


def _frozen_norms(model: nn.Module, frozen: Optional[Sequence[str]],
                  trainable: Optional[Sequence[str]]) -> List[nn.Module]:
    out = []
    for name, m in model.named_modules():
        if not isinstance(m, _STATS_NORMS):
            continue
        if frozen is not None and _under(name, frozen):
            out.append(m)
        elif trainable is not None and not _under(name, trainable):
            out.append(m)
    return out


def freeze_modules(model: nn.Module,
                   frozen: Optional[Sequence[str]] = None,
                   trainable: Optional[Sequence[str]] = None) -> List[str]:
    """Set ``requires_grad=False`` on the frozen parameters and put the
    frozen normalisation layers in eval mode. Returns the frozen names."""
    names = set(frozen_parameter_names(model, frozen, trainable))
    for pname, p in model.named_parameters():
        if pname in names:
            p.requires_grad_(False)
    set_frozen_norms_eval(model, frozen, trainable)
    return sorted(names)


def set_frozen_norms_eval(model: nn.Module,
                          frozen: Optional[Sequence[str]] = None,
                          trainable: Optional[Sequence[str]] = None) -> int:
    """Put the normalisation layers (with running statistics) of the frozen
    part in eval mode; returns how many."""
    norms = _frozen_norms(model, frozen, trainable)
    for m in norms:
        m.eval()
    return len(norms)


def reinit_module(module: nn.Module, init_cfg: Dict) -> None:
    """Apply an MMEngine weight initialiser (``type='Normal'``, ...) to
    every layer of ``module`` whatever its class (MMEngine's ``override``
    semantics: ``wholemodule=True``)."""
    init = WEIGHT_INITIALIZERS.build(dict(init_cfg))
    init.wholemodule = True
    init(module)


@HOOKS.register_module()
class FreezeModulesHook(Hook):
    """Freeze named modules (or all but named ones) for stage-2 training.

    Args:
        frozen: module paths to freeze.
        trainable: module paths to keep training; all else is frozen.
            At most one of ``frozen`` and ``trainable`` (neither: nothing
            is frozen, e.g. when the backbone's own ``frozen_stages`` does
            it and the hook only re-initialises the classifier).
        reinit: module paths re-initialised at the start of a fresh run.
        reinit_cfg: MMEngine ``init_cfg`` applied to each ``reinit`` module.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 frozen: Optional[Sequence[str]] = None,
                 trainable: Optional[Sequence[str]] = None,
                 reinit: Sequence[str] = (),
                 reinit_cfg: Optional[Dict] = None) -> None:
        if frozen is not None and trainable is not None:
            raise ValueError('FreezeModulesHook: give at most one of '
                             '`frozen` and `trainable`.')
        if frozen is None and trainable is None and not reinit:
            raise ValueError('FreezeModulesHook: nothing to do; give '
                             '`frozen`, `trainable` or `reinit`.')
        self.frozen = None if frozen is None else list(frozen)
        self.trainable = None if trainable is None else list(trainable)
        self.reinit = list(reinit)
        self.reinit_cfg = dict(reinit_cfg) if reinit_cfg is not None else \
            dict(type='Normal', std=0.01, bias=0.)
        self.frozen_names: List[str] = []
        # found once (the model's modules do not change while it trains)
        self._frozen_norm_layers: Optional[List[nn.Module]] = None

    @staticmethod
    def _model(runner) -> nn.Module:
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner) -> None:
        model = self._model(runner)
        if self.reinit:
            _check_names(model, self.reinit, 'reinit')
            if runner.iter == 0:
                modules = dict(model.named_modules())
                for name in self.reinit:
                    reinit_module(modules[name], self.reinit_cfg)
                runner.logger.info(
                    f'FreezeModulesHook: re-initialised {self.reinit} with '
                    f'{self.reinit_cfg}')
        if self.frozen is None and self.trainable is None:
            return  # re-initialisation only
        self.frozen_names = freeze_modules(model, self.frozen,
                                           self.trainable)
        wrapper = runner.model
        if is_model_wrapper(wrapper) and self.frozen_names and \
                hasattr(wrapper, 'find_unused_parameters') and \
                not wrapper.find_unused_parameters:
            raise ValueError(
                'FreezeModulesHook froze parameters of a model already '
                'wrapped in DistributedDataParallel, which expects gradients '
                'for them: set `find_unused_parameters = True` in the config '
                '(or model_wrapper_cfg=dict(type=\'MMDistributedDataParallel\''
                ', find_unused_parameters=True)).')
        n_all = sum(p.numel() for p in model.parameters())
        n_train = sum(p.numel() for p in model.parameters()
                      if p.requires_grad)
        runner.logger.info(
            f'FreezeModulesHook: {len(self.frozen_names)} parameter tensors '
            f'frozen; {n_train} of {n_all} parameters train.')

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        # the train loop calls model.train() before every iteration
        if self.frozen is None and self.trainable is None:
            return
        if self._frozen_norm_layers is None:
            self._frozen_norm_layers = _frozen_norms(
                self._model(runner), self.frozen, self.trainable)
        for m in self._frozen_norm_layers:
            m.eval()
