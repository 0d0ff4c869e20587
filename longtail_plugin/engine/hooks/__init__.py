__all__ = []

from .grad_ratio_hook import GradRatioLoggerHook  # noqa: E402

__all__ += ['GradRatioLoggerHook']

from .efl_stats_hook import EFLStatsFlushHook  # noqa: E402

__all__ += ['EFLStatsFlushHook']
