"""MMEngine checkpoints under torch >= 2.6's weights-only loading.

torch 2.6 made ``torch.load(..., weights_only=True)`` the default. MMEngine
0.10.7 checkpoints carry, beside the tensors, the message hub's
``HistoryBuffer`` objects (holding numpy arrays), numpy scalars and dtypes,
and the schedulers' ``collections.Counter`` milestones, so ``tools/test.py``,
``--resume`` and ``load_from`` stop with "Weights only load failed".

The fix allow-lists exactly those classes with torch's own API
(``torch.serialization.add_safe_globals``): weights-only loading stays on
and a checkpoint that holds anything else is still refused. A
``HistoryBuffer`` also pickles its statistics methods as
``getattr(HistoryBuffer, 'mean')``; allowing the builtin ``getattr`` would
re-open code execution, so that pickle name is bound to
:func:`history_buffer_method`, which resolves only the statistics methods
registered on ``HistoryBuffer`` and refuses everything else. It is applied
at one named call site, :func:`register_mmengine_safe_globals`, which
``longtail_plugin/__init__.py`` calls explicitly (``custom_imports`` imports
the package before MMEngine loads any checkpoint); nothing is patched.
:func:`mmengine_safe_globals` guarantees the classes inside a ``with``
block whatever the process-wide list holds (e.g. after
``torch.serialization.clear_safe_globals()``) and restores that list exactly
on exit. Note that importing any part of the plugin - ``longtail_plugin``,
``longtail_plugin.compat``, ... - runs the package ``__init__`` and so the
process-wide registration; the ``with`` block therefore does not *remove*
the classes for the rest of a process that imported the plugin.

Never set ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``: it re-opens arbitrary code
execution from a checkpoint file. Unnecessary once MMEngine stores only
weights-only-safe types (not the case up to 0.10.7).
"""
import collections
import contextlib
import pickle
from typing import Callable, Iterator, List

import numpy as np
import torch

__all__ = [
    'history_buffer_method', 'mmengine_checkpoint_globals', 'register_mmengine_safe_globals',
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


_BUILTIN_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_method(obj: object, name: str) -> Callable:
    """``getattr`` restricted to ``HistoryBuffer``'s statistics methods."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer:
        # the four built-in statistics are registered lazily (by the first
        # HistoryBuffer constructed), custom ones by register_statistics
        if name in _BUILTIN_STATISTICS:
            return getattr(HistoryBuffer, name)
        if name in HistoryBuffer._statistics_methods:
            return HistoryBuffer._statistics_methods[name]
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); only the '
        'statistics methods of mmengine HistoryBuffer are allowed')


def mmengine_checkpoint_globals() -> List[object]:
    """The non-tensor classes an MMEngine 0.10 checkpoint is made of."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return [
        HistoryBuffer, np.ndarray, np.dtype, collections.Counter,
        *_numpy_reconstructors(), *_numpy_dtype_classes(),
        # pickle protocol 2 (torch.save's default) names builtins
        # '__builtin__', later protocols 'builtins'
        (history_buffer_method, '__builtin__.getattr'),
        (history_buffer_method, 'builtins.getattr'),
    ]


def register_mmengine_safe_globals() -> None:
    """Allow-list :func:`mmengine_checkpoint_globals` for ``torch.load``."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:  # torch < 2.4 has no weights-only default to fix
        add(mmengine_checkpoint_globals())


@contextlib.contextmanager
def mmengine_safe_globals() -> Iterator[None]:
    """Allow-list the MMEngine checkpoint classes inside a ``with`` block.

    Inside the block the classes are allow-listed; on exit torch's
    process-wide list is exactly what it was before the block. Importing
    the plugin (any of its modules, this one included) has already
    registered them process-wide (see the module docstring), so in such a
    process they stay allowed after the block; the block is what makes a
    load independent of that registration (e.g. after
    ``torch.serialization.clear_safe_globals()``).

    torch's ``safe_globals`` context removes its entries on exit even when
    they were registered before, so only the missing ones are passed to it.
    """
    ctx = getattr(torch.serialization, 'safe_globals', None)
    if ctx is None:
        yield
        return
    present = torch.serialization.get_safe_globals()
    missing = [g for g in mmengine_checkpoint_globals() if g not in present]
    with ctx(missing):
        yield
