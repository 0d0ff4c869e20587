"""Box heads (the box branch of an RoI head)."""
from .clis_bbox_head import CLISBBoxHead

__all__ = ['CLISBBoxHead']
