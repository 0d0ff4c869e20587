from . import (data_preprocessors, detectors, losses, roi_heads,  # noqa: F401
               utils)

__all__ = []
