"""CLIS and the Detic-style image-label baseline through real training steps
of MMEngine's Runner (as MMDetection's tools/train.py builds it), on a tiny
synthetic detection set and its image-level companion
(``longtail_benchmark.synthetic.make_image_level_set``).

The real configs of configs/clis/ are loaded with ``Config.fromfile`` (through
``longtail_benchmark.runner.prepare_config``, which moves both data roots to
the tiny sets), with a smaller batch (2 detection + 2 image-level images),
the tiny set's class count and a few iterations. Checked:

* mixed batches (``ConcatDataset`` + ``MultiSourceSampler``): every
  iteration logs the same nine CLIS loss keys, all finite, in the runner's
  message hub;
* image-only batches and detection-only batches (batches of 2):
  MMDetection 3.3's ``MultiSourceSampler`` cannot draw a zero share of a
  source (``source_ratio=[0, 2]`` gives that source ``num = 0`` and its
  ``__iter__`` loop, which stops when a source's buffer reaches ``num``
  after an append, never ends), so these train on the ``ImageLevelDataset``
  alone, or on the detection dataset alone, with the default infinite
  sampler and the CLIS detector: the same keys, exactly zero where a kind
  of sample is absent;
* the Detic config: ``loss_image_label`` every iteration;
* resume: 4 iterations with a checkpoint at 2; a new Runner resumed from
  ``iter_2.pth`` trains iterations 3 and 4 and ends with bit-identical
  weights (and losses) to the straight run. Two sources of randomness
  break the equality (each alone, measured), so these runs remove them:
  RandomFlip draws from NumPy's global RNG in the data pipeline, and the
  resumed loop re-runs the pipeline of the two skipped batches from another
  NumPy state (flip probability 0 here: the data are then a function of the
  sampler's indices, which MMEngine's loop skips exactly); the RoI / RPN
  samplers and ``ImageLevelPaste`` draw from the global torch RNG, which a
  checkpoint does not hold (the ``_Record`` hook reseeds torch, NumPy and
  ``random`` from the iteration number before every step, in both runs).
"""
import math
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLIS = osp.join(ROOT, 'configs', 'clis',
                'mask-rcnn_r18_fpn_clis_800it_synthetic-lvis-densehead.py')
DETIC = osp.join(
    ROOT, 'configs', 'clis',
    'mask-rcnn_r18_fpn_detic-image-label_800it_synthetic-lvis-densehead.py')
NUM_CLASSES = 12
RPN_KEYS = ('loss_rpn_cls', 'loss_rpn_bbox')
DET_KEYS = ('loss_cls', 'acc', 'loss_bbox', 'loss_objectness', 'loss_mask')
IMAGE_KEYS = ('loss_image_cls', 'loss_contrastive')
CLIS_KEYS = set(RPN_KEYS + DET_KEYS + IMAGE_KEYS)
DETIC_KEYS = {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'acc',
              'loss_bbox', 'loss_mask', 'loss_image_label'}
RESEED = 1000


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """One intra-op thread: on the shared, loaded CPUs of the test machine
    a second thread only waits (measured: twice the wall time), and both
    runs of the resume test must use the same thread count anyway."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    """A 12-category detection set (8 training images) and its image-level
    companion in the sibling folder ``<root>_imagelevel`` that
    ``prepare_config`` points the configs' image-level dataset to."""
    from longtail_benchmark.synthetic import make_synthetic_lvis
    from longtail_benchmark.synthetic.image_level import (
        default_image_level_dir, make_image_level_set)
    root = str(tmp_path_factory.mktemp('clis_e2e') / 'synthetic_lvis')
    make_synthetic_lvis(root, seed=0, num_classes=NUM_CLASSES,
                        num_train_images=8, num_val_images=12,
                        image_level=False)
    summary = make_image_level_set(default_image_level_dir(root), root,
                                   seed=0,
                                   images_per_group=dict(r=2, c=2, f=1))
    assert summary['num_images'] >= 4
    return root


def _state(runner):
    return {k: v.detach().clone()
            for k, v in runner.model.state_dict().items()}


