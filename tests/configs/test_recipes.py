"""Every real-data config against the published recipe, value by value.

Each row of the tables below names a config, a recipe quantity resolved from
the parsed config (batch size, lr, schedule, sampler, scales, classifier
prior, loss hyper-parameters, test-time thresholds, ``load_from``, ...), the
expected value and the file in the authors' repository it comes from. Where
we deliberately differ, the row holds OUR value and ``authors=`` holds
theirs; each such difference is explained in the "Recipe" section of the
method's README. A later edit that drifts from the recipe fails here.

Conventions: "images per batch" is ``train_dataloader.batch_size x 8`` (the
8-GPU setting of every config's comment and of ``auto_scale_lr``); the
schedule is read from MMEngine's ``param_scheduler``.

Configs are parsed with MMEngine only (no model build), except
:func:`test_classifier_prior_is_built` and
:func:`test_simple_refinemask_head_is_built`, which build the heads whose
initialisation / widths the recipe fixes.
"""
import glob
import inspect
import math
import os.path as osp
from functools import lru_cache
from typing import Any, Callable, NamedTuple, Optional

import pytest
from mmengine.config import Config

from longtail_plugin.models.roi_heads import ImageLabelRoIHead

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GPUS = 8

REAL_CONFIGS = sorted(
    osp.relpath(p, osp.join(ROOT, 'configs'))
    for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                       recursive=True)
    if '_base_' not in p and 'synthetic' not in osp.basename(p))

# ---------------------------------------------------------------- sources
EQLV2 = 'tztztztztz/eqlv2 '
EQLV2_E2E = EQLV2 + 'configs/end2end/mask_rcnn_r50_sample1e-3_8x2_1x.py'
EQLV2_RANDOM = EQLV2 + 'configs/end2end/mask_rcnn_r50_8x2_1x.py'
EQLV2_LVIS = EQLV2 + 'configs/lvis/mask_rcnn_r50_fpn_mstrain_1x_lvis_v1.py'
EQLV2_SCHED = EQLV2_LVIS + ' (-> mmdet 2.3 schedules/schedule_1x.py)'
EQLV2_RUNTIME = EQLV2 + 'configs/_base_/default_runtime.py'
EQLV2_HEAD = EQLV2 + 'mmdet/models/roi_heads/bbox_heads/convfc_bbox_head.py'
EQLV2_BBOX_HEAD = EQLV2 + 'mmdet/models/roi_heads/bbox_heads/bbox_head.py'
EQLV2_LOSS = EQLV2 + 'mmdet/models/losses/eqlv2.py'
EQLV2_EQL_CFG = EQLV2 + 'configs/end2end/eql_r50_8x2_1x.py'
EQLV2_EQLV2_CFG = EQLV2 + 'configs/end2end/eqlv2_r50_8x2_1x.py'
EQLD2 = 'tztztztztz/eql.detectron2 projects/EQL/'
EQLD2_BASE = EQLD2 + 'configs/Base-EQL-RCNN-FPN.yaml'
EQLD2_CFG = EQLD2 + 'configs/eql_mask_rcnn_R_50_FPN_1x.yaml'
EQLD2_HEAD = EQLD2 + 'eql/fast_rcnn.py'
UP = 'ModelTC/United-Perception '
UP_EFL50 = UP + 'configs/det/efl/efl_improved_baseline_r50_2x_rfs.yaml'
UP_EFL101 = UP + 'configs/det/efl/efl_improved_baseline_r101_2x_rfs.yaml'
UP_SEQL = UP + 'up/tasks/cls/models/losses/cls_loss.py'
RM = 'zhanggang001/RefineMask '
RM_README = RM + 'README.md ("total batch size 16x1")'
RM_COCO1X = RM + 'configs/refinemask/coco/r50-refinemask-1x.py'
RM_COCO2X = RM + 'configs/refinemask/coco/r50-refinemask-2x.py'
RM_COCO101 = RM + 'configs/refinemask/coco/r101-refinemask-1x.py'
RM_LVIS = RM + 'configs/refinemask/lvis/r50-refinemask-1x.py'
RM_CITY = RM + 'configs/refinemask/cityscapes/r50-refinemask.py'
RM_FAST = RM + 'configs/refinemask/coco/r50-refinemask-1x-faster-better.py'
RM_FAST_HEAD = RM + 'mmdet/models/roi_heads/mask_heads/refine_mask_head.py'
MMDET_CASCADE = ('MMDetection 3.3 cascade_rcnn/cascade-mask-rcnn_r50_fpn_'
                 '1x_coco.py (our extension: no authors\' config)')

MS_SHORT = [640, 672, 704, 736, 768, 800]


# ------------------------------------------------------------ quantities
def _pipeline(cfg) -> list:
    ds = cfg.train_dataloader.dataset
    while 'pipeline' not in ds:
        # wrappers hold `dataset`; ConcatDataset `datasets` (ground truth
        # first, in the self-training config)
        ds = ds.dataset if 'dataset' in ds else ds.datasets[0]
    return ds.pipeline


def _step(cfg, type_: str) -> dict:
    found = [t for t in _pipeline(cfg) if t['type'] == type_]
    assert len(found) == 1, f'{type_} in the train pipeline: {found}'
    return found[0]


def _scheduler(cfg, type_: str) -> dict:
    found = [s for s in cfg.param_scheduler if s['type'] == type_]
    assert len(found) == 1, f'{type_} in param_scheduler: {found}'
    return found[0]


def images_per_batch(cfg):
    return cfg.train_dataloader.batch_size * GPUS


def lr(cfg):
    return cfg.optim_wrapper.optimizer.lr


def optimizer(cfg):
    o = cfg.optim_wrapper.optimizer
    return (o.type, o.momentum, o.weight_decay)


def epochs(cfg):
    return cfg.train_cfg.max_epochs


def lr_steps(cfg):
    s = _scheduler(cfg, 'MultiStepLR')
    return (list(s.milestones), s.gamma)


def warmup(cfg):
    """(start factor, length, unit)."""
    s = _scheduler(cfg, 'LinearLR')
    by_epoch = s.get('by_epoch', True)
    return (s.start_factor, s.end - s.begin,
            'epoch' if by_epoch else 'iter')


