"""Detectors of the plugin."""
from .image_level_two_stage import ImageLevelTwoStageDetector

__all__ = ['ImageLevelTwoStageDetector']
