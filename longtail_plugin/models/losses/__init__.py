__all__ = []

from .base_cls_loss import BaseClassificationLoss  # noqa: E402

__all__ += ['BaseClassificationLoss']

from .eql_loss import EqualizationLoss  # noqa: E402
from .eqlv2_loss import EqualizationLossV2  # noqa: E402
from .softmax_eql_loss import SoftmaxEqualizationLoss  # noqa: E402

__all__ += [
    'EqualizationLoss', 'EqualizationLossV2', 'SoftmaxEqualizationLoss'
]

from .bar_loss import BARCrossEntropyLoss  # noqa: E402

__all__ += ['BARCrossEntropyLoss']

from .efl_loss import (EqualizedFocalLoss,  # noqa: E402
                       EqualizedQualityFocalLoss)

__all__ += ['EqualizedFocalLoss', 'EqualizedQualityFocalLoss']

from .bags_loss import BalancedGroupSoftmaxLoss  # noqa: E402
from .balanced_mask_loss import BalancedMaskLoss  # noqa: E402

__all__ += ['BalancedGroupSoftmaxLoss', 'BalancedMaskLoss']

from .contrastive_loss import InfoNCELoss  # noqa: E402

__all__ += ['InfoNCELoss']