def sampler(cfg):
    """('repeat_factor', t) / ('repeat_dataset', times) / ('random', None)."""
    ds = cfg.train_dataloader.dataset
    if ds.type == 'ConcatDataset':  # ground truth (+ pseudo-labels)
        ds = ds.datasets[0]
    if ds.type == 'ClassBalancedDataset':
        return ('repeat_factor', ds.oversample_thr)
    if ds.type == 'RepeatDataset':
        return ('repeat_dataset', ds.times)
    return ('random', None)


def train_scales(cfg):
    """Training (long, short) sizes: a list of choices, or a range."""
    for t in _pipeline(cfg):
        if t['type'] == 'RandomChoiceResize':
            return ('choice', [tuple(s) for s in t['scales']])
        if t['type'] == 'RandomResize':
            return ('range', [tuple(s) for s in t['scale']])
        if t['type'] == 'Resize':
            return ('fixed', [tuple(t['scale'])])
    raise AssertionError('no resize in the train pipeline')


def poly2mask(cfg):
    return _step(cfg, 'LoadAnnotations').get('poly2mask', True)


def with_mask(cfg):
    return _step(cfg, 'LoadAnnotations').get('with_mask', False)


def val_interval(cfg):
    return cfg.train_cfg.get('val_interval', 1)


def load_from(cfg):
    return cfg.get('load_from')


def grad_clip(cfg):
    clip = cfg.optim_wrapper.get('clip_grad')
    return None if clip is None else (clip.max_norm, clip.norm_type)


def backbone(cfg):
    b = cfg.model.backbone
    init = b.get('init_cfg')
    ckpt = init.checkpoint if init else None
    return (b.depth, ckpt, b.frozen_stages, b.norm_eval,
            b.norm_cfg.requires_grad)


def pad_size_divisor(cfg):
    return cfg.model.data_preprocessor.pad_size_divisor


def _roi_bbox_head(cfg):
    return cfg.model.roi_head.bbox_head


def _dense_head(cfg):
    return cfg.model.bbox_head


def _prior_of(init_cfg, names) -> Optional[float]:
    """``bias_prob`` that ``init_cfg`` gives the classifier named in
    ``names``; None when it leaves the bias at MMDetection's 0."""
    if init_cfg is None:
        return None
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    for c in cfgs:
        overrides = c.get('override', [])
        overrides = overrides if isinstance(overrides,
                                            (list, tuple)) else [overrides]
        for o in overrides:
            if o.get('name') in names:
                # an override with only `name` takes its parent's arguments
                src = o if len(o) > 1 else c
                return src.get('bias_prob')
    return None


def roi_cls_prior(cfg):
    return _prior_of(_roi_bbox_head(cfg).get('init_cfg'), ('fc_cls', ))


def dense_cls_prior(cfg):
    return _prior_of(_dense_head(cfg).get('init_cfg'),
                     ('retina_cls', 'atss_cls'))


def _loss_params(loss, keys):
    return {k: loss.get(k) for k in keys}


def eql_loss(cfg):
    return _loss_params(_roi_bbox_head(cfg).loss_cls,
                        ('type', 'num_classes', 'lambda_',
                         'frequency_denominator'))


def eqlv2_loss(cfg):
    return _loss_params(_roi_bbox_head(cfg).loss_cls,
                        ('type', 'num_classes', 'gamma', 'mu', 'alpha'))


def softmax_eql_loss(cfg):
    return _loss_params(_roi_bbox_head(cfg).loss_cls,
                        ('type', 'num_classes', 'indicator', 'tau'))


def bags_loss(cfg):
    return _loss_params(_roi_bbox_head(cfg).loss_cls,
                        ('type', 'num_classes', 'bins', 'beta'))


def mask_loss(cfg):
    loss = cfg.model.roi_head.mask_head.loss_mask
    return {k: v for k, v in loss.items()}


def mask_assignment(cfg):
    """(RoI head type, mask extractor type, gamma, min_ratio)."""
    h = cfg.model.roi_head
    e = h.mask_roi_extractor
    return (h.type, e.type, e.get('gamma'), e.get('min_ratio'))


def trained_part(cfg):
    """What decoupled fine-tuning trains and re-initialises."""
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h['type'] == 'FreezeModulesHook']
    if not hooks:
        return None
    h = hooks[0]
    return (h.get('trainable'), h.get('frozen'), h.get('reinit'))


def dense_loss_cls(cfg):
    return _loss_params(
        _dense_head(cfg).loss_cls,
        ('type', 'num_classes', 'use_sigmoid', 'gamma', 'alpha',
         'scale_factor', 'loss_weight'))


def dense_box(cfg):
    """(loss type, loss weight, decoded, coder stds)."""
    h = _dense_head(cfg)
    return (h.loss_bbox.type, h.loss_bbox.loss_weight, h.reg_decoded_bbox,
            list(h.bbox_coder.target_stds))


def dense_anchors(cfg):
    a = _dense_head(cfg).anchor_generator
    return (list(a.scales), list(a.ratios), list(a.strides))


def dense_head_norm(cfg):
    n = _dense_head(cfg).norm_cfg
    return (n.type, n.num_groups)


def dense_head_type(cfg):
    return (cfg.model.type, _dense_head(cfg).type)


def dense_assigner(cfg):
    a = cfg.model.train_cfg.assigner
    return (a.type, a.get('topk'))


def dense_quality(cfg):
    """Quality branch of the head (None for RetinaHead)."""
    h = _dense_head(cfg)
    if h.type != 'ATSSHead':
        return None
    return ('centerness', h.loss_centerness.type,
            h.loss_centerness.loss_weight)


def dense_test(cfg):
    t = cfg.model.test_cfg
    return (t.nms_pre, t.score_thr, t.nms.iou_threshold, t.max_per_img)


def rcnn_test(cfg):
    t = cfg.model.test_cfg.rcnn
    return (t.score_thr, t.nms.iou_threshold, t.max_per_img)


def rcnn_sampler(cfg):
    r = cfg.model.train_cfg.rcnn
    r = r[0] if isinstance(r, (list, tuple)) else r
    return (r.sampler.type, r.sampler.num, r.sampler.pos_fraction)


def refine_box_losses(cfg):
    h = _roi_bbox_head(cfg)
    h = h[0] if isinstance(h, (list, tuple)) else h
    return (h.loss_cls.type, h.loss_cls.loss_weight, h.loss_bbox.type,
            h.loss_bbox.loss_weight)


