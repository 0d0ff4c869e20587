"""Long-tailed detection and instance segmentation for MMDetection 3.x.

Importing the package (e.g. through ``custom_imports``) registers every module
into MMDetection's registries. Nothing global is patched at import time; the
one compatibility step taken here is explicit: the classes MMEngine stores in
its checkpoints are allow-listed for torch's weights-only loading (see
:mod:`longtail_plugin.compat.checkpoint`).
"""
from . import compat, datasets, engine, evaluation, models, utils  # noqa: F401
from .compat.checkpoint import register_mmengine_safe_globals
from .version import __version__

register_mmengine_safe_globals()

__all__ = ['__version__']
