"""RoI heads. One package per multi-module method (see its docstring)."""
from .refine_mask import *  # noqa: F401,F403
from .refine_mask import __all__ as _refine_mask_all

__all__ = list(_refine_mask_all)

from .roi_extractors import *  # noqa: F401,F403,E402
from .roi_extractors import __all__ as _roi_extractors_all  # noqa: E402
from .ratio_aware_roi_head import (RatioAwareRoIHead,  # noqa: E402
                                   mask_box_area_ratios)

__all__ += list(_roi_extractors_all) + ['RatioAwareRoIHead',
                                        'mask_box_area_ratios']

from .image_level_roi_head import ImageLevelRoIHead  # noqa: E402
from .image_label_roi_head import ImageLabelRoIHead  # noqa: E402

__all__ += ['ImageLevelRoIHead', 'ImageLabelRoIHead']

from .bbox_heads import *  # noqa: F401,F403,E402
from .bbox_heads import __all__ as _bbox_heads_all  # noqa: E402

__all__ += list(_bbox_heads_all)

from .clis_roi_head import CLISRoIHead  # noqa: E402

__all__ += ['CLISRoIHead']