def _head_arg(head_cfg, name):
    """``head_cfg[name]``, or the registered head's default for it."""
    if name in head_cfg:
        return head_cfg[name]
    import inspect

    import longtail_plugin  # noqa: F401  (registers the heads)
    from mmdet.registry import MODELS
    cls = MODELS.get(head_cfg.type)
    return inspect.signature(cls.__init__).parameters[name].default


def refine_mask_head(cfg):
    m = cfg.model.roi_head.mask_head
    return {
        'type': m.type,
        'stage_num_classes': tuple(_head_arg(m, 'stage_num_classes')),
        'stage_sup_size': tuple(_head_arg(m, 'stage_sup_size')),
        'stage_loss_weights': tuple(_head_arg(m, 'stage_loss_weights')),
        'boundary_width': _head_arg(m, 'boundary_width'),
    }


def simple_refine_mask_head(cfg):
    m = cfg.model.roi_head.mask_head
    return (m.type, m.num_classes, m.semantic_channels,
            m.get('semantic_transform'), m.get('global_context'),
            tuple(m.stage_loss_weights))


def mask_test(cfg):
    return cfg.model.test_cfg.rcnn.mask_thr_binary


# ------------------------------------------------------------------- rows
class Row(NamedTuple):
    config: str
    quantity: Callable[[Any], Any]
    expected: Any
    source: str
    authors: Any = None  # the authors' value where ours deliberately differs

    @property
    def id(self) -> str:
        return f'{self.config}::{self.quantity.__name__}'


def _rows(configs, table):
    return [
        Row(c, q, v, s, *rest) for c in configs for q, v, s, *rest in table
    ]


def _backbone_rows(configs, bn_trained, src50, src101, authors50=None):
    """ImageNet ResNet-50/101 (by the config's name), stem + stage 1
    frozen, BN in eval mode; ``bn_trained``: BN affine parameters trained."""
    rows = []
    for c in configs:
        depth = 101 if 'r101' in c else 50
        value = (depth, f'torchvision://resnet{depth}', 1, True, bn_trained)
        rows.append(Row(c, backbone, value, src101 if depth == 101 else src50,
                        None if depth == 101 else authors50))
    return rows


# EQL v1 / EQL v2 / Softmax-EQL on LVIS v1: the authors' mmdet-2 recipe.
_LVIS_V1_MS_1X = [
    (images_per_batch, 16, EQLV2_E2E + ' (samples_per_gpu=2, 8x2)'),
    (lr, 0.02, EQLV2_SCHED),
    (optimizer, ('SGD', 0.9, 0.0001), EQLV2_SCHED),
    (epochs, 12, EQLV2_SCHED),
    (lr_steps, ([8, 11], 0.1), EQLV2_SCHED),
    (warmup, (0.001, 500, 'iter'), EQLV2_SCHED),
    (sampler, ('random', None), EQLV2_RANDOM + ' (oversample_thr=0.0)'),
    (train_scales, ('choice', [(1333, s) for s in MS_SHORT]), EQLV2_E2E),
    (poly2mask, False, EQLV2_E2E),
    (rcnn_sampler, ('RandomSampler', 512, 0.25), EQLV2_LVIS),
    (rcnn_test, (0.0001, 0.5, 300), EQLV2_LVIS),
    (load_from, None, EQLV2_RUNTIME),
    (val_interval, 12, EQLV2_E2E + ' (evaluation interval=12)'),
    (grad_clip, None, EQLV2_SCHED + ' (grad_clip=None)'),
]
EQL_V1 = ['eql/mask-rcnn_r50_fpn_eql_1x_lvis-v1.py',
          'eql/mask-rcnn_r101_fpn_eql_1x_lvis-v1.py']
EQLV2_V1 = ['eqlv2/mask-rcnn_r50_fpn_eqlv2_1x_lvis-v1.py',
            'eqlv2/mask-rcnn_r101_fpn_eqlv2_1x_lvis-v1.py']
SEQL_V1 = ['softmax_eql/mask-rcnn_r50_fpn_softmax-eql_1x_lvis-v1.py',
           'softmax_eql/mask-rcnn_r101_fpn_softmax-eql_1x_lvis-v1.py']
ROWS = []
ROWS += _rows(EQL_V1 + EQLV2_V1 + SEQL_V1, _LVIS_V1_MS_1X)
ROWS += _rows(EQL_V1 + EQLV2_V1, [
    (roi_cls_prior, 0.001, EQLV2_HEAD + ' (bias_init_with_prob(0.001))'),
])
ROWS += _rows(SEQL_V1, [
    (roi_cls_prior, None, EQLV2_BBOX_HEAD + ' (softmax: bias 0)'),
    (softmax_eql_loss, dict(type='SoftmaxEqualizationLoss', num_classes=1203,
                            indicator='pos', tau=1.0), UP_SEQL),
])
ROWS += _rows(EQL_V1, [
    (eql_loss, dict(type='EqualizationLoss', num_classes=1203,
                    lambda_=1.1e-3,
                    frequency_denominator='annotated_images'),
     EQLV2_EQL_CFG + ' (lambda_=0.0011; frequencies over 99,388 '
     'annotated images)'),
])
ROWS += _rows(EQLV2_V1, [
    (eqlv2_loss, dict(type='EqualizationLossV2', num_classes=1203,
                      gamma=12.0, mu=0.8, alpha=4.0),
     EQLV2_EQLV2_CFG + ' -> ' + EQLV2_LOSS + ' defaults'),
])
ROWS += _backbone_rows(
    EQL_V1 + EQLV2_V1 + SEQL_V1, True,
    EQLV2_LVIS + ' (mmdet 2.3 models/mask_rcnn_r50_fpn.py)',
    EQLV2_LVIS + ' with a ResNet-101 (no released R101 config)')

# LVIS v0.5: EQL v1 from the detectron2 project; EQL v2 has no released
# v0.5 config (its v1 recipe on MMDetection's v0.5 2x schedule).
EQL_V05 = ['eql/mask-rcnn_r50_fpn_eql_2x_lvis-v0.5.py']
EQLV2_V05 = ['eqlv2/mask-rcnn_r50_fpn_eqlv2_2x_lvis-v0.5.py',
             'eqlv2/mask-rcnn_r101_fpn_eqlv2_2x_lvis-v0.5.py']
