"""Balanced Group Softmax (BAGS).

Li et al., "Overcoming Classifier Imbalance for Long-tail Object Detection
with Balanced Group Softmax", CVPR 2020 (arXiv:2006.10408).

The ``C`` foreground classes are split into groups by their number of
training instances ``n_j`` (read from the training annotation file): with
``bins = (b_1, ..., b_K)`` (default ``(10, 100, 1000)``, the authors'),
class ``j`` is in group ``g_j = 1 + #{k : n_j >= b_k}``, i.e. the groups
``[0, b_1), [b_1, b_2), ..., [b_K, inf)`` - left-closed as in the authors'
``lvis_analyse.py`` (``instance_count < 10`` is the first group). Group 0 is
the background group. ``G = K + 2`` groups in all (``K + 1`` foreground
groups, possibly empty, so the layout never depends on the data).

Logits layout (``C + 1 + G`` channels, our order, through MMDetection's
``custom_cls_channels`` protocol so the stock ``Shared2FCBBoxHead`` is
unchanged)::

    [0, C)        z_j, one logit per class, in label order
    C             z_bg, the background logit of group 0
    C + 1 + g     o_g, the "others" logit of group g (g = 0 .. G-1);
                  o_0 is group 0's "foreground" logit

The authors store the same logits group after group (``pred_slice``); ours
is a fixed permutation of them that keeps class ``j`` at column ``j`` and
the background at column ``C`` whatever the grouping, so the first
``C + 1`` rows of ``fc_cls`` line up with a softmax classifier's.

Each group has its own softmax: group 0 over ``[z_bg, o_0]`` with target
background / foreground; group ``g > 0`` over ``[o_g, z_j (j in g)]`` with
target ``z_j`` for a RoI of class ``j`` in ``g`` and ``o_g`` ("others") for
every other RoI (background or another group's class).

Training (the authors' ``GSBBoxHeadWith0``): group 0 uses every RoI. A group
``g > 0`` with ``P_g > 0`` positives in the batch uses its positives and
``min(floor(beta P_g), #others)`` of its "others" drawn uniformly without
replacement (``beta = 8``); a group without positives contributes nothing.
Each group is normalised by its own number of RoIs ``n_g`` and the groups
are summed:

.. math::

    L = \\sum_g \\frac{1}{\\max(n_g, 1)} \\sum_{i \\in S_g} w_i\\,
        \\mathrm{CE}_g(i),

with ``S_g`` the RoIs group ``g`` uses and ``w_i`` the bbox head's label
weight. Label weights (ignored by the mmdet-2 port) are ours to honour:
a RoI of weight 0 takes no part in any group (it is neither a positive nor
a candidate "other", and does not count in ``n_g``), other weights scale
the RoI's terms; ``n_g`` counts RoIs, as MMDetection's ``avg_factor`` does
(for the usual 0/1 weights ``n_g`` is the authors' normaliser). The
per-group normalisers replace the head's ``avg_factor``, which is ignored
(group 0's ``n_0`` equals it). ``reduction='sum'`` drops the ``1/n_g``;
``'none'`` gives each RoI's share of the 'mean' loss (they sum to it).

Sampling is reproducible: each training call draws from a fresh CPU
``torch.Generator`` seeded by a hash of ``(s, t)``, where ``s`` is the
``seed`` argument or, when it is ``None``, the run's seed
(``torch.initial_seed()``: MMEngine's ``randomness`` seeds every process
with one synchronised seed, and restores it on resume), and ``t`` the
``sample_step`` buffer, the number of training calls so far. No other state
is kept: ``sample_step`` advances by one per training call on every
replica (the bbox head calls the loss once per iteration), so the replicas'
states stay identical, and it is saved with the model, so a resumed run
draws what the uninterrupted run would have drawn. (With
``randomness.diff_rank_seed=True`` each rank draws its own stream.) Calls in
eval mode draw with the current ``t`` and do not advance it.

Test time (the authors' ``_merge_score``): ``p_j = softmax_g(j) p_fg`` where
``softmax_g`` is group ``g_j``'s softmax with its "others" output dropped
(not renormalised) and ``p_fg`` group 0's foreground probability; the
background score is group 0's background probability. By the authors'
design these ``C + 1`` scores do not sum to one.

The class groups are kept in the persistent buffer ``class_group`` (so a
test run or a resumed run gets them from the checkpoint). They come from
``ann_file`` or ``instance_count`` when given, else from the training
dataset's file through
:class:`~longtail_plugin.engine.hooks.TrainCategoryInfoHook`
(``default_hooks = dict(category_info=dict(type='TrainCategoryInfoHook'))``)
when training starts - unless a loaded checkpoint already holds them.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS
from ...utils.category_info import CategoryInfo, load_category_info
from .base_cls_loss import BaseClassificationLoss
from .utils import top1_accuracy, upcast

__all__ = ['BalancedGroupSoftmaxLoss', 'instance_count_groups']

_MASK64 = (1 << 64) - 1


def instance_count_groups(instance_count: Sequence[int],
                          bins: Sequence[int]) -> np.ndarray:
    """Group of each class, ``1 + #{k : n_j >= bins[k]}`` (``1 .. K+1``).
    """
    counts = np.asarray(instance_count, dtype=np.int64).reshape(-1)
    return np.searchsorted(np.asarray(bins, dtype=np.int64), counts,
                           side='right').astype(np.int64) + 1


def _mix_seed(seed: int, step: int) -> int:
    """A 64-bit hash of ``(seed, step)`` (SplitMix64 finaliser)."""
    x = (int(seed) * 0x9E3779B97F4A7C15 + int(step) + 1) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


@MODELS.register_module()
class BalancedGroupSoftmaxLoss(BaseClassificationLoss):
    """Balanced Group Softmax (Li et al., CVPR 2020) for RoI heads.

    See the module docstring for the layout, the loss and the merge.

    Args:
        num_classes: number of foreground classes ``C``.
        bins: increasing instance-count boundaries of the foreground groups
            (``K`` values give ``K + 1`` foreground groups).
        beta: "others" kept per positive in a foreground group; ``None``
            keeps every "other" (the authors' "all" ablation).
        ann_file: training annotation file (COCO/LVIS format) whose
            ``instance_count`` (or annotations) give the groups; joined to
            ``data_root`` when relative. ``None`` (with no
            ``instance_count``): the training dataset's file, given when
            training starts by ``TrainCategoryInfoHook``.
        data_root: optional data root for ``ann_file``.
        instance_count: explicit training instance count of each class
            (alternative to ``ann_file``).
        seed: base seed of the "others" sampling; ``None`` takes the run's
            seed (``torch.initial_seed()``).
        use_sigmoid: kept for config compatibility; must be False.
        reduction: 'none' | 'mean' | 'sum'.
        loss_weight: weight of the loss.
    """

    use_sigmoid = False
    custom_activation = True
    custom_accuracy = True

    def __init__(self,
                 num_classes: int,
                 bins: Sequence[int] = (10, 100, 1000),
                 beta: Optional[float] = 8.0,
                 ann_file: Optional[str] = None,
                 data_root: Optional[str] = None,
                 instance_count: Optional[Sequence[int]] = None,
                 seed: Optional[int] = None,
                 use_sigmoid: bool = False,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(num_classes, use_sigmoid, reduction, loss_weight)
        name = type(self).__name__
        bins = tuple(bins)
        if not bins or any(
                isinstance(b, bool) or int(b) != b or int(b) <= 0
                for b in bins) or any(
                    a >= b for a, b in zip(bins[:-1], bins[1:])):
            raise ValueError(f'{name}: bins must be a non-empty, strictly '
                             f'increasing list of positive integers, got '
                             f'{bins!r}')
        self.bins = tuple(int(b) for b in bins)
        if beta is not None and not (float(beta) > 0
                                     and np.isfinite(float(beta))):
            raise ValueError(f'{name}: beta must be a positive number (or '
                             f'None to keep every "other"), got {beta!r}')
        self.beta = None if beta is None else float(beta)
        if seed is not None and (isinstance(seed, bool) or int(seed) != seed
                                 or int(seed) < 0):
            raise ValueError(f'{name}: seed must be None or a non-negative '
                             f'integer, got {seed!r}')
        self.seed = None if seed is None else int(seed)
        #: groups: the background group and len(bins) + 1 foreground groups
        self.num_groups = len(self.bins) + 2
        self.num_extra_channels = 1 + self.num_groups
        if ann_file is not None and instance_count is not None:
            raise ValueError(f'{name}: give either `ann_file` or '
                             '`instance_count`, not both')
        # group of each class (1 .. G-1); -1 until known. Saved with the
        # model so that testing and resuming find the training grouping.
        self.register_buffer(
            'class_group',
            torch.full((self.num_classes, ), -1, dtype=torch.int64))
        # training calls so far: the "others" sampling stream
        self.register_buffer('sample_step',
                             torch.zeros((), dtype=torch.int64))
        self.group_source: Optional[str] = None
        if instance_count is not None:
            counts = np.asarray(instance_count).reshape(-1)
            if counts.size != self.num_classes or (counts < 0).any():
                raise ValueError(
                    f'{name}: `instance_count` must have num_classes='
                    f'{self.num_classes} non-negative entries, got '
                    f'{counts.size} entries')
            self._set_counts(counts, 'instance_count')
        elif ann_file is not None:
            self.bind_category_info(load_category_info(ann_file, data_root))

    # --- groups -----------------------------------------------------------
    def _set_counts(self, counts: np.ndarray, source: str) -> None:
        groups = instance_count_groups(counts, self.bins)
        self.class_group.copy_(torch.as_tensor(groups, dtype=torch.int64))
        self.group_source = source

    @property
    def needs_category_info(self) -> bool:
        """True until the class groups are known (see
        :class:`~longtail_plugin.engine.hooks.TrainCategoryInfoHook`)."""
        return bool((self.class_group < 0).any())

    def bind_category_info(self, info: CategoryInfo) -> None:
        """Group the classes by the instance counts of a training set."""
        self.check_ann_file_classes(info)
        self._set_counts(np.asarray(info.instance_count), info.source)

    def group_columns(self) -> List[Tensor]:
        """Class columns of each foreground group ``1 .. G-1`` (label
        order); an error while the groups are unknown or invalid."""
        name = type(self).__name__
        groups = self.class_group
        if bool((groups < 0).any()):
            raise ValueError(
                f'{name} needs the class groups: set `ann_file` (the '
                'training annotation file, its instance counts are used) '
                'or `instance_count` (one value per class), add '
                "dict(type='TrainCategoryInfoHook') to `default_hooks`, or "
                'load a checkpoint trained with this loss')
        if bool((groups >= self.num_groups).any()):
            raise ValueError(
                f'{name}: class_group holds groups up to '
                f'{int(groups.max())} but bins={self.bins} give groups '
                f'1..{self.num_groups - 1} (checkpoint of other bins?)')
        return [(groups == g).nonzero(as_tuple=True)[0]
                for g in range(1, self.num_groups)]

    def group_sizes(self) -> List[int]:
        """Number of classes in each foreground group."""
        return [int(c.numel()) for c in self.group_columns()]

    def extra_repr(self) -> str:
        sizes = (self.group_sizes()
                 if not self.needs_category_info else 'unset')
        return (f'num_classes={self.num_classes}, bins={self.bins}, '
                f'beta={self.beta}, group_sizes={sizes}')

    # --- layout helpers ---------------------------------------------------
    def _bg_group_logits(self, logits: Tensor) -> Tensor:
        """``[..., 2]``: group 0's ``[z_bg, o_0]``."""
        c = self.num_classes
        return logits[..., c:c + 2]

    def _fg_group_logits(self, logits: Tensor, g: int,
                         cols: Tensor) -> Tensor:
        """``[..., 1 + n_g]``: group ``g``'s ``[o_g, z_j (j in g)]``."""
        o = self.num_classes + 1 + g
        return torch.cat([logits[..., o:o + 1], logits[..., cols]], dim=-1)

    # --- MMDetection's custom classifier protocol -------------------------
    def get_activation(self, cls_score: Tensor) -> Tensor:
        """``[N, C + 1]``: ``softmax_g(j) p_fg`` and ``p_bg`` (see module).
        """
        self.check_width(cls_score)
        cols = self.group_columns()
        logits = upcast(cls_score)
        bg_group = F.softmax(self._bg_group_logits(logits), dim=-1)
        parts, order = [], []
        for g, col in enumerate(cols, start=1):
            if col.numel():
                p = F.softmax(self._fg_group_logits(logits, g, col), dim=-1)
                parts.append(p[..., 1:])
                order.append(col)
        # back from group order to label order
        inverse = torch.argsort(torch.cat(order))
        fg = torch.cat(parts, dim=-1)[..., inverse] * bg_group[..., 1:]
        return torch.cat([fg, bg_group[..., :1]], dim=-1).to(cls_score.dtype)

    def get_accuracy(self, cls_score: Tensor,
                     labels: Tensor) -> Dict[str, Tensor]:
        """Group-0 accuracy over all RoIs (foreground vs background) and the
        top-1 accuracy of the merged class scores over foreground RoIs."""
        self.check_width(cls_score)
        c = self.num_classes
        with torch.no_grad():
            is_fg = (labels >= 0) & (labels < c)
            pred_fg = cls_score[:, c + 1] > cls_score[:, c]
            if labels.numel() == 0:
                acc_obj = cls_score.new_tensor(0.)
            else:
                acc_obj = (pred_fg == is_fg).float().mean() * 100.0
            scores = self.get_activation(cls_score[is_fg])[:, :c]
            acc_cls = top1_accuracy(scores, labels[is_fg])
        return dict(acc_objectness=acc_obj, acc_classes=acc_cls)

    # --- sampling ---------------------------------------------------------
    def sampling_generator(self) -> torch.Generator:
        """CPU generator of this call's "others" draw (see module)."""
        base = self.seed if self.seed is not None else torch.initial_seed()
        gen = torch.Generator()
        gen.manual_seed(_mix_seed(base, int(self.sample_step)))
        return gen

    def sample_others(self, positive: Tensor, candidate: Tensor,
                      gen: torch.Generator) -> Tensor:
        """Boolean ``[N]`` mask of the RoIs a foreground group uses: its
        positives and ``min(floor(beta P), #candidates)`` candidates."""
        num_pos = int(positive.sum())
        used = positive.clone()
        if num_pos == 0:
            return used
        if self.beta is None:
            return used | candidate
        cand = candidate.nonzero(as_tuple=True)[0]
        k = int(self.beta * num_pos)
        if k >= cand.numel():
            return used | candidate
        pick = torch.randperm(cand.numel(), generator=gen)[:k]
        used[cand[pick.to(cand.device)]] = True
        return used

    # --- the loss ---------------------------------------------------------
    def group_terms(self, logits: Tensor, label: Tensor, valid: Tensor,
                    gen: torch.Generator
                    ) -> List[Tuple[Tensor, Tensor, int]]:
        """``(ce, used, n)`` of each group taking part: per-RoI
        cross-entropy ``[N]``, boolean ``[N]`` of the RoIs used, their
        count."""
        c = self.num_classes
        cols = self.group_columns()
        terms = []
        # group 0: background (0) vs foreground (1), every valid RoI
        ce0 = F.cross_entropy(
            self._bg_group_logits(logits), (label < c).long(),
            reduction='none')
        terms.append((ce0, valid, int(valid.sum())))
        # group and slot (1 + position in its group) of each label
        label_group = torch.cat(
            [self.class_group, self.class_group.new_zeros(1)])[label]
        slot = torch.zeros(c + 1, dtype=torch.long, device=logits.device)
        for g, col in enumerate(cols, start=1):
            if col.numel() == 0:
                continue
            slot[col] = torch.arange(
                1, col.numel() + 1, device=logits.device)
            positive = valid & (label_group == g)
            if not bool(positive.any()):
                continue  # a group without positives contributes nothing
            used = self.sample_others(positive, valid & ~positive, gen)
            target = torch.where(positive, slot[label],
                                 torch.zeros_like(label))
            ce = F.cross_entropy(
                self._fg_group_logits(logits, g, col), target,
                reduction='none')
            terms.append((ce, used, int(used.sum())))
        return terms

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """The BAGS loss (see the module docstring).

        Args:
            cls_score: ``[N, C + 1 + G]`` logits.
            label: ``[N]`` integer labels in ``[0, C]``, ``C`` = background.
            weight: optional ``[N]`` label weights (non-negative).
            avg_factor: ignored: each group is normalised by its own
                number of RoIs (group 0's equals the bbox head's value).
            reduction_override: 'none' | 'mean' | 'sum'.

        Returns:
            The loss (``[N]`` per-RoI shares of the 'mean' loss for
            'none').
        """
        reduction, label, weight = self.check_inputs(
            cls_score, label, weight, reduction_override)
        num = cls_score.size(0)
        if weight is not None and bool((weight < 0).any()):
            raise ValueError(f'{type(self).__name__}: label weights must be '
                             'non-negative')
        self.group_columns()  # the groups must be known, even for N = 0
        if num == 0:
            return self.zero_loss(cls_score, reduction)
        logits = upcast(cls_score)
        if weight is None:
            w = logits.new_ones(num)
        else:
            w = weight.to(logits.dtype)
        valid = w > 0
        gen = self.sampling_generator()
        per_roi = logits.new_zeros(num)
        for ce, used, n in self.group_terms(logits, label, valid, gen):
            scale = 1.0 if reduction == 'sum' else 1.0 / max(n, 1)
            per_roi = per_roi + torch.where(used, ce * w,
                                            torch.zeros_like(ce)) * scale
        if self.training:
            with torch.no_grad():
                self.sample_step += 1
        loss = per_roi if reduction == 'none' else per_roi.sum()
        return self.loss_weight * loss