class _Record(Hook):
    """Per iteration: the iteration counter, which samples of the batch are
    image-level, the logged outputs of ``train_step``; model state at the
    start of training (after a resume), after iteration 2 and at the end.
    ``reseed``: seed torch / NumPy / random with ``reseed + iter`` before
    every step."""
    priority = 'LOWEST'

    def __init__(self, reseed=None):
        self.reseed = reseed
        self.iters, self.kinds, self.losses = [], [], []
        self.start = self.after_2 = self.final = None

    def before_train(self, runner):
        self.start = _state(runner)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.iters.append(runner.iter)
        self.kinds.append([
            bool(s.metainfo.get('image_level', False))
            for s in data_batch['data_samples']
        ])
        if self.reseed is not None:
            seed = self.reseed + runner.iter
            torch.manual_seed(seed)
            np.random.seed(seed)
            random.seed(seed)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append({
            k: float(v.detach() if torch.is_tensor(v) else v)
            for k, v in outputs.items()
        })
        if runner.iter + 1 == 2:
            self.after_2 = _state(runner)

    def after_train(self, runner):
        self.final = _state(runner)


def _config(config, data_root, work_dir, iters, overrides=None):
    from longtail_benchmark.runner import prepare_config
    opts = {
        'model.roi_head.bbox_head.num_classes': NUM_CLASSES,
        'model.roi_head.mask_head.num_classes': NUM_CLASSES,
        'train_cfg.max_iters': iters,
        'train_cfg.val_interval': 1000,
        'train_dataloader.batch_size': 4,
        'train_dataloader.sampler.batch_size': 4,
        'train_dataloader.sampler.source_ratio': [2, 2],
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'default_hooks.logger.interval': 1,
    }
    opts.update(overrides or {})
    path = prepare_config(config, str(work_dir), seed=0, data_root=data_root,
                          overrides=opts)
    cfg = Config.fromfile(path)
    # both sources moved to the tiny sets
    det, img = cfg.train_dataloader.dataset.datasets
    assert det.data_root.rstrip('/') == data_root
    assert img.data_root.rstrip('/') == data_root + '_imagelevel'
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = None
    cfg.log_level = 'WARNING'
    return cfg


def _single_source(cfg, index):
    """Train on one source of the ConcatDataset alone (default sampler),
    batches of 2."""
    cfg.train_dataloader.dataset = cfg.train_dataloader.dataset.datasets[
        index]
    cfg.train_dataloader.batch_size = 2
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    cfg.train_dataloader.batch_sampler = None
    return cfg


def _train(cfg, reseed=None):
    from mmengine.runner import Runner
    rec = _Record(reseed)
    runner = Runner.from_cfg(cfg)
    runner.register_hook(rec)
    runner.train()
    return runner, rec


def _logged(runner, key):
    """Per-iteration history of ``train/<key>`` in the message hub."""
    return [float(v) for v in
            runner.message_hub.log_scalars[f'train/{key}'].data[0]]


def _check_keys(runner, rec, keys, iters):
    assert rec.iters == list(range(iters))
    assert len(rec.losses) == iters
    for i, out in enumerate(rec.losses):
        assert set(out) - {'loss'} == keys, (i, sorted(out))
        bad = {k: v for k, v in out.items() if not math.isfinite(v)}
        assert not bad, (i, bad)
        # the total is the sum of the loss terms (acc is not one)
        assert out['loss'] == pytest.approx(
            sum(v for k, v in out.items() if k != 'loss' and 'loss' in k),
            rel=1e-5, abs=1e-6)
    # what the runner logged: every key at every iteration, same values
    for key in keys | {'loss'}:
        assert _logged(runner, key) == pytest.approx(
            [out[key] for out in rec.losses], rel=1e-6, abs=1e-7), key


@pytest.fixture(scope='module')
def straight(tiny_data, tmp_path_factory):
    """CLIS, mixed batches, 4 iterations, checkpoints at 2 and 4; flips off
    and per-iteration reseeding (see the module docstring: resume)."""
    wd = tmp_path_factory.mktemp('clis_straight')
    cfg = _config(CLIS, tiny_data, wd, 4)
    for ds in cfg.train_dataloader.dataset.datasets:
        flips = [t for t in ds.pipeline if t.type == 'RandomFlip']
        assert len(flips) == 1
        flips[0].prob = 0.0
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=2, max_keep_ckpts=-1)
    runner, rec = _train(cfg, reseed=RESEED)
    return cfg, runner, rec, str(wd)