_D2_SCHED = ('90k iterations x 16 images, lr x0.1 at 60k and 80k '
             '(~25.4 epochs, steps at ~16.9 and ~22.6)')
ROWS += _rows(EQL_V05 + EQLV2_V05, [
    (images_per_batch, 16, EQLD2_BASE + ' (IMS_PER_BATCH: 16)'),
    (lr, 0.02, EQLD2_BASE + ' (BASE_LR: 0.02)'),
    (epochs, 24, EQLD2_BASE + ' (MAX_ITER: 90000)', _D2_SCHED),
    (lr_steps, ([16, 22], 0.1), EQLD2_BASE + ' (STEPS: 60000, 80000)',
     _D2_SCHED),
    (sampler, ('random', None), EQLD2_CFG + ' (no repeat-factor sampler)'),
    (train_scales, ('choice', [(1333, s) for s in MS_SHORT]),
     EQLD2_CFG + ' (MIN_SIZE_TRAIN)'),
    (poly2mask, False, EQLD2_CFG + ' (detectron2 keeps polygons)'),
    (rcnn_test, (0.0001, 0.5, 300),
     EQLD2_CFG + ' (SCORE_THRESH_TEST, DETECTIONS_PER_IMAGE)'),
    (roi_cls_prior, 0.001, EQLD2_HEAD + ' (prior_prob = 0.001)'),
    (load_from, None, EQLD2_CFG + ' (ImageNet weights only)'),
    (val_interval, 24, EQLD2_BASE + ' (evaluation after training only)'),
])
ROWS += _rows(EQL_V05, [
    (eql_loss, dict(type='EqualizationLoss', num_classes=1230,
                    lambda_=1.76e-3,
                    frequency_denominator='annotated_images'),
     EQLD2_BASE + ' (LAMBDA: 0.00177; frequencies over 56,740 annotated '
     'images)'),
])
ROWS += _backbone_rows(
    EQL_V05, True, EQLD2_CFG, None,
    'detectron2://ImageNetPretrained/MSRA/R-50.pkl (caffe-style)')
ROWS += _rows(EQLV2_V05, [
    (eqlv2_loss, dict(type='EqualizationLossV2', num_classes=1230,
                      gamma=12.0, mu=0.8, alpha=4.0),
     EQLV2_LOSS + ' (defaults gamma=12, mu=0.8, alpha=4.0)'),
])
ROWS += _backbone_rows(
    EQLV2_V05, True, EQLV2_LVIS + ' (no released v0.5 config)',
    EQLV2_LVIS + ' with a ResNet-101 (no released v0.5 / R101 config)')

# EFL: the authors' "improved baseline" (United-Perception).
EFL_ATSS = ['efl/atss_r50_fpn_efl_2x_lvis-v1.py',
            'efl/atss_r101_fpn_efl_2x_lvis-v1.py']
FOCAL_ATSS = ['efl/atss_r50_fpn_focal_2x_lvis-v1.py',
              'efl/atss_r101_fpn_focal_2x_lvis-v1.py']
EFL_RETINA = ['efl/retinanet_r50_fpn_efl_2x_lvis-v1.py']
FOCAL_RETINA = ['efl/retinanet_r50_fpn_focal_2x_lvis-v1.py']
EFL_ALL = EFL_ATSS + FOCAL_ATSS + EFL_RETINA + FOCAL_RETINA
ROWS += _rows(EFL_ALL, [
    (images_per_batch, 16, UP_EFL50 + ' (batch_size 1 x 16 GPUs)'),
    (lr, 0.02, UP_EFL50 + ' (lr 0.00125 x 16 images)'),
    (optimizer, ('SGD', 0.9, 0.0001), UP_EFL50),
    (epochs, 24, UP_EFL50 + ' (max_epoch: 24)'),
    (lr_steps, ([16, 22], 0.1), UP_EFL50 + ' (milestones: [16, 22])'),
    (warmup, (0.001, 1, 'epoch'), UP_EFL50 + ' (warmup_epochs: 1)'),
    (sampler, ('repeat_factor', 0.001), UP_EFL50 + ' (repeat_factor t)'),
    (train_scales, ('choice', [(1333, s) for s in MS_SHORT]), UP_EFL50),
    (with_mask, False, UP_EFL50 + ' (iou_types: [bbox])'),
    (pad_size_divisor, 64, UP_EFL50 + ' (alignment: 64)'),
    (grad_clip, (35, 2), UP_EFL50 + ' (grad_clipper max_norm 35)'),
    (dense_cls_prior, 0.001, UP_EFL50 + ' (init_prior: 0.001)'),
    (dense_head_norm, ('GN', 32), UP_EFL50 + ' (normalize: gn)'),
    (dense_anchors, ([6, 8], [1.0], [8, 16, 32, 64, 128]),
     UP_EFL50 + ' (anchor_scales, anchor_ratios, out_strides)'),
    (dense_box, ('GIoULoss', 1.0, True, [1.0, 1.0, 1.0, 1.0]),
     UP_EFL50 + ' (loc_loss giou, loss_weight 1.0)'),
    (dense_test, (6000, 0.0, 0.5, 300),
     UP_EFL50 + ' (pre_nms_top_n 6000, pre_nms_score_thresh 0, top_n 300)'),
    (load_from, None, UP_EFL50 + ' (ImageNet pretrain_model only)'),
    (val_interval, 24, UP_EFL50 + ' (test_freq: 24)'),
])
ROWS += _rows(EFL_ATSS + EFL_RETINA, [
    (dense_loss_cls, dict(type='EqualizedFocalLoss', num_classes=1203,
                          use_sigmoid=True, gamma=2.0, alpha=0.25,
                          scale_factor=8.0, loss_weight=1.0),
     UP_EFL50 + ' (focal_gamma 2.0, focal_alpha 0.25, scale_factor 8.0)'),
])
ROWS += _rows(FOCAL_ATSS + FOCAL_RETINA, [
    (dense_loss_cls, dict(type='FocalLoss', num_classes=None,
                          use_sigmoid=True, gamma=2.0, alpha=0.25,
                          scale_factor=None, loss_weight=1.0),
     UP_EFL50 + ' with the focal loss (the paper\'s baseline)'),
])
ROWS += _rows(EFL_ATSS + FOCAL_ATSS, [
    (dense_head_type, ('ATSS', 'ATSSHead'), UP_EFL50 + ' (RetinaHeadWithIOU)'),
    (dense_assigner, ('ATSSAssigner', 18), UP_EFL50 + ' (atss top_n: 18)'),
    (dense_quality, ('centerness', 'CrossEntropyLoss', 1.0),
     UP_EFL50 + ' (iou_branch_loss sigmoid CE, weight 1.0)',
     ('iou', 'sigmoid_cross_entropy', 1.0)),
])
ROWS += _rows(EFL_RETINA + FOCAL_RETINA, [
    (dense_head_type, ('RetinaNet', 'RetinaHead'),
     UP_EFL50 + ' (RetinaHeadWithIOU)', ('ATSS+IoU', 'RetinaHeadWithIOU')),
    (dense_assigner, ('MaxIoUAssigner', None), UP_EFL50 + ' (atss top_n 18)',
     ('atss', 18)),
    (dense_quality, None, UP_EFL50, ('iou', 'sigmoid_cross_entropy', 1.0)),
])
ROWS += _backbone_rows(
    EFL_ALL, False, UP_EFL50 + ' (resnet50, frozen_layers [0, 1], freeze_bn)',
    UP_EFL101 + ' (resnet101, frozen_layers [0, 1], freeze_bn)')

