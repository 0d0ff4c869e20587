"""Detic-style image-label loss on the largest proposal (the baseline of the
image-level experiments).

Zhou et al., "Detecting Twenty-thousand Classes using Image-level
Supervision", ECCV 2022 (facebookresearch/Detic; MMDetection port
``projects/Detic_new``, ``DeticBBoxHead.image_label_losses``). The code here
is ours; the loss follows the published one:

Detic's form (``loss_form='bce'``): for each image-level sample ``b`` of
the batch (``B`` of them) with the set
of image labels ``L_b``, take the RPN proposal of largest area (Detic's
"max-size" choice), pool it, and let ``z`` be the bbox head's class logits
of that RoI (``K`` columns, see below). With ``e_l`` the one-hot vector of
label ``l``::

    loss_b = 1/|L_b| sum_{l in L_b} sum_{c < K} BCE(z_c, e_l[c])
    loss_image_label = image_loss_weight * 1/B sum_b loss_b

i.e. a sigmoid binary cross-entropy summed (not averaged) over the class
columns, one one-hot target per label averaged over the labels, averaged
over the image-level samples; ``image_loss_weight = 0.1`` as Detic.

``loss_form='ce'`` (the default) keeps Detic's rule (the largest proposal,
the same normalisation) but uses the loss a softmax detector trains its
classifier with, over all ``C + 1`` columns of the head::

    loss_b = 1/|L_b| sum_{l in L_b} -log softmax(z)_l

Ours, and the form the anchor configs use: on the softmax Mask
R-CNN of the dense-head set the BCE form (weight 0.1) diverged after the
warm-up (seed 0: ``loss_cls`` 2.4 at iteration 180, 17 at 240, gradient
norm 205), because it drives every foreground logit of a softmax head
towards minus infinity, against the head's own cross-entropy (Detic's head
is sigmoid, with its biases initialised to a 0.01 prior, so the BCE starts
near its minimum there).

Differences from Detic, ours to state:

* Columns: Detic's sigmoid classifier has ``C + 1`` logits and the BCE runs
  over all of them (background target 0). Our detectors use a softmax head
  (``C + 1`` logits, background last) or a custom-channel loss (EQL family:
  class ``j`` at column ``j`` for ``j < C``), for which the background
  column is not a sigmoid logit; the default (``background_column=False``)
  uses the ``C`` foreground columns only (``K = C``).
  ``background_column=True`` gives Detic's form on a ``C + 1`` wide head
  (``K = C + 1``).
* Detic appends the whole-image box to the proposals and excludes it from
  the max-size choice (``sizes[:-1]``); no image box is appended here, so
  the argmax runs over all proposals (first on ties).
* Labels: the distinct labels of the sample's ``gt_instances.labels`` (the
  image-level dataset gives one instance per label).
* A sample without proposal adds 0 (it still counts in ``B``, as in Detic).

Proposals come from the RPN (``image_level_proposals = 'rpn'``, computed by
:class:`~longtail_plugin.models.detectors.ImageLevelTwoStageDetector`
without gradient). The detection samples train as in
:class:`~mmdet.models.roi_heads.StandardRoIHead`
(:class:`.ImageLevelRoIHead`). Key: ``loss_image_label`` in every batch
(a zero with graph when it holds no image-level sample).

Config::

    model = dict(type='ImageLevelTwoStageDetector',
                 roi_head=dict(type='ImageLabelRoIHead',
                               image_loss_weight=0.1, loss_form='ce', ...))
"""
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import InstanceList
from .image_level_roi_head import ImageLevelRoIHead

__all__ = [
    'ImageLabelRoIHead', 'largest_box_index', 'image_label_bce',
    'image_label_ce'
]


