"""Decoupled fine-tuning (issue 16 item 2): what a stage-2 config freezes
stays bit-identical through real training steps - parameters AND BN running
statistics - while the trained part changes. Both stage-2 configs of
configs/lvis_traveler/ on a tiny synthetic set, through MMEngine's Runner as
MMDetection's tools/train.py builds it."""
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import Hook

from longtail_plugin.engine.hooks import FreezeModulesHook
from longtail_plugin.engine.hooks.freeze_hook import (freeze_modules,
                                                      frozen_parameter_names)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BAGS = osp.join(ROOT, 'configs', 'lvis_traveler',
                'mask-rcnn_r18_fpn_bags-decoupled_400it_synthetic-lvis-'
                'densehead.py')
FROZEN_BACKBONE = osp.join(
    ROOT, 'configs', 'lvis_traveler',
    'mask-rcnn_r18_fpn_bags-frozen-backbone_400it_synthetic-lvis-'
    'densehead.py')
STAGE1 = osp.join(ROOT, 'configs', 'baselines',
                  'mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-'
                  'densehead.py')
NUM_CLASSES = 12


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    from longtail_benchmark.synthetic import make_synthetic_lvis
    root = str(tmp_path_factory.mktemp('synthetic_lvis_freeze'))
    make_synthetic_lvis(root, seed=0, num_classes=NUM_CLASSES,
                        num_train_images=8, num_val_images=12,
                        image_level=False)
    return root


