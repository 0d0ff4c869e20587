from .metrics import LongTailLVISMetric, per_category_ap

__all__ = ['LongTailLVISMetric', 'per_category_ap']

from .functional import boundary_fscore, mask_boundary  # noqa: E402,F401

__all__ += ['boundary_fscore', 'mask_boundary']
