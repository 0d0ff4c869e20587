"""Tests of GradRatioLoggerHook, the checkpoint reader and the plot tool."""
import importlib.util
import json
import math
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MessageHub, MMLogger

from longtail_benchmark.grad_ratio_plots import (extract_grad_statistics,
                                                load_grad_statistics)
from longtail_plugin.engine.hooks import GradRatioLoggerHook
from longtail_plugin.models.losses import EqualizationLossV2

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


@pytest.fixture
def data_root(tmp_path):
    cats = [
        dict(id=1, name='a', image_count=3, instance_count=3),  # r
        dict(id=2, name='b', image_count=5, instance_count=5),  # r
        dict(id=3, name='c', image_count=50, instance_count=50),  # c
        dict(id=4, name='d', image_count=500, instance_count=900),  # f
    ]
    (tmp_path / 'train.json').write_text(
        json.dumps(dict(images=[dict(id=1)], annotations=[],
                        categories=cats)))
    return tmp_path


class Detector(nn.Module):

    def __init__(self, num_stages=1):
        super().__init__()
        self.roi_head = nn.Module()
        heads = []
        for _ in range(num_stages):
            h = nn.Module()
            h.loss_cls = EqualizationLossV2(num_classes=4)
            heads.append(h)
        self.roi_head.bbox_head = nn.ModuleList(heads)


class Wrapper(nn.Module):  # stands in for (MM)DistributedDataParallel

    def __init__(self, module):
        super().__init__()
        self.module = module


class FakeRunner:

    def __init__(self, model, cfg, name):
        self.model = model
        self.cfg = cfg
        self.iter = 0
        self.message_hub = MessageHub.get_instance(name)
        self.logger = MMLogger.get_instance('grad_ratio_hook_test')


def make_cfg(data_root, ann_file='train.json', interval=2):
    return Config(
        dict(
            default_hooks=dict(logger=dict(type='LoggerHook',
                                           interval=interval)),
            train_dataloader=dict(
                dataset=dict(
                    type='ClassBalancedDataset',
                    oversample_thr=1e-3,
                    dataset=dict(
                        type='LVISV1Dataset',
                        data_root=str(data_root),
                        ann_file=ann_file)))))


def scalars(runner):
    return {
        k: v.current()
        for k, v in runner.message_hub.log_scalars.items()
        if 'grad_ratio' in k or 'weight' in k
    }


def test_hook_logs_group_means_at_logger_interval(data_root):
    model = Detector()
    ratio = [0.2, 0.6, 0.9, 1.1]
    model.roi_head.bbox_head[0].loss_cls.grad_stats.pos_neg.copy_(
        torch.tensor(ratio))
    runner = FakeRunner(Wrapper(model), make_cfg(data_root), 'hook_t1')
    hook = GradRatioLoggerHook()
    hook.before_train(runner)
    assert hook.interval == 2
    runner.iter = 0
    hook.after_train_iter(runner, 0)
    assert scalars(runner) == {}
    runner.iter = 1
    hook.after_train_iter(runner, 1)
    got = scalars(runner)
    assert got['train/grad_ratio_r'] == pytest.approx(0.4, rel=1e-6)
    assert got['train/grad_ratio_c'] == pytest.approx(0.9, rel=1e-6)
    assert got['train/grad_ratio_f'] == pytest.approx(1.0, rel=1e-6)  # 1.1 counts as 1
    q = [sig(12 * (g - 0.8)) for g in ratio]
    assert got['train/neg_weight_r'] == pytest.approx((q[0] + q[1]) / 2,
                                                      rel=1e-5)
    assert got['train/pos_weight_c'] == pytest.approx(
        1 + 4 * (1 - q[2]), rel=1e-5)
    assert got['train/pos_weight_f'] == pytest.approx(
        1 + 4 * (1 - q[3]), rel=1e-5)