def largest_box_index(bboxes: Tensor) -> int:
    """Index of the box of largest area in ``bboxes [n, 4]`` (x1, y1, x2,
    y2; the first one on ties; ``n >= 1``)."""
    boxes = get_box_tensor(bboxes)
    if boxes.size(0) == 0:
        raise ValueError('largest_box_index: no box')
    areas = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * \
        (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    return int(areas.argmax().item())


def _distinct_labels(labels: Tensor, width: int, name: str) -> Tensor:
    """The distinct labels of one sample, checked against ``width`` logit
    columns (``name`` leads the error)."""
    labels = torch.unique(labels.long())
    if labels.numel() == 0:
        raise ValueError(f'{name}: an image-level sample needs at least one '
                         'label')
    if int(labels.min()) < 0 or int(labels.max()) >= width:
        raise ValueError(f'{name}: labels {labels.tolist()} out of range for '
                         f'{width} logit columns')
    return labels


def image_label_bce(logits: Tensor, labels: Tensor) -> Tensor:
    """``1/|L| sum_{l in L} sum_c BCE(logits_c, onehot(l)_c)`` for one RoI's
    ``logits [K]`` and its distinct ``labels`` (``|L| >= 1``)."""
    labels = _distinct_labels(labels, logits.numel(), 'image_label_bce')
    target = logits.new_zeros((labels.numel(), logits.numel()))
    target[torch.arange(labels.numel(), device=labels.device), labels] = 1.0
    bce = F.binary_cross_entropy_with_logits(
        logits.unsqueeze(0).expand_as(target), target, reduction='none')
    return bce.sum(dim=1).mean()


def image_label_ce(logits: Tensor, labels: Tensor) -> Tensor:
    """``1/|L| sum_{l in L} -log softmax(logits)_l`` for one RoI's
    ``logits [K]`` (all the head's columns) and its distinct ``labels``
    (``|L| >= 1``)."""
    labels = _distinct_labels(labels, logits.numel(), 'image_label_ce')
    return -torch.log_softmax(logits, dim=-1)[labels].mean()


@MODELS.register_module()
class ImageLabelRoIHead(ImageLevelRoIHead):
    """Detic's image-label loss on the largest RPN proposal of each
    image-level sample (see the module docstring).

    Args:
        image_loss_weight: weight of ``loss_image_label`` (Detic: 0.1).
        background_column: also use the head's background column (target
            0), as Detic's sigmoid head; only for a ``C + 1`` wide head
            (``loss_form='bce'``).
        loss_form: ``'ce'`` (default: softmax cross-entropy over every
            column of the head, for softmax heads) or ``'bce'`` (Detic's
            sigmoid BCE summed over the class columns; with
            ``background_column=True`` Detic's exact form on a sigmoid
            head).
        **kwargs: as :class:`mmdet.models.roi_heads.StandardRoIHead`.
    """

    image_level_proposals = 'rpn'

    def __init__(self,
                 *args,
                 image_loss_weight: float = 0.1,
                 background_column: bool = False,
                 loss_form: str = 'ce',
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.with_bbox:
            raise ValueError('ImageLabelRoIHead needs roi_head.bbox_head')
        if float(image_loss_weight) < 0:
            raise ValueError('ImageLabelRoIHead: image_loss_weight must be '
                             f'>= 0, got {image_loss_weight!r}')
        self.image_loss_weight = float(image_loss_weight)
        self.background_column = bool(background_column)
        if loss_form not in ('bce', 'ce'):
            raise ValueError("ImageLabelRoIHead: loss_form must be 'bce' or "
                             f"'ce', got {loss_form!r}")
        if self.background_column and loss_form != 'bce':
            raise ValueError(
                'ImageLabelRoIHead: background_column=True applies to '
                "loss_form='bce' only (the 'ce' form always uses every "
                f"column); got loss_form={loss_form!r}")
        self.loss_form = loss_form

    def label_logits(self, cls_score: Tensor) -> Tensor:
        """The class columns the image-label loss uses: the ``C``
        foreground ones, plus the background column ``C`` with
        ``background_column=True``."""
        num_classes = self.bbox_head.num_classes
        width = num_classes + 1 if self.background_column else num_classes
        if cls_score.size(-1) < width or (self.background_column and
                                          cls_score.size(-1) != width):
            raise ValueError(
                f'ImageLabelRoIHead: cls_score has {cls_score.size(-1)} '
                f'columns for num_classes={num_classes}; '
                f'background_column={self.background_column} needs '
                f'{"exactly " if self.background_column else ">= "}{width}')
        return cls_score[..., :width]

    def image_level_loss(self, x: Tuple[Tensor],
                         rpn_results_list: InstanceList,
                         batch_data_samples: SampleList, det_idx: List[int],
                         img_idx: List[int]) -> dict:
        """``loss_image_label`` (see the module docstring)."""
        zero = self.zero_loss()
        if not img_idx:
            return dict(loss_image_label=zero)
        rois, labels = [], []
        for j in img_idx:
            boxes = get_box_tensor(rpn_results_list[j].bboxes)
            if boxes.size(0) == 0:
                continue
            box = boxes[largest_box_index(boxes)]
            rois.append(torch.cat([box.new_tensor([float(j)]), box]))
            labels.append(batch_data_samples[j].gt_instances.labels)
        if not rois:
            return dict(loss_image_label=zero)
        cls_score = self._bbox_forward(x, torch.stack(rois))['cls_score']
        if self.loss_form == 'ce':
            logits, loss_fn = cls_score, image_label_ce
        else:
            logits, loss_fn = self.label_logits(cls_score), image_label_bce
        loss = sum(
            loss_fn(z, lab.to(z.device)) for z, lab in zip(logits, labels))
        loss = loss / len(img_idx) + zero
        return dict(loss_image_label=self.image_loss_weight * loss)
