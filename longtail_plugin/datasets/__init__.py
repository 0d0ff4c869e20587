from .image_level_dataset import ImageLevelDataset
from .lvis_format_dataset import LVISFormatDataset
from .transforms import *  # noqa: F401,F403
from .transforms import __all__ as _transforms_all

__all__ = ['ImageLevelDataset', 'LVISFormatDataset'] + list(_transforms_all)