def test_hook_several_losses_and_no_ann_file(data_root):
    model = Detector(num_stages=2)
    runner = FakeRunner(model, Config(dict()), 'hook_t2')
    hook = GradRatioLoggerHook(interval=1)
    runner.iter = 0
    hook.after_train_iter(runner, 0)
    got = scalars(runner)
    # no annotation file: one mean over all classes, per loss module
    assert got['train/grad_ratio_all/roi_head.bbox_head.0.loss_cls'] == 1.0  # init ratio 100, clamped
    assert 'train/grad_ratio_all/roi_head.bbox_head.1.loss_cls' in got
    # explicit ann_file with a class count that does not match the model
    runner2 = FakeRunner(Detector(), Config(dict()), 'hook_t3')
    (data_root / 'small.json').write_text(
        json.dumps(dict(images=[], categories=[dict(id=1, name='x')])))
    hook2 = GradRatioLoggerHook(
        interval=1, ann_file='small.json', data_root=str(data_root))
    hook2.after_train_iter(runner2, 0)
    assert 'train/grad_ratio_all' in scalars(runner2)


def test_group_shares_hand_values():
    from longtail_benchmark.grad_ratio_plots import group_shares
    groups = dict(r=np.array([0]), c=np.array([1, 2]), f=np.array([3]))
    got = group_shares(np.array([1.0, 2.0, 3.0, 4.0]), groups)
    assert got == pytest.approx(dict(r=0.1, c=0.5, f=0.4))
    with pytest.raises(ValueError, match='non-positive total'):
        group_shares(np.zeros(4), groups)
    with pytest.raises(ValueError, match='non-positive total'):
        group_shares(np.array([1.0, np.nan, 0.0, 0.0]), groups)


def test_checkpoint_reader_and_plot_tool(data_root, tmp_path, capsys):
    from mmengine.runner.checkpoint import save_checkpoint
    model = Detector()
    loss = model.roi_head.bbox_head[0].loss_cls
    loss(torch.randn(8, 5), torch.randint(0, 5, (8, )))
    hub = MessageHub.get_instance('hook_t4')
    hub.update_scalar('train/loss', 1.5)
    ckpt = dict(
        meta=dict(epoch=1, iter=10, seed=np.int64(3)),
        state_dict=model.state_dict(),
        message_hub=hub.state_dict())
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint(ckpt, path)
    stats = load_grad_statistics(path)
    key = 'roi_head.bbox_head.0.loss_cls.grad_stats'
    assert list(stats) == [key]
    assert np.array_equal(stats[key]['pos_neg'],
                          loss.grad_stats.pos_neg.numpy())
    assert np.array_equal(stats[key]['neg_grad'],
                          loss.grad_stats.neg_grad.numpy())
    # a bare state dict with only pos/neg (ratio derived)
    only = extract_grad_statistics({
        'x.pos_grad': torch.tensor([1.0, 2.0]),
        'x.neg_grad': torch.tensor([4.0, 0.0]),
        'y.weight': torch.zeros(2)
    })
    assert only['x']['pos_neg'][0] == pytest.approx(0.25)

    spec = importlib.util.spec_from_file_location(
        'plot_grad_ratio', osp.join(REPO, 'tools', 'plot_grad_ratio.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'plot.png'
    assert tool.main([
        '--checkpoint', path, path, '--labels', 'A', 'B', '--ann-file',
        str(data_root / 'train.json'), '--out',
        str(out)
    ]) == 0
    assert out.stat().st_size > 1000
    # per-group summary: mean ratio and share of the positive gradient
    lines = [ln for ln in capsys.readouterr().out.splitlines()
             if 'of the accumulated positive gradient' in ln]
    assert len(lines) >= 2 and all('mean g' in ln for ln in lines)
    shares = [float(ln.split(', ')[1].split('%')[0])
              for ln in lines[:len(lines) // 2]]
    assert sum(shares) == pytest.approx(100.0, abs=0.2)
    with pytest.raises(ValueError, match='no gradient statistics'):
        torch.save({'state_dict': {'w': torch.zeros(1)}},
                   tmp_path / 'plain.pth')
        load_grad_statistics(str(tmp_path / 'plain.pth'))