@pytest.fixture(scope='module')
def stage1_ckpt(tmp_path_factory):
    """A stage-1 (softmax baseline) checkpoint with its classifier removed
    by tools/ckpt_surgery.py's function, as stage 2 loads it."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    from longtail_benchmark.ckpt_surgery import classifier_surgery
    register_all_modules()
    cfg = Config.fromfile(STAGE1)
    cfg.model.roi_head.bbox_head.num_classes = NUM_CLASSES
    cfg.model.roi_head.mask_head.num_classes = NUM_CLASSES
    torch.manual_seed(123)
    model = MODELS.build(cfg.model)
    model.init_weights()
    d = tmp_path_factory.mktemp('stage1')
    torch.save(dict(meta=dict(), state_dict=model.state_dict()),
               str(d / 'iter_800.pth'))
    classifier_surgery(str(d / 'iter_800.pth'), str(d / 'no_fc_cls.pth'))
    return str(d / 'no_fc_cls.pth')


class _Snapshot(Hook):
    """State at the first training iteration (after init, load_from and
    the re-initialisation) and after the last."""
    priority = 'LOWEST'

    def __init__(self):
        self.before = self.after = None
        self.requires_grad = None

    @staticmethod
    def _state(runner):
        return {k: v.detach().clone()
                for k, v in runner.model.state_dict().items()}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.before is None:
            self.before = self._state(runner)
            self.requires_grad = {n: p.requires_grad for n, p in
                                  runner.model.named_parameters()}

    def after_train(self, runner):
        self.after = self._state(runner)


def _train(config, data_root, work_dir, iters=2, custom_hooks=None,
           load_from=None):
    from mmengine.runner import Runner

    from longtail_benchmark.runner import prepare_config
    path = prepare_config(config, str(work_dir), seed=0, data_root=data_root,
                          overrides={
                              'model.roi_head.bbox_head.num_classes':
                              NUM_CLASSES,
                              'model.roi_head.bbox_head.loss_cls.num_classes':
                              NUM_CLASSES,
                              'model.roi_head.mask_head.num_classes':
                              NUM_CLASSES,
                              'train_cfg.max_iters': iters,
                              'train_cfg.val_interval': 1000,
                              'train_dataloader.batch_size': 2,
                              'train_dataloader.num_workers': 0,
                              'train_dataloader.persistent_workers': False,
                              'param_scheduler': [],
                              'optim_wrapper.optimizer.lr': 0.02,
                              'default_hooks.logger.interval': 1,
                          })
    cfg = Config.fromfile(path)
    cfg.load_from = load_from
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = None
    cfg.log_level = 'WARNING'
    if custom_hooks is not None:
        cfg.custom_hooks = custom_hooks
    snap = _Snapshot()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(snap)
    runner.train()
    return runner, snap


def _is_bn_stat(key):
    return key.endswith(('running_mean', 'running_var',
                         'num_batches_tracked'))


def _changed(snap, keys):
    return [k for k in keys if not torch.equal(snap.before[k],
                                               snap.after[k])]


def test_bags_stage2_trains_only_fc_cls(tiny_data, stage1_ckpt, tmp_path):
    runner, snap = _train(BAGS, tiny_data, tmp_path, load_from=stage1_ckpt)
    # stage 2 started from the stage-1 weights (load_from)
    stage1 = torch.load(stage1_ckpt, weights_only=True)['state_dict']
    assert not any(k.startswith('roi_head.bbox_head.fc_cls') for k in stage1)
    for k, v in stage1.items():
        assert torch.equal(snap.before[k], v), k
    params = dict(runner.model.named_parameters())
    trainable = {n for n, p in params.items() if p.requires_grad}
    assert trainable == {'roi_head.bbox_head.fc_cls.weight',
                         'roi_head.bbox_head.fc_cls.bias'}
    frozen = [n for n in params if n not in trainable]
    assert _changed(snap, frozen) == []
    stats = [k for k in snap.before if _is_bn_stat(k)]
    assert len(stats) > 20  # the ResNet-18's BN layers
    assert _changed(snap, stats) == []
    assert _changed(snap, sorted(trainable)) == sorted(trainable)
    # the classifier was re-initialised for stage 2: N(0, 0.01), bias 0
    # (C + 1 + G channels of the BAGS loss, G = 5 with the default bins)
    w = snap.before['roi_head.bbox_head.fc_cls.weight']
    assert w.shape[0] == NUM_CLASSES + 1 + 5
    assert 0.005 < w.std().item() < 0.015
    assert torch.count_nonzero(
        snap.before['roi_head.bbox_head.fc_cls.bias']) == 0


def test_frozen_backbone_stage2_trains_heads_not_backbone(
        tiny_data, stage1_ckpt, tmp_path):
    runner, snap = _train(FROZEN_BACKBONE, tiny_data, tmp_path,
                          load_from=stage1_ckpt)
    keys = list(snap.before)
    backbone = [k for k in keys if k.startswith('backbone.')]
    assert any(_is_bn_stat(k) for k in backbone)
    assert _changed(snap, backbone) == []
    assert not any(p.requires_grad
                   for p in runner.model.backbone.parameters())
    # neck, RPN, bbox head and mask head train
    for part in ('neck.', 'rpn_head.', 'roi_head.bbox_head.shared_fcs.',
                 'roi_head.bbox_head.fc_cls.', 'roi_head.mask_head.'):
        assert _changed(snap, [k for k in keys if k.startswith(part)]), part


def test_without_freezing_the_same_steps_move_everything(tiny_data,
                                                         tmp_path):
    """Control: the stage-1 setting (no hook, BN in train mode) changes the
    backbone and its BN statistics in the same two steps, so the tests
    above can fail."""
    _, snap = _train(BAGS, tiny_data, tmp_path,
                     custom_hooks=[dict(type='NumClassCheckHook')])
    stats = [k for k in snap.before
             if _is_bn_stat(k) and not k.endswith('num_batches_tracked')]
    assert _changed(snap, stats)
    assert _changed(snap, [k for k in snap.before
                           if k.startswith('backbone.') and 'conv' in k])


class _Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
        self.head = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
        self.cls = nn.Linear(2, 3)


def test_selection_and_clear_errors():
    net = _Net()
    assert frozen_parameter_names(net, frozen=['backbone']) == [
        'backbone.0.weight', 'backbone.0.bias', 'backbone.1.weight',
        'backbone.1.bias'
    ]
    assert frozen_parameter_names(net, trainable=['cls']) == [
        n for n, _ in net.named_parameters() if not n.startswith('cls.')
    ]
    # a prefix of a name is not a module ('head' vs 'heads')
    with pytest.raises(ValueError, match=r"frozen=\['heads'\].*\['heads'\]"
                       r".*\['backbone', 'cls', 'head'\]"):
        frozen_parameter_names(net, frozen=['heads'])
    with pytest.raises(ValueError, match='exactly one'):
        frozen_parameter_names(net, frozen=['cls'], trainable=['cls'])
    with pytest.raises(ValueError, match='at most one'):
        FreezeModulesHook(frozen=['cls'], trainable=['head'])
    with pytest.raises(ValueError, match='nothing to do'):
        FreezeModulesHook()


def test_bn_of_frozen_part_stays_in_eval_after_model_train():
    net = _Net()
    freeze_modules(net, trainable=['cls'])
    net.train()  # what the train loop does before every iteration
    hook = FreezeModulesHook(trainable=['cls'])

    class R:
        model = net

    hook.before_train_iter(R(), 0)
    assert not net.backbone[1].training and not net.head[1].training
    assert net.training and net.cls.training


def test_reinit_on_a_fresh_run_only():
    from mmengine.logging import MMLogger

    class R:
        model = _Net()
        logger = MMLogger.get_instance('freeze_hook_test')
        iter = 0

    torch.manual_seed(0)
    runner = R()
    nn.init.constant_(runner.model.cls.weight, 3.0)
    nn.init.constant_(runner.model.cls.bias, 3.0)
    hook = FreezeModulesHook(reinit=['cls'])
    hook.before_train(runner)
    w = runner.model.cls.weight
    assert torch.count_nonzero(runner.model.cls.bias) == 0
    assert (w.abs() < 0.1).all() and w.std() > 0
    assert all(p.requires_grad for p in runner.model.parameters())
    # a resumed run keeps its trained classifier
    nn.init.constant_(runner.model.cls.weight, 3.0)
    runner.iter = 5
    hook.before_train(runner)
    assert (runner.model.cls.weight == 3.0).all()
    with pytest.raises(ValueError, match=r"reinit=\['fc'\]"):
        FreezeModulesHook(reinit=['fc']).before_train(runner)


def test_ddp_wrapped_model_needs_find_unused_parameters():
    """DDP is built before any hook runs and expects a gradient for every
    parameter it registered: the hook asks for find_unused_parameters."""
    from mmengine.logging import MMLogger
    from mmengine.registry import MODEL_WRAPPERS

    @MODEL_WRAPPERS.register_module(name='_FreezeHookTestWrapper',
                                    force=True)
    class Wrapper(nn.Module):

        def __init__(self, module, find_unused_parameters):
            super().__init__()
            self.module = module
            self.find_unused_parameters = find_unused_parameters

    class R:
        logger = MMLogger.get_instance('freeze_hook_test_ddp')
        iter = 0

    runner = R()
    runner.model = Wrapper(_Net(), False)
    with pytest.raises(ValueError, match='find_unused_parameters = True'):
        FreezeModulesHook(frozen=['backbone']).before_train(runner)
    runner.model = Wrapper(_Net(), True)
    FreezeModulesHook(frozen=['backbone']).before_train(runner)
    assert [n for n, p in runner.model.module.named_parameters()
            if not p.requires_grad] == ['backbone.0.weight', 'backbone.0.bias',
                                        'backbone.1.weight', 'backbone.1.bias']
