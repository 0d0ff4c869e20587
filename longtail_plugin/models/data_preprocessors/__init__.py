"""Batch augments run by MMDetection's ``DetDataPreprocessor``."""
from .image_level_paste import ImageLevelPaste

__all__ = ['ImageLevelPaste']
