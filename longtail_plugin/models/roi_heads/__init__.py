"""RoI heads. One package per multi-module method (see its docstring)."""
from .refine_mask import *  # noqa: F401,F403
from .refine_mask import __all__ as _refine_mask_all

__all__ = list(_refine_mask_all)
