__all__ = []

from .mask_heads import *  # noqa: E402,F401,F403
from .mask_heads import __all__ as _mask_heads_all  # noqa: E402
from .refine_mask_roi_head import (RefineMaskCascadeRoIHead,  # noqa: E402
                                   RefineMaskRoIHead)

__all__ += _mask_heads_all + ['RefineMaskRoIHead', 'RefineMaskCascadeRoIHead']
