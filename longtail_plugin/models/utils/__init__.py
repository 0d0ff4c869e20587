"""Model-side helpers shared by detectors and heads."""
from .image_level import is_image_level, select_levels, split_image_level

__all__ = ['is_image_level', 'split_image_level', 'select_levels']