def test_clis_mixed_batches_log_the_same_keys(straight):
    cfg, runner, rec, _ = straight
    assert cfg.model.roi_head.type == 'CLISRoIHead'
    assert cfg.model.roi_head.bbox_head.type == 'CLISBBoxHead'
    assert type(runner.model).__name__ == 'ImageLevelTwoStageDetector'
    assert [type(a).__name__ for a in
            runner.model.data_preprocessor.batch_augments] == [
                'ImageLevelPaste']
    # every batch: 2 detection + 2 image-level samples (source_ratio [2, 2])
    assert [sorted(k) for k in rec.kinds] == [[False, False, True, True]] * 4
    _check_keys(runner, rec, CLIS_KEYS, 4)
    for out in rec.losses:
        for key in ('loss_rpn_cls', 'loss_cls', 'loss_objectness',
                    'loss_mask', 'loss_image_cls'):
            assert out[key] > 0.0, (key, out)
        assert 0.0 <= out['acc'] <= 100.0
    # InfoNCE over 2 pairs is > 0; it is exactly 0 when fewer than two
    # sources found a free place: at least one batch pasted both
    assert any(out['loss_contrastive'] > 0.0 for out in rec.losses)
    # the weights moved
    assert not torch.equal(rec.start['roi_head.bbox_head.fc_cls.weight'],
                           rec.final['roi_head.bbox_head.fc_cls.weight'])


def test_clis_image_only_and_detection_only_batches(tiny_data, tmp_path):
    # image-only batches: the ImageLevelDataset alone
    cfg = _single_source(_config(CLIS, tiny_data, tmp_path / 'img', 2), 1)
    runner, rec = _train(cfg)
    assert rec.kinds == [[True] * 2] * 2
    _check_keys(runner, rec, CLIS_KEYS, 2)
    for out in rec.losses:
        for key in RPN_KEYS + DET_KEYS + ('loss_contrastive', ):
            assert out[key] == 0.0, (key, out)
        assert out['loss_image_cls'] > 0.0
    # the image branch trained: the (siamese) classifier moved
    key = 'roi_head.bbox_head.fc_cls.weight'
    assert not torch.equal(rec.start[key], rec.final[key])

    # detection-only batches: the detection dataset alone
    cfg = _single_source(_config(CLIS, tiny_data, tmp_path / 'det', 2), 0)
    runner, rec = _train(cfg)
    assert rec.kinds == [[False] * 2] * 2
    _check_keys(runner, rec, CLIS_KEYS, 2)
    for out in rec.losses:
        for key in IMAGE_KEYS:
            assert out[key] == 0.0, (key, out)
        for key in ('loss_rpn_cls', 'loss_cls', 'loss_objectness',
                    'loss_mask'):
            assert out[key] > 0.0, (key, out)


def test_detic_image_label_loss_every_iteration(tiny_data, tmp_path):
    cfg = _config(DETIC, tiny_data, tmp_path, 3)
    assert cfg.model.roi_head.type == 'ImageLabelRoIHead'
    runner, rec = _train(cfg)
    assert [sorted(k) for k in rec.kinds] == [[False, False, True, True]] * 3
    _check_keys(runner, rec, DETIC_KEYS, 3)
    for out in rec.losses:
        assert out['loss_image_label'] > 0.0
        assert out['loss_cls'] > 0.0 and out['loss_rpn_cls'] > 0.0


def test_clis_resume_matches_the_straight_run(straight, tmp_path):
    cfg, straight_runner, straight_rec, wd = straight
    ckpt = osp.join(wd, 'iter_2.pth')
    assert osp.exists(ckpt) and osp.exists(osp.join(wd, 'iter_4.pth'))
    cfg = Config(cfg.to_dict(), filename=cfg.filename)
    cfg.work_dir = str(tmp_path)
    cfg.default_hooks.checkpoint = None
    cfg.resume = True
    cfg.load_from = ckpt
    runner, rec = _train(cfg, reseed=RESEED)
    # resumed at iteration 2, trained iterations 3 and 4
    assert rec.iters == [2, 3]
    assert runner.iter == 4
    # the resumed weights are the checkpoint's = the straight run's after 2
    saved = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert saved['meta']['iter'] == 2
    assert set(rec.start) == set(saved['state_dict'])
    for k, v in saved['state_dict'].items():
        assert torch.equal(rec.start[k], v), k
        assert torch.equal(straight_rec.after_2[k], v), k
    # same batches, same losses, same final weights (bit for bit)
    assert rec.kinds == straight_rec.kinds[2:]
    assert rec.losses == straight_rec.losses[2:]
    assert set(rec.final) == set(straight_rec.final)
    for k, v in straight_rec.final.items():
        assert rec.final[k].shape == v.shape, k
        assert torch.equal(rec.final[k], v), k
    # and they differ from the weights at iteration 2 (training happened)
    assert not torch.equal(rec.final['roi_head.bbox_head.fc_cls.weight'],
                           rec.start['roi_head.bbox_head.fc_cls.weight'])
    # the message hub was restored: 2 + 2 logged iterations
    assert _logged(runner, 'loss') == pytest.approx(
        [out['loss'] for out in straight_rec.losses], rel=0, abs=0)
