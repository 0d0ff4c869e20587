"""Multi-process (gloo) training on CPU through MMEngine 0.10's runner.

``python -m torch.distributed.run --nproc_per_node 2 tools/train.py CONFIG
--launcher pytorch`` stops before the first iteration on a machine without
CUDA, for two reasons in MMEngine 0.10.7 (the newest release):

1. ``mmengine.dist.utils._init_dist_pytorch`` calls
   ``torch.cuda.set_device(LOCAL_RANK)`` before ``init_process_group``
   whatever the backend: ``AttributeError: module 'torch._C' has no
   attribute '_cuda_setDevice'`` on a CPU build of torch (a CUDA build
   without a usable GPU fails there too).
2. ``Runner.wrap_model`` gives ``MMDistributedDataParallel``
   ``device_ids=[LOCAL_RANK]``, which ``DistributedDataParallel`` refuses for
   a module on the CPU.

(2) is configuration: ``model_wrapper_cfg`` may set ``device_ids=None``
(MMEngine passes its value only as a default), which is right on CPU and on
a GPU alike. ``configs/_base_/cpu_ddp.py`` holds it. (1) cannot be
configured, so :class:`CPUDistributedRunner`, a runner chosen by
``runner_type`` in the config, initialises the gloo process group in its
``setup_env`` itself, exactly as ``_init_dist_pytorch`` would minus the
``set_device`` call; MMEngine's own ``setup_env`` then finds the group
initialised and continues unchanged. Nothing of MMEngine is patched, and
when CUDA is available the runner defers to MMEngine entirely.

Unnecessary once an MMEngine release skips ``torch.cuda.set_device`` without
CUDA (not the case up to 0.10.7, March 2025, the newest on PyPI).
"""
import datetime
import os
from typing import Dict, Optional

import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.dist import is_distributed
from mmengine.runner import Runner

from mmdet.registry import RUNNERS

__all__ = ['CPUDistributedRunner', 'init_cpu_process_group',
           'check_cpu_model_wrapper_cfg']

_HINT = ('add configs/_base_/cpu_ddp.py to the config\'s _base_ (or see '
         'README "Multi-process training")')


def init_cpu_process_group(launcher: str, dist_cfg: Dict) -> None:
    """Initialise ``torch.distributed`` for CPU training without CUDA calls.

    Does what MMEngine's ``init_dist`` does for the ``pytorch`` launcher
    (environment rendezvous from ``torch.distributed.run``, ``timeout`` in
    seconds, ``spawn`` as the default start method) except
    ``torch.cuda.set_device``.

    Args:
        launcher: the runner's launcher; only ``'pytorch'`` (i.e.
            ``torch.distributed.run`` / ``torchrun``) is supported on CPU.
        dist_cfg: ``env_cfg.dist_cfg`` of the config: ``backend`` must be
            ``'gloo'``; ``timeout`` (seconds) and other keys are passed to
            ``init_process_group`` as MMEngine passes them.
    """
    if launcher != 'pytorch':
        raise ValueError(
            f'CPUDistributedRunner: launcher {launcher!r} is not supported '
            'without CUDA; start the processes with python -m '
            'torch.distributed.run ... --launcher pytorch')
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise RuntimeError(
            f'CPUDistributedRunner: environment variable(s) {missing} not '
            'set; start the processes with python -m torch.distributed.run')
    kwargs = dict(dist_cfg)
    backend = kwargs.pop('backend', 'nccl')
    if backend != 'gloo':
        raise ValueError(
            f"env_cfg.dist_cfg.backend is {backend!r}, but training on CPU "
            "needs 'gloo' (set env_cfg = dict(dist_cfg=dict(backend='gloo')))")
    init_backend = kwargs.pop('init_backend', 'torch')
    if init_backend != 'torch':
        raise ValueError(
            f'env_cfg.dist_cfg.init_backend is {init_backend!r}; only '
            "'torch' is supported on CPU")
    timeout = kwargs.get('timeout')
    if timeout is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')
    torch_dist.init_process_group(backend='gloo', **kwargs)


def check_cpu_model_wrapper_cfg(model_wrapper_cfg: Optional[Dict]) -> None:
    """Refuse a wrapper config that would hand a CPU module device ids.

    MMEngine 0.10 passes ``device_ids=[LOCAL_RANK]`` to a
    ``DistributedDataParallel`` wrapper unless ``model_wrapper_cfg`` sets
    ``device_ids`` itself.
    """
    if model_wrapper_cfg is None:
        raise ValueError(
            'model_wrapper_cfg is not set: MMEngine 0.10 would wrap the CPU '
            'model with device_ids=[LOCAL_RANK], which '
            'DistributedDataParallel refuses; set model_wrapper_cfg = '
            "dict(type='MMDistributedDataParallel', device_ids=None, "
            f'broadcast_buffers=False); {_HINT}')
    wrapper = model_wrapper_cfg.get('type', 'MMDistributedDataParallel')
    from mmengine.registry import MODEL_WRAPPERS
    cls = MODEL_WRAPPERS.get(wrapper) if isinstance(wrapper, str) else wrapper
    if cls is None:
        raise ValueError(
            f'model_wrapper_cfg.type {wrapper!r} is not a registered model '
            'wrapper')
    ddp = torch.nn.parallel.DistributedDataParallel
    if issubclass(cls, ddp) and model_wrapper_cfg.get('device_ids',
                                                      []) is not None:
        raise ValueError(
            'model_wrapper_cfg.device_ids must be None for training on CPU '
            f"(got {model_wrapper_cfg.get('device_ids', '<unset>')!r}; "
            f'MMEngine 0.10 would default it to [LOCAL_RANK]); {_HINT}')


@RUNNERS.register_module()
class CPUDistributedRunner(Runner):
    """MMEngine's ``Runner``, able to start on CPU with ``--launcher pytorch``.

    Select it with ``runner_type = 'mmdet.CPUDistributedRunner'``
    (``configs/_base_/cpu_ddp.py``; the scope is named because
    MMDetection's ``tools/train.py`` builds a custom runner from MMEngine's
    root registry). Single-process runs and runs on
    CUDA machines go through MMEngine unchanged; see the module docstring
    for what differs on a multi-process CPU run.
    """

    _owns_cpu_group = False  # set when setup_env starts the CPU group

    def setup_env(self, env_cfg: Dict) -> None:
        if (self.distributed and not is_distributed()
                and not torch.cuda.is_available()):
            check_cpu_model_wrapper_cfg(self.cfg.get('model_wrapper_cfg'))
            init_cpu_process_group(self.launcher,
                                   dict(env_cfg.get('dist_cfg', {})))
            self._owns_cpu_group = True
        super().setup_env(env_cfg)

    def train(self):
        """MMEngine's training, then, on a multi-process CPU run that this
        runner started, all ranks meet and the gloo process group is torn
        down before the interpreter exits. Left to interpreter shutdown, a
        rank's gloo threads could be destroyed while still joinable and the
        process end with ``terminate called without an active exception``
        (exit code -6) after a finished training, failing the launcher."""
        model = super().train()
        if self._owns_cpu_group and torch_dist.is_initialized():
            torch_dist.barrier()
            torch_dist.destroy_process_group()
        return model