# RefineMask (the authors' mmdet-2 configs; 16 images per batch, README).
RM_COCO_1X = ['refinemask/mask-rcnn_r50_fpn_refinemask_1x_coco.py',
              'refinemask/mask-rcnn_r101_fpn_refinemask_1x_coco.py']
RM_COCO_2X = ['refinemask/mask-rcnn_r50_fpn_refinemask_2x_coco.py',
              'refinemask/mask-rcnn_r101_fpn_refinemask_2x_coco.py']
RM_SIMPLE_COCO = ['refinemask/mask-rcnn_r50_fpn_simple-refinemask_1x_coco.py']
RM_CASCADE = ['refinemask/cascade-mask-rcnn_r50_fpn_refinemask_1x_coco.py']
RM_LVIS_CFG = [
    'refinemask/mask-rcnn_r50_fpn_refinemask_sample1e-3_ms-1x_lvis-v1.py',
    'refinemask/mask-rcnn_r101_fpn_refinemask_sample1e-3_ms-1x_lvis-v1.py'
]
RM_SIMPLE_LVIS = [
    'refinemask/mask-rcnn_r50_fpn_simple-refinemask_sample1e-3_ms-1x_'
    'lvis-v1.py'
]
RM_CITY_CFG = ['refinemask/mask-rcnn_r50_fpn_refinemask_1x_cityscapes.py']
RM_ALL = (RM_COCO_1X + RM_COCO_2X + RM_SIMPLE_COCO + RM_CASCADE + RM_LVIS_CFG +
          RM_SIMPLE_LVIS + RM_CITY_CFG)
ROWS += _rows(RM_ALL, [
    (images_per_batch, 16, RM_README),
    (optimizer, ('SGD', 0.9, 0.0001), RM_COCO1X),
    (warmup, (0.001, 500, 'iter'), RM_COCO1X + ' (warmup_iters=500)'),
    (grad_clip, (35, 2), RM_COCO1X + ' (grad_clip max_norm=35)'),
    (rcnn_sampler, ('RandomSampler', 512, 0.25), RM_COCO1X),
    (mask_test, 0.5, RM_COCO1X + ' (mask_thr_binary=0.5)'),
    (load_from, None, RM_COCO1X + ' (load_from = None)'),
])
ROWS += _rows([c for c in RM_ALL if c not in RM_CITY_CFG], [
    (lr, 0.02, RM_COCO1X),
    (poly2mask, False, RM_COCO1X + ' (poly2mask=False)'),
])
_COCO_BOX = ('CrossEntropyLoss', 2.0, 'L1Loss', 2.0)


def _rm_head(*stage_num_classes):
    return dict(type='RefineMaskHead', stage_num_classes=stage_num_classes,
                stage_sup_size=(14, 28, 56, 112),
                stage_loss_weights=(0.25, 0.5, 0.75, 1.0), boundary_width=2)


