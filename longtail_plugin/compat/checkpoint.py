"""MMEngine checkpoints under torch >= 2.6's weights-only loading.

torch 2.6 made ``torch.load(..., weights_only=True)`` the default. MMEngine
0.10.7 checkpoints carry, beside the tensors, the message hub's
``HistoryBuffer`` objects (holding numpy arrays), numpy scalars and dtypes,
and the schedulers' ``collections.Counter`` milestones, so ``tools/test.py``,
``--resume`` and ``load_from`` stop with "Weights only load failed".

The fix allow-lists exactly those classes with torch's own API
(``torch.serialization.add_safe_globals``): weights-only loading stays on
and a checkpoint that holds anything else is still refused. It is applied
at one named call site, :func:`register_mmengine_safe_globals`, which
``longtail_plugin/__init__.py`` calls explicitly (``custom_imports`` imports
the package before MMEngine loads any checkpoint); nothing is patched.
:func:`mmengine_safe_globals` does the same for a ``with`` block only.

Never set ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``: it re-opens arbitrary code
execution from a checkpoint file. Unnecessary once MMEngine stores only
weights-only-safe types (not the case up to 0.10.7).
"""
import collections
import contextlib
from typing import Iterator, List

import numpy as np
import torch

__all__ = [
    'mmengine_checkpoint_globals', 'register_mmengine_safe_globals',
    'mmengine_safe_globals'
]


def _numpy_reconstructors() -> List[object]:
    # numpy 2 moved numpy.core to numpy._core; pickles name the module they
    # were written with, so allow the functions under whichever exists.
    found = []
    for mod_name in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        try:
            mod = __import__(mod_name, fromlist=['_reconstruct'])
        except ImportError:
            continue
        for fn in ('_reconstruct', 'scalar'):
            if hasattr(mod, fn):
                found.append(getattr(mod, fn))
    return found


def _numpy_dtype_classes() -> List[type]:
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25
    if dtypes is None:
        return []
    return [
        getattr(dtypes, name) for name in dir(dtypes)
        if name.endswith('DType') and isinstance(getattr(dtypes, name), type)
    ]


def mmengine_checkpoint_globals() -> List[object]:
    """The non-tensor classes an MMEngine 0.10 checkpoint is made of."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return [
        HistoryBuffer, np.ndarray, np.dtype, collections.Counter,
        *_numpy_reconstructors(), *_numpy_dtype_classes()
    ]


def register_mmengine_safe_globals() -> None:
    """Allow-list :func:`mmengine_checkpoint_globals` for ``torch.load``."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:  # torch < 2.4 has no weights-only default to fix
        add(mmengine_checkpoint_globals())


@contextlib.contextmanager
def mmengine_safe_globals() -> Iterator[None]:
    """Allow-list the MMEngine checkpoint classes inside a ``with`` block."""
    ctx = getattr(torch.serialization, 'safe_globals', None)
    if ctx is None:
        yield
        return
    with ctx(mmengine_checkpoint_globals()):
        yield
