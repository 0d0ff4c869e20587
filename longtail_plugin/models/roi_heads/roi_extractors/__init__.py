"""RoI feature extractors: the ratio-aware mask-proposal assignment of the
LVIS Challenge 2020 recipe (:mod:`.ratio_aware_roi_extractor`)."""
from .ratio_aware_roi_extractor import (RatioAwareRoIExtractor,
                                        ratio_aware_levels)

__all__ = ['RatioAwareRoIExtractor', 'ratio_aware_levels']
