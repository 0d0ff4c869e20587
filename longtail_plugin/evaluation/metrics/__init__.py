from .lvis_metric import LongTailLVISMetric, per_category_ap

__all__ = ['LongTailLVISMetric', 'per_category_ap']
