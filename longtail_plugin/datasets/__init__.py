from .lvis_format_dataset import LVISFormatDataset
from .synthetic_lvis import (ensure_synthetic_lvis, load_class_names,
                             make_synthetic_lvis)

__all__ = ['LVISFormatDataset']
__all__ += ['make_synthetic_lvis', 'ensure_synthetic_lvis', 'load_class_names']
