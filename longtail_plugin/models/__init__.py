from . import losses, roi_heads  # noqa: F401

__all__ = []