ROWS += _rows(RM_COCO_1X + RM_COCO_2X + RM_SIMPLE_COCO, [
    (refine_box_losses, _COCO_BOX, RM_COCO1X + ' (loss_weight=2.0)'),
    (sampler, ('random', None), RM_COCO1X + ' (CocoDataset)'),
    (train_scales, ('fixed', [(1333, 800)]), RM_COCO1X),
    (rcnn_test, (0.05, 0.5, 100), RM_COCO1X),
])
ROWS += _rows(RM_COCO_1X + RM_SIMPLE_COCO, [
    (epochs, 12, RM_COCO1X + ' (total_epochs = 12)'),
    (lr_steps, ([8, 11], 0.1), RM_COCO1X + ' (step=[8, 11])'),
    (val_interval, 12, RM_COCO1X + ' (evaluation interval=12)'),
])
ROWS += _rows(RM_COCO_2X, [
    (epochs, 24, RM_COCO2X + ' (total_epochs = 24)'),
    (lr_steps, ([16, 22], 0.1), RM_COCO2X + ' (step=[16, 22])'),
    (val_interval, 12, RM_COCO2X + ' (evaluation interval=12)'),
])
ROWS += _rows(RM_COCO_1X + RM_COCO_2X, [
    (refine_mask_head, _rm_head(80, 80, 80, 80),
     RM_COCO1X + ' (stage_num_classes, stage_sup_size, '
     'stage_instance_loss_weight, boundary_width)'),
])
ROWS += _rows(RM_SIMPLE_COCO, [
    (simple_refine_mask_head,
     ('SimpleRefineMaskHead', 80, 256, 'in', 'identity',
      (0.5, 0.75, 0.75, 1.0)),
     RM_FAST + ' (conv_out_channels_semantic=256, '
     'stage_instance_loss_weight; ' + RM_FAST_HEAD + ': semantic_transform_in '
     'only, global RoI mean added as is)'),
])
ROWS += _rows(RM_SIMPLE_LVIS, [
    (simple_refine_mask_head,
     ('SimpleRefineMaskHead', 1203, 256, 'in', 'identity',
      (0.5, 0.75, 0.75, 1.0)),
     RM_FAST + ' on the LVIS recipe (no released LVIS config)'),
])
ROWS += _rows(RM_LVIS_CFG + RM_SIMPLE_LVIS, [
    (refine_box_losses, _COCO_BOX, RM_LVIS + ' (loss_weight=2.0)'),
    (sampler, ('repeat_factor', 0.001), RM_LVIS + ' (oversample_thr=0.001)'),
    (train_scales, ('choice', [(1333, s) for s in MS_SHORT]), RM_LVIS),
    (rcnn_test, (0.0001, 0.5, 300), RM_LVIS),
    (epochs, 12, RM_LVIS + ' (total_epochs = 12)'),
    (lr_steps, ([8, 11], 0.1), RM_LVIS + ' (step=[8, 11])'),
    (val_interval, 12, RM_LVIS + ' (evaluation interval=12)'),
])
ROWS += _rows(RM_LVIS_CFG, [
    (refine_mask_head, _rm_head(1203, 1203, 1203, 1),
     RM_LVIS + ' (stage_num_classes=[1203, 1203, 1203, 1])'),
])
ROWS += _rows(RM_CITY_CFG, [
    (lr, 0.01, RM_CITY + ' (lr=0.01)'),
    (epochs, 8, RM_CITY + ' (total_epochs = 8)'),
    (lr_steps, ([7], 0.1), RM_CITY + ' (step=[7])'),
    (sampler, ('repeat_dataset', 8), RM_CITY + ' (RepeatDataset times=8)'),
    (train_scales, ('range', [(2048, 800), (2048, 1024)]),
     RM_CITY + ' (img_scale=[(2048, 800), (2048, 1024)], range mode)'),
    (poly2mask, True, RM_CITY + ' (LoadAnnotations default)'),
    (refine_box_losses, ('CrossEntropyLoss', 2.0, 'SmoothL1Loss', 2.0),
     RM_CITY + ' (loss_weight=2.0)'),
    (refine_mask_head, _rm_head(8, 8, 8, 8),
     RM_CITY + ' (stage_num_classes=[8, 8, 8, 8])'),
    (rcnn_test, (0.05, 0.5, 100), RM_CITY),
    (val_interval, 1, RM_CITY + ' (evaluation: default interval)'),
])
ROWS += _rows(RM_CASCADE, [
    (epochs, 12, MMDET_CASCADE),
    (lr_steps, ([8, 11], 0.1), MMDET_CASCADE),
    (sampler, ('random', None), MMDET_CASCADE),
    (train_scales, ('fixed', [(1333, 800)]), MMDET_CASCADE),
    (rcnn_test, (0.05, 0.5, 100), MMDET_CASCADE),
    (refine_mask_head, _rm_head(80, 80, 80, 80),
     RM_COCO1X + ' head at every cascade stage'),
    (val_interval, 1, MMDET_CASCADE),
])
ROWS += _backbone_rows(
    RM_ALL, True, RM_COCO1X + " (pretrained='torchvision://resnet50')",
    RM_COCO101 + " (pretrained='torchvision://resnet101')")


# The LVIS Challenge 2020 recipe and BAGS (configs/lvis_traveler/). BAGS in
# its own protocol follows the authors' released config; the challenge
# report released no code or config, so the recipe rows hold our values and
# say so (configs/lvis_traveler/README.md lists each choice).
BAGS = 'FishYuLi/BalancedGroupSoftmax '
BAGS_CFG = BAGS + 'configs/bags/gs_mask_rcnn_r50_fpn_1x_lvis.py'
TRAVELER = ('Tan et al., 1st Place Solution of LVIS Challenge 2020, '
            'arXiv:2009.01559')
OURS = ' (the report gives no value: ours, see configs/lvis_traveler/README.md)'
LT = 'lvis_traveler/'
LT_BAGS = [LT + 'mask-rcnn_r50_fpn_bags-decoupled_1x_lvis-v1.py']
LT_STAGE2 = [LT + 'mask-rcnn_r50_fpn_traveler-stage2-bags-balanced-mask-'
             'ratio-aware_1x_lvis-v1.py']
LT_STAGE1 = [LT + 'mask-rcnn_r50_fpn_traveler-stage1-eql_sample1e-3_ms-1x_'
             'lvis-v1.py',
             LT + 'mask-rcnn_r50_fpn_traveler-stage1-eql-self-training_'
             'sample1e-3_ms-1x_lvis-v1.py']
LT_MASK = [LT + 'mask-rcnn_r50_fpn_balanced-mask-loss_sample1e-3_ms-1x_'
           'lvis-v1.py',
           LT + 'mask-rcnn_r50_fpn_ratio-aware-assign_sample1e-3_ms-1x_'
           'lvis-v1.py']
MMDET_LVIS_SAMPLE = ('MMDetection 3.3 lvis/mask-rcnn_r50_fpn_sample1e-3_'
                     'ms-1x_lvis-v1.py (stock Mask R-CNN)')
_BAGS_MASK = dict(type='BalancedMaskLoss', gamma=1.0, min_fraction=0.02,
                  loss_weight=1.0)
