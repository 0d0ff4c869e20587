from .category_info import (FREQUENCY_GROUPS, CategoryInfo,
                            category_info_from_dataset, frequency_group,
                            load_category_info)

__all__ = [
    'CategoryInfo', 'load_category_info', 'category_info_from_dataset',
    'frequency_group',
    'FREQUENCY_GROUPS'
]

from .grad_stats import (GradientStatistics,  # noqa: E402
                         find_gradient_statistics, split_pos_neg)
from .grad_ratio import (extract_grad_statistics,  # noqa: E402
                         load_grad_statistics, plot_grad_ratios)

__all__ += [
    'GradientStatistics', 'split_pos_neg', 'find_gradient_statistics',
    'extract_grad_statistics', 'load_grad_statistics', 'plot_grad_ratios'
]
