"""Equalization Loss (EQL v1).

Tan et al., "Equalization Loss for Long-Tailed Object Recognition",
CVPR 2020 (arXiv:2003.05176).

A sigmoid classifier over the ``C`` foreground classes (background RoIs have
an all-zero target). For RoI ``i`` and class ``j``:

.. math::

    w_{ij} = 1 - E(i)\\, T_\\lambda(f_j)\\, (1 - y_{ij}),

    L = \\frac{1}{N} \\sum_i \\sum_{j<C} w_{ij}\\,
        \\mathrm{BCE}(z_{ij}, y_{ij}),

with ``E(i) = 1`` when RoI ``i`` is foreground, ``f_j`` the fraction of
training images containing class ``j`` and ``T_lambda(f) = 1`` when
``f < lambda``: a foreground RoI does not push down the scores of tail
classes it does not belong to; background RoIs still suppress every class.

Frequencies come from the training annotation file (LVIS ``image_count`` /
number of images, through :func:`longtail_plugin.utils.load_category_info`)
or an explicit ``image_frequency`` list - never from a built-in table. In a
config the file is named once, in ``train_dataloader.dataset``: without
``ann_file`` / ``image_frequency`` the loss is given that file's statistics
when training starts by
:class:`~longtail_plugin.engine.hooks.TrainCategoryInfoHook`
(``default_hooks = dict(category_info=dict(type='TrainCategoryInfoHook'))``),
and training before that is an error naming the three ways.

Classifier layout (our design, via MMDetection's ``custom_cls_channels``
protocol, so the stock ``Shared2FCBBoxHead`` is unchanged): the head has
``C`` output channels, one sigmoid per class and no background logit,
exactly the formula above. :meth:`EqualizationLoss.get_activation` returns
``C + 1`` scores, the last being ``prod_j (1 - p_j)`` (the probability that
no class fires), which MMDetection's NMS drops. For heads that do not follow
the protocol and emit ``C + 1`` logits, the last column is ignored by the
loss (it receives no gradient) and by the activation.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS
from ...utils.category_info import CategoryInfo, load_category_info
from .base_cls_loss import BaseClassificationLoss
from .utils import top1_accuracy

__all__ = ['EqualizationLoss']


@MODELS.register_module()
class EqualizationLoss(BaseClassificationLoss):
    """Equalization Loss v1 (Tan et al., CVPR 2020) for two-stage heads.

    Args:
        num_classes: number of foreground classes ``C``.
        lambda_: frequency threshold ``lambda`` of ``T``; classes with image
            frequency below it are "tail". 1.76e-3 is the paper's LVIS v0.5
            value; the authors' LVIS v1 config uses 1.1e-3.
        ann_file: training annotation file (COCO/LVIS format) to read image
            counts from; joined to ``data_root`` when relative. ``None``
            (with no ``image_frequency``): the training dataset's file,
            given to the loss when the run starts by
            :class:`~longtail_plugin.engine.hooks.TrainCategoryInfoHook`
            (the configs name the file once, in ``train_dataloader``).
        data_root: optional data root for ``ann_file``.
        image_frequency: explicit per-class image frequency (alternative
            to ``ann_file``).
        frequency_denominator: what ``f_j`` divides a class's image count
            by: ``'images'`` (default: every image of the file) or
            ``'annotated_images'`` (images with at least one annotation,
            the authors' rule: their LVIS v1 table uses 99,388 of the
            100,170 training images, which moves two classes with 110
            images out of the tail at ``lambda_=1.1e-3``).
        use_sigmoid: kept for config compatibility; must be True.
        reduction: 'none' | 'mean' | 'sum'.
        loss_weight: weight of the loss.
    """

    use_sigmoid = True
    num_extra_channels = 0  # one sigmoid per class, no background logit
    accepts_extra_column = True  # a C+1 head's last column is ignored
    custom_activation = True
    custom_accuracy = True

    def __init__(self,
                 num_classes: int,
                 lambda_: float = 1.76e-3,
                 ann_file: Optional[str] = None,
                 data_root: Optional[str] = None,
                 image_frequency: Optional[Sequence[float]] = None,
                 frequency_denominator: str = 'images',
                 use_sigmoid: bool = True,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(num_classes, use_sigmoid, reduction, loss_weight)
        self.lambda_ = float(lambda_)
        if frequency_denominator not in ('images', 'annotated_images'):
            raise ValueError(
                'EqualizationLoss: frequency_denominator='
                f"{frequency_denominator!r}, expected 'images' or "
                "'annotated_images'")
        self.frequency_denominator = frequency_denominator
        if ann_file is not None and image_frequency is not None:
            raise ValueError('EqualizationLoss: give either `ann_file` or '
                             '`image_frequency`, not both')
        # derived from the data set, so not stored in checkpoints
        self.register_buffer(
            'tail_mask',
            torch.zeros(self.num_classes, dtype=torch.float32),
            persistent=False)
        self.frequency_source: Optional[str] = None
        if image_frequency is not None:
            freq = np.asarray(image_frequency, dtype=np.float64).reshape(-1)
            if freq.size != self.num_classes:
                raise ValueError(
                    f'EqualizationLoss: `image_frequency` has {freq.size} '
                    f'entries but num_classes={self.num_classes}')
            self._set_frequency(freq, 'image_frequency')
        elif ann_file is not None:
            self.bind_category_info(load_category_info(ann_file, data_root))

    def _set_frequency(self, freq: np.ndarray, source: str) -> None:
        self.tail_mask.copy_(
            torch.as_tensor(freq < self.lambda_, dtype=torch.float32))
        self.frequency_source = source

    @property
    def needs_category_info(self) -> bool:
        """True until class frequencies are known (see
        :class:`~longtail_plugin.engine.hooks.TrainCategoryInfoHook`)."""
        return self.frequency_source is None

    def bind_category_info(self, info: CategoryInfo) -> None:
        """Take the class frequencies of a training set (its
        :class:`~longtail_plugin.utils.CategoryInfo`)."""
        self.check_ann_file_classes(info)
        self._set_frequency(
            np.asarray(info.image_frequency_over(self.frequency_denominator),
                       dtype=np.float64), info.source)

    def extra_repr(self) -> str:
        tail = (int(self.tail_mask.sum())
                if self.frequency_source is not None else 'unset')
        return (f'num_classes={self.num_classes}, lambda_={self.lambda_}, '
                f'num_tail={tail}')

    def _fg(self, cls_score: Tensor) -> Tensor:
        self.check_width(cls_score)
        return cls_score[..., :self.num_classes]

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """``[..., C+1]``: ``sigmoid(z_j)`` and ``prod_j (1 - sigmoid(z_j))``.
        """
        fg = self._fg(cls_score)
        bg = F.logsigmoid(-fg).sum(dim=-1, keepdim=True).exp()
        return torch.cat([fg.sigmoid(), bg], dim=-1)

    def get_accuracy(self, cls_score: Tensor,
                     labels: Tensor) -> Dict[str, Tensor]:
        """Top-1 accuracy of the foreground RoIs over the ``C`` classes."""
        fg = self._fg(cls_score)
        pos = (labels >= 0) & (labels < self.num_classes)
        return dict(acc_classes=top1_accuracy(fg[pos], labels[pos]))

    def class_weights(self, labels: Tensor) -> Tuple[Tensor, Tensor]:
        """``(w, y)``: ``w_ij = 1 - E(i) T(f_j) (1 - y_ij)`` and the
        ``[N, C]`` binary targets (all zero for background RoIs)."""
        if self.frequency_source is None:
            raise ValueError(
                'EqualizationLoss needs the class frequencies: set '
                '`ann_file` (the training annotation file, LVIS '
                '`image_count` is used) or `image_frequency` (one value per '
                'class), or add dict(type=\'TrainCategoryInfoHook\') to '
                '`default_hooks` to read the training dataset\'s file')
        n, c = labels.numel(), self.num_classes
        is_fg = (labels >= 0) & (labels < c)
        dtype = self.tail_mask.dtype
        target = torch.zeros((n, c), device=labels.device, dtype=dtype)
        target[is_fg.nonzero(as_tuple=True)[0], labels[is_fg]] = 1.0
        excl = is_fg.float()[:, None] * self.tail_mask[None, :]
        return 1.0 - excl * (1.0 - target), target

    def loss_per_sample(self, logits: Tensor, label: Tensor) -> Tensor:
        """``sum_j w_ij BCE(z_ij, y_ij)`` over the ``C`` class columns."""
        fg = logits[:, :self.num_classes]
        w, target = self.class_weights(label)
        bce = F.binary_cross_entropy_with_logits(
            fg, target.to(fg.dtype), reduction='none')
        return (bce * w).sum(dim=-1)
