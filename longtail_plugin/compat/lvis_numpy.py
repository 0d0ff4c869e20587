"""LVIS API (lvis 0.5.3) on numpy >= 1.24.

``lvis.eval.LVISEval.accumulate`` casts with ``np.float``, an alias numpy 1.24
removed, so every LVIS evaluation crashes at ``accumulate()`` with
``AttributeError: module 'numpy' has no attribute 'float'``.

The fix is confined to the evaluation call: :class:`LVISEvalCompat` runs
``accumulate`` with the ``np`` name *inside lvis.eval only* pointing at a thin
proxy of numpy that also answers ``float`` (the builtin, which is what
``np.float`` always was). numpy itself is never modified and nothing is
changed at import time; the proxy is removed when ``accumulate`` returns.

Unnecessary once the LVIS API on the package index replaces ``np.float``
(upstream lvis-api master already does; 0.5.3 is the newest release there).
"""
import contextlib
import threading
from typing import Iterator

import numpy as np
from lvis import LVISEval

__all__ = ['LVISEvalCompat', 'lvis_numpy_compat', 'needs_lvis_numpy_fix']

_lock = threading.RLock()


class _NumpyWithRemovedAliases:
    """Attribute access goes to numpy; the removed aliases are answered."""
    float = float
    int = int
    bool = bool
    object = object

    def __getattr__(self, name: str):
        return getattr(np, name)


def needs_lvis_numpy_fix() -> bool:
    """Whether the installed numpy lacks the aliases lvis 0.5.3 uses."""
    return not hasattr(np, 'float')


@contextlib.contextmanager
def lvis_numpy_compat() -> Iterator[None]:
    """Within the block, ``lvis.eval`` sees numpy with its removed aliases."""
    import lvis.eval as lvis_eval_module
    if not needs_lvis_numpy_fix():
        yield
        return
    with _lock:
        original = lvis_eval_module.np
        lvis_eval_module.np = _NumpyWithRemovedAliases()
        try:
            yield
        finally:
            lvis_eval_module.np = original


class LVISEvalCompat(LVISEval):
    """``lvis.LVISEval`` whose ``accumulate`` works on numpy >= 1.24."""

    def accumulate(self) -> None:
        with lvis_numpy_compat():
            super().accumulate()
