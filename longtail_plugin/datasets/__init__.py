from .lvis_format_dataset import LVISFormatDataset

__all__ = ['LVISFormatDataset']
