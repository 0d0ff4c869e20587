"""MMDetection's own train.py / test.py with a plugin config on a tiny
synthetic long-tailed set: a few iterations, the LVIS metric is read back,
the checkpoint is evaluated by test.py and resumed by train.py --resume
(both need the weights-only allow-list of longtail_plugin.compat)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from longtail_benchmark.runner import (RunSpec, mmdet_tool, prepare_config,
                                       read_metrics, run_training)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'baselines',
                  'mask-rcnn_r18_fpn_softmax_400it_synthetic-lvis.py')
TINY = {
    'train_cfg.max_iters': 4,
    'train_cfg.val_interval': 4,
    'default_hooks.checkpoint.interval': 4,
    'default_hooks.logger.interval': 1,
    'train_dataloader.batch_size': 2,
    'train_dataloader.num_workers': 0,
    'train_dataloader.persistent_workers': False,
    'val_dataloader.num_workers': 0,
    'val_dataloader.persistent_workers': False,
    'test_dataloader.num_workers': 0,
    'test_dataloader.persistent_workers': False,
}


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    from longtail_benchmark.synthetic import make_synthetic_lvis
    root = str(tmp_path_factory.mktemp('synthetic_lvis'))
    make_synthetic_lvis(root, seed=0, num_classes=12, num_train_images=24,
                        num_val_images=12, image_level=False)
    return root


@pytest.fixture(scope='module')
def trained(tiny_data, tmp_path_factory):
    wd = str(tmp_path_factory.mktemp('run'))
    res = run_training(RunSpec(CONFIG, 0, wd), data_root=tiny_data,
                       overrides=dict(TINY, **{
                           'model.roi_head.bbox_head.num_classes': 12,
                           'model.roi_head.mask_head.num_classes': 12}))
    return res


def test_train_py_trains_and_evaluates(trained):
    assert trained.returncode == 0
    m = trained.metrics
    for k in ('bbox_AP', 'bbox_APr', 'bbox_APc', 'bbox_APf', 'segm_AP'):
        # -1 is the LVIS API's value for a group without categories (the
        # tiny set has no frequent one)
        assert f'lvis/{k}' in m and -1.0 <= m[f'lvis/{k}'] <= 1.0
    assert m['lvis/bbox_AP'] >= 0.0
    assert trained.per_category_file is not None
    rec = json.load(open(trained.per_category_file))
    assert len(rec['categories']) == 12
    assert {c['group'] for c in rec['categories']} <= {'r', 'c', 'f'}
    log = open(osp.join(trained.work_dir, 'train_stdout.log')).read()
    assert 'Iter(train) [4/4]' in log and 'loss_cls' in log


def test_test_py_loads_checkpoint(trained):
    cfg = osp.join(trained.work_dir, osp.basename(CONFIG))
    ckpt = osp.join(trained.work_dir, 'iter_4.pth')
    assert osp.exists(ckpt)
    env = {k: v for k, v in os.environ.items()
           if k != 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'}
    out = subprocess.run(
        [sys.executable, mmdet_tool('test.py'), cfg, ckpt, '--work-dir',
         osp.join(trained.work_dir, 'test')],
        capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert 'Load checkpoint from' in out.stdout + out.stderr
    assert 'lvis/bbox_AP' in out.stdout + out.stderr


def test_resume_continues_from_checkpoint(trained):
    cfg = osp.join(trained.work_dir, osp.basename(CONFIG))
    env = {k: v for k, v in os.environ.items()
           if k != 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'}
    out = subprocess.run(
        [sys.executable, mmdet_tool('train.py'), cfg, '--resume',
         '--work-dir', trained.work_dir, '--cfg-options',
         'train_cfg.max_iters=6', 'train_cfg.val_interval=100'],
        capture_output=True, text=True, env=env, cwd=ROOT)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    assert 'resumed epoch: 0, iter: 4' in text
    assert 'Iter(train) [6/6]' in text
