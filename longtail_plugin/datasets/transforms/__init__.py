"""Data transforms of the plugin (registered in MMDetection's TRANSFORMS)."""
from .image_level import (LoadImageLevelAnnotations, rectangle_bitmaps,
                          rectangle_polygons)

__all__ = [
    'LoadImageLevelAnnotations', 'rectangle_bitmaps', 'rectangle_polygons'
]