ROWS += _rows(LT_BAGS + LT_STAGE2 + LT_STAGE1 + LT_MASK, [
    (images_per_batch, 16, BAGS_CFG + ' (8 GPUs x 2 images)'),
    (optimizer, ('SGD', 0.9, 0.0001), BAGS_CFG),
    (epochs, 12, BAGS_CFG + ' (total_epochs = 12)'),
    (lr_steps, ([8, 11], 0.1), BAGS_CFG + ' (step=[8, 11])'),
    (rcnn_test, (0.0001, 0.5, 300), EQLV2_LVIS + ' (LVIS test setting)'),
    (val_interval, 12, BAGS_CFG + ' (evaluation after training)'),
    (rcnn_sampler, ('RandomSampler', 512, 0.25), BAGS_CFG),
])
ROWS += _rows(LT_BAGS + LT_STAGE2, [
    (lr, 0.01, BAGS_CFG + ' (lr=0.01)'),
    (warmup, (1.0 / 3, 500, 'iter'), BAGS_CFG + ' (warmup_iters=500, '
     'warmup_ratio=1/3)'),
    (grad_clip, (35, 2), BAGS_CFG + ' (grad_clip max_norm=35)'),
    (sampler, ('random', None), BAGS_CFG + ' (no oversampling)'),
    (train_scales, ('choice', [(1333, s) for s in MS_SHORT]),
     EQLV2_E2E + ' (the baseline BAGS starts from)'),
    (poly2mask, False, EQLV2_E2E),
    (bags_loss, dict(type='BalancedGroupSoftmaxLoss', num_classes=1203,
                     bins=(10, 100, 1000), beta=8.0),
     BAGS_CFG + ' (num_bins=5, others_sample_ratio=8.0)'),
])
ROWS += _rows(LT_BAGS, [
    (load_from, 'work_dirs/mask-rcnn_r50_fpn_random-ms-1x_lvis-v1/'
     'epoch_12.pth', BAGS_CFG + ' (load_from the trained baseline)'),
    (trained_part, (['roi_head.bbox_head.fc_cls'], None,
                    ['roi_head.bbox_head.fc_cls']),
     BAGS_CFG + ' (selectp=1: only fc_cls trains)'),
    (backbone, (50, 'torchvision://resnet50', 1, True, True),
     BAGS_CFG + ' (frozen by the hook, not by frozen_stages)'),
])
ROWS += _rows(LT_STAGE2, [
    (load_from, 'work_dirs/mask-rcnn_r50_fpn_traveler-stage1-eql_sample1e-3'
     '_ms-1x_lvis-v1/epoch_12.pth', TRAVELER + ' (stage 2 starts from '
     'stage 1)'),
    (trained_part, (None, None, ['roi_head.bbox_head.fc_cls']),
     TRAVELER + ' ("we first freeze the backbone"; the mask head trains)'),
    (backbone, (50, 'torchvision://resnet50', 4, True, True),
     TRAVELER + ' (backbone frozen: frozen_stages=4)'),
    (mask_loss, _BAGS_MASK, TRAVELER + ' (balanced mask loss)' + OURS),
    (mask_assignment, ('RatioAwareRoIHead', 'RatioAwareRoIExtractor', 1.0,
                       1.0 / 16), TRAVELER + ' (mask-proposal assignment)'
     + OURS),
])
ROWS += _rows(LT_STAGE1 + LT_MASK, [
    (lr, 0.02, EQLV2_SCHED),
    (warmup, (0.001, 500, 'iter'), EQLV2_SCHED),
    (grad_clip, None, EQLV2_SCHED + ' (grad_clip=None)'),
    (train_scales, ('choice', [(1333, s) for s in MS_SHORT]), EQLV2_E2E),
    (load_from, None, EQLV2_RUNTIME),
    (backbone, (50, 'torchvision://resnet50', 1, True, True), EQLV2_LVIS),
])
ROWS += _rows(LT_STAGE1, [
    (sampler, ('repeat_factor', 0.001), TRAVELER + ' (repeat-factor '
     'sampling; t = 1e-3 as MMDetection\'s LVIS configs)'),
    (poly2mask, False, EQLV2_E2E),
    (eql_loss, dict(type='EqualizationLoss', num_classes=1203,
                    lambda_=1.1e-3,
                    frequency_denominator='annotated_images'),
     TRAVELER + ' (EQL in stage 1) -> ' + EQLV2_EQL_CFG + ' (lambda_)'),
])
ROWS += _rows(LT_MASK, [
    (sampler, ('repeat_factor', 0.001), MMDET_LVIS_SAMPLE),
    (poly2mask, True, MMDET_LVIS_SAMPLE + ' (bitmap masks)'),
])
ROWS += _rows(LT_MASK[:1], [
    (mask_loss, _BAGS_MASK, TRAVELER + ' (balanced mask loss)' + OURS),
])
ROWS += _rows(LT_MASK[1:], [
    (mask_assignment, ('RatioAwareRoIHead', 'RatioAwareRoIExtractor', 1.0,
                       1.0 / 16), TRAVELER + ' (mask-proposal assignment)'
     + OURS),
])



# CLIS (configs/clis/): no code or recipe was released (waveboo/CLIS holds a
# README and data lists only), so the rows pin our choices; the image-level
# source and the anchor's loss follow Detic (MMDetection projects/Detic_new).
DETIC = 'open-mmlab/mmdetection projects/Detic_new/'
DETIC_CFG = DETIC + 'configs/detic_centernet2_r50_fpn_4x_lvis_in21k-lvis.py'
DETIC_HEAD = DETIC + 'detic/detic_bbox_head.py (image_label_losses)'
CLIS_OURS = ' (no released recipe: ours, see configs/clis/README.md)'
CLIS_REAL = ['clis/mask-rcnn_r50_fpn_clis_sample1e-3_ms-90k_lvis-v1-'
             'imagenet-lvis.py',
             'clis/mask-rcnn_r50_fpn_detic-image-label_sample1e-3_ms-90k_'
             'lvis-v1-imagenet-lvis.py']


def image_level_source(cfg):
    """(type, data_root, ann_file, image prefix) of the second source."""
    ds = cfg.train_dataloader.dataset.datasets[1]
    return (ds.type, ds.data_root, ds.ann_file, ds.data_prefix.img)


def source_ratio(cfg):
    s = cfg.train_dataloader.sampler
    return (s.type, s.batch_size, list(s.source_ratio))


def iterations(cfg):
    """(loop, max_iters, lr steps)."""
    return (cfg.train_cfg.type, cfg.train_cfg.max_iters,
            lr_steps(cfg)[0])


def image_label_loss(cfg):
    roi = cfg.model.roi_head
    if roi.type != 'ImageLabelRoIHead':
        return (roi.type, roi.image_loss_weight, None)
    default = inspect.signature(
        ImageLabelRoIHead.__init__).parameters['loss_form'].default
    return (roi.type, roi.image_loss_weight, roi.get('loss_form', default))


