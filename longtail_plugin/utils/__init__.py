from .category_info import (FREQUENCY_GROUPS, CategoryInfo,
                            category_info_from_dataset, dataset_ann_file,
                            frequency_group, load_category_info,
                            train_ann_file)

__all__ = [
    'CategoryInfo', 'load_category_info', 'category_info_from_dataset',
    'frequency_group', 'FREQUENCY_GROUPS', 'dataset_ann_file',
    'train_ann_file'
]

from .grad_stats import (GradientStatistics,  # noqa: E402
                         current_iter, find_gradient_statistics,
                         split_pos_neg)
from .grad_ratio import group_means, model_grad_scalars  # noqa: E402

__all__ += [
    'GradientStatistics', 'split_pos_neg', 'find_gradient_statistics',
    'current_iter',
    'group_means', 'model_grad_scalars'
]
