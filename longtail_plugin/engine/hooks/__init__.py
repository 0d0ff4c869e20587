__all__ = []

from .grad_ratio_hook import GradRatioLoggerHook  # noqa: E402

__all__ += ['GradRatioLoggerHook']

from .category_info_hook import TrainCategoryInfoHook  # noqa: E402

__all__ += ['TrainCategoryInfoHook']

from .efl_stats_hook import EFLStatsFlushHook  # noqa: E402

__all__ += ['EFLStatsFlushHook']

from .freeze_hook import FreezeModulesHook  # noqa: E402

__all__ += ['FreezeModulesHook']
