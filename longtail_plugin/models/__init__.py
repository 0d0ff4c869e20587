from . import dense_heads, losses, roi_heads  # noqa: F401

__all__ = []