ROWS += _rows(CLIS_REAL, [
    (images_per_batch, 32, MMDET_LVIS_SAMPLE + ' (16 LVIS images) + 16 '
     'image-level' + CLIS_OURS),
    (source_ratio, ('MultiSourceSampler', 4, [2, 2]), 'ours: 2 + 2 per GPU '
     '(1:1 beat 2:1 on the synthetic set), Detic 1:4 on CenterNet2 ('
     + DETIC_CFG + ')' + CLIS_OURS),
    (image_level_source, ('ImageLevelDataset', 'data/imagenet/',
                          'annotations/imagenet_lvis_image_info.json',
                          'ImageNet-LVIS/'), DETIC_CFG + ' (dataset_cls)'),
    (sampler, ('repeat_factor', 0.001), MMDET_LVIS_SAMPLE),
    (train_scales, ('choice', [(1333, s) for s in MS_SHORT]),
     MMDET_LVIS_SAMPLE),
    (lr, 0.02, MMDET_LVIS_SAMPLE),
    (optimizer, ('SGD', 0.9, 0.0001), MMDET_LVIS_SAMPLE),
    (iterations, ('IterBasedTrainLoop', 90000, [60000, 80000]),
     'detectron2 LVIS 1x (MAX_ITER 90000, STEPS 60000/80000): the '
     'multi-source sampler has no epochs' + CLIS_OURS),
    (rcnn_test, (0.0001, 0.5, 300), MMDET_LVIS_SAMPLE),
])
ROWS += _rows(CLIS_REAL[1:], [
    (image_label_loss, ('ImageLabelRoIHead', 0.1, 'ce'),
     DETIC_HEAD + ' (image_loss_weight=0.1; max-size rule); ours: softmax '
     'CE instead of the sigmoid BCE, which diverged on the softmax head'),
])
ROWS += _rows(CLIS_REAL[:1], [
    (image_label_loss, ('CLISRoIHead', 0.1, None),
     'image branch loss; 1.0 and 0.3 collapsed the RoI head on the '
     'synthetic set'
     + CLIS_OURS),
])


# ------------------------------------------------------------------ tests
@lru_cache(maxsize=None)
def load(config: str):
    return Config.fromfile(
        osp.join(ROOT, 'configs', config), import_custom_modules=False)


def test_every_real_data_config_has_a_recipe():
    """A new real-data config must come with its recipe rows."""
    covered = {r.config for r in ROWS}
    assert set(REAL_CONFIGS) == covered, (
        f'no recipe rows: {sorted(set(REAL_CONFIGS) - covered)}; '
        f'rows for missing configs: {sorted(covered - set(REAL_CONFIGS))}')
    ids = [r.id for r in ROWS]
    assert len(ids) == len(set(ids)), 'a quantity is listed twice'


@pytest.mark.parametrize('row', ROWS, ids=[r.id for r in ROWS])
def test_recipe(row):
    got = row.quantity(load(row.config))
    note = (f' (deliberately differs from the authors\' {row.authors!r}, '
            'see the method README)' if row.authors is not None else '')
    assert got == row.expected, (
        f'{row.config}: {row.quantity.__name__} = {got!r}, recipe '
        f'{row.expected!r}{note}; source: {row.source}')


# Classifier prior, checked on the built head: bias = log(p / (1 - p)).
PRIOR_CONFIGS = [
    ('eqlv2/mask-rcnn_r50_fpn_eqlv2_1x_lvis-v1.py', 'roi', 1204),
    ('eqlv2/mask-rcnn_r50_fpn_eqlv2_2x_lvis-v0.5.py', 'roi', 1231),
    ('eql/mask-rcnn_r50_fpn_eql_1x_lvis-v1.py', 'roi', 1203),
    ('eql/mask-rcnn_r50_fpn_eql_2x_lvis-v0.5.py', 'roi', 1230),
    ('efl/atss_r50_fpn_efl_2x_lvis-v1.py', 'dense', 2 * 1203),
    ('efl/retinanet_r50_fpn_focal_2x_lvis-v1.py', 'dense', 2 * 1203),
]


@pytest.mark.parametrize('config,kind,channels', PRIOR_CONFIGS,
                         ids=[c for c, _, _ in PRIOR_CONFIGS])
def test_classifier_prior_is_built(config, kind, channels):
    import torch
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    import longtail_plugin  # noqa: F401  (registers the losses)
    register_all_modules()
    cfg = load(config)
    if kind == 'roi':
        head_cfg = cfg.model.roi_head.bbox_head.copy()
        loss = head_cfg.loss_cls
        if 'ann_file' in loss:
            # a loss that reads class frequencies from a file at build time:
            # a stand-in list (the prior does not depend on it)
            loss.pop('ann_file')
            loss.image_frequency = [1.0] * loss.num_classes
        head = MODELS.build(head_cfg)
        head.init_weights()
        cls = head.fc_cls
    else:
        head_cfg = cfg.model.bbox_head.copy()
        head_cfg.update(train_cfg=cfg.model.train_cfg,
                        test_cfg=cfg.model.test_cfg)
        head = MODELS.build(head_cfg)
        head.init_weights()
        cls = getattr(head, 'atss_cls', None) or head.retina_cls
    p = 0.001
    bias = cls.bias.detach().double()
    assert bias.numel() == channels
    assert torch.allclose(bias, torch.full_like(bias, math.log(p / (1 - p))),
                          atol=1e-6), bias[:5]
    # weights N(0, 0.01), not the layer's default init
    assert abs(cls.weight.detach().std().item() - 0.01) < 1e-3


SIMPLE_HEADS = [
    ('refinemask/mask-rcnn_r50_fpn_simple-refinemask_1x_coco.py', 80),
]


@pytest.mark.parametrize('config,num_classes', SIMPLE_HEADS,
                         ids=[c for c, _ in SIMPLE_HEADS])
def test_simple_refinemask_head_is_built(config, num_classes):
    """The faster variant's widths as in the authors' head: 256-channel
    semantic convs, each stage's semantic features reduced to the stage's
    instance width (256, 128, 64) before fusion, class-agnostic last
    stage."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    import longtail_plugin  # noqa: F401
    register_all_modules()
    head = MODELS.build(load(config).model.roi_head.mask_head)
    assert list(head.stage_num_classes) == [num_classes] * 3 + [1]
    convs = [m for m in head.modules()
             if m.__class__.__name__ == 'Conv2d']
    assert convs, 'no convolutions built'
    stages = [m for m in head.modules()
              if m.__class__.__name__ == 'SemanticFusionModule']
    assert [s.in_channels for s in stages] == [256, 128, 64]
    for s in stages:  # semantic_transform_in of the authors' SimpleSFMStage
        assert s.semantic_in.conv.in_channels == 256, RM_FAST_HEAD
        assert s.semantic_in.conv.out_channels == s.in_channels, RM_FAST_HEAD
        assert s.semantic_out is None, RM_FAST_HEAD  # no 1x1 conv after
        assert s.fusion.global_conv is None and s.fusion.global_identity
