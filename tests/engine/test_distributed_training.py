"""Distributed training end to end on CPU: two gloo processes started by
``torch.distributed.run`` run MMDetection's own ``tools/train.py`` (MMEngine's
runner, its DDP wrapper, the plugin's hooks, checkpointing on rank 0, the
evaluator's gather) on the synthetic EQL v2 and EFL configs with
``configs/_base_/cpu_ddp.py`` added, on a tiny synthetic set.

Checked: the ``GradientStatistics`` buffers are bit-identical across ranks
at the end of training and after ``--resume`` (where both ranks also start
from exactly the checkpoint's values); the checkpoint written by rank 0 loads
weights-only into a freshly built model; the validation of the EFL run is
gathered from both ranks (every image once, although the sampler pads one
rank with a duplicate); the LVIS metric gathered by MMEngine's ``Evaluator``
over two processes equals the single-process metric on the same
predictions. A control run without the statistics' all-reduce shows that
the cross-rank check does fail then.

The environment reaches the started processes: with
``LT_TEST_DROP_STATS_ALLREDUCE=1`` set for the whole run, the statistics
tests fail (the ranks differ from the first iteration on).

Helpers run in the started processes: ``dist_probe.py`` (imported through
``custom_imports``; its hook saves each rank's statistics) and
``dist_metric_check.py``.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from longtail_benchmark.runner import mmdet_tool, prepare_config
from longtail_plugin.compat import CPUDistributedRunner, mmengine_safe_globals

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
FRAGMENT = osp.join(ROOT, 'configs', '_base_', 'cpu_ddp.py')
EQLV2 = osp.join(ROOT, 'configs', 'eqlv2',
                 'mask-rcnn_r18_fpn_eqlv2_400it_synthetic-lvis.py')
EFL = osp.join(ROOT, 'configs', 'efl',
               'atss_r18_fpn_efl_400it_synthetic-lvis.py')
NUM_CLASSES = 12
NUM_EVAL_IMAGES = 5  # odd: DefaultSampler pads rank 1 with a duplicate
VALIDATE = {EFL}  # configs that also validate (on rank 0's gather)
ITERS, RESUMED_ITERS = 2, 4

CLASS_KEYS = {
    EQLV2: ('model.roi_head.bbox_head.num_classes',
            'model.roi_head.bbox_head.loss_cls.num_classes',
            'model.roi_head.mask_head.num_classes'),
    EFL: ('model.bbox_head.num_classes',
          'model.bbox_head.loss_cls.num_classes'),
}


def _overrides(config: str, data_root: str) -> dict:
    eval_ann = osp.join(data_root, 'annotations', 'lvis_v1_val_eval.json')
    hooks = list(Config.fromfile(config).get('custom_hooks', []))
    ov = {
        'custom_imports.imports': ['longtail_plugin', 'dist_probe'],
        'custom_hooks': hooks + [dict(type='DistStatsProbeHook')],
        'train_cfg.max_iters': ITERS,
        'default_hooks.checkpoint.interval': ITERS,
        'default_hooks.checkpoint.max_keep_ckpts': -1,
        'default_hooks.logger.interval': 1,
        'train_dataloader.batch_size': 1,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
    }
    if config in VALIDATE:
        ov.update({
            'val_dataloader.batch_size': 1,
            'val_dataloader.num_workers': 0,
            'val_dataloader.persistent_workers': False,
            'val_dataloader.dataset.ann_file': eval_ann,
            'val_evaluator.ann_file': eval_ann,
        })
    else:
        ov.update(val_dataloader=None, val_cfg=None, val_evaluator=None)
    ov.update({k: NUM_CLASSES for k in CLASS_KEYS[config]})
    return ov


def _cpu_ddp_config(config: str, data_root: str, work_dir: str) -> str:
    """The run config (data root, seed, tiny schedule) plus cpu_ddp.py, the
    way a user adds it: a config whose ``_base_`` lists both."""
    run_cfg = prepare_config(config, work_dir, 0, data_root,
                             _overrides(config, data_root))
    path = osp.join(work_dir, 'cpu_ddp_run.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = [{run_cfg!r}, {FRAGMENT!r}]\n')
    return path


def _launch(script: str, args: list, log: str,
            drop_allreduce: bool = False,
            mmdet_tool_args: bool = True) -> str:
    """``script`` in two processes started by ``torch.distributed.run``."""
    env = {k: v for k, v in os.environ.items()
           if k != 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'}
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (ROOT, HERE, env.get('PYTHONPATH')) if p)
    env.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    if drop_allreduce:
        env['LT_TEST_DROP_STATS_ALLREDUCE'] = '1'
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
           '--nproc_per_node=2', script, *args]
    if mmdet_tool_args:  # MMDetection's tools
        cmd += ['--launcher', 'pytorch']
    out = subprocess.run(cmd, capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=900)
    text = out.stdout + out.stderr
    with open(log, 'w') as f:
        f.write(text)
    assert out.returncode == 0, f'{" ".join(cmd)}\n{text[-6000:]}'
    return text


def _probe(work_dir: str, event: str, it: int, rank: int) -> dict:
    path = osp.join(work_dir, 'probe', f'{event}_iter{it}_rank{rank}.pt')
    assert osp.isfile(path), f'{path} missing'
    return torch.load(path, map_location='cpu', weights_only=True)


def _checkpoint_state(work_dir: str, it: int) -> dict:
    with mmengine_safe_globals():  # weights-only stays on
        ckpt = torch.load(osp.join(work_dir, f'iter_{it}.pth'),
                          map_location='cpu', weights_only=True)
    return ckpt['state_dict']


def _assert_identical(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys() and a, what
    for k in a:
        assert a[k].dtype == b[k].dtype, f'{what}: {k} dtype'
        assert torch.equal(a[k], b[k]), f'{what}: {k} differs'


def _differing(a: dict, b: dict) -> list:
    return [k for k in a if not torch.equal(a[k], b[k])]


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    from longtail_benchmark.synthetic import make_synthetic_lvis
    root = str(tmp_path_factory.mktemp('synthetic_lvis_ddp'))
    make_synthetic_lvis(root, seed=0, num_classes=NUM_CLASSES,
                        num_train_images=16, num_val_images=12,
                        image_level=False)
    with open(osp.join(root, 'annotations', 'lvis_v1_val.json')) as f:
        val = json.load(f)
    keep = {img['id'] for img in val['images'][:NUM_EVAL_IMAGES]}
    val['images'] = val['images'][:NUM_EVAL_IMAGES]
    val['annotations'] = [a for a in val['annotations']
                          if a['image_id'] in keep]
    with open(osp.join(root, 'annotations', 'lvis_v1_val_eval.json'),
              'w') as f:
        json.dump(val, f)
    return root


def _train_and_resume(config, tiny_data, tmp_path_factory):
    wd = str(tmp_path_factory.mktemp('ddp_' + osp.basename(config)[:8]))
    cfg = _cpu_ddp_config(config, tiny_data, wd)
    train = mmdet_tool('train.py')
    _launch(train, [cfg, '--work-dir', wd], osp.join(wd, 'train.log'))
    first = {r: _probe(wd, 'after_train', ITERS, r) for r in (0, 1)}
    ckpt_first = _checkpoint_state(wd, ITERS)
    log = _launch(train, [cfg, '--work-dir', wd, '--resume', '--cfg-options',
                          f'train_cfg.max_iters={RESUMED_ITERS}'],
                  osp.join(wd, 'resume.log'))
    return dict(work_dir=wd, config=cfg, first=first, ckpt_first=ckpt_first,
                resume_log=log)


@pytest.fixture(scope='module')
def eqlv2_run(tiny_data, tmp_path_factory):
    return _train_and_resume(EQLV2, tiny_data, tmp_path_factory)


@pytest.fixture(scope='module')
def efl_run(tiny_data, tmp_path_factory):
    return _train_and_resume(EFL, tiny_data, tmp_path_factory)


@pytest.mark.parametrize('run', ['eqlv2_run', 'efl_run'])
def test_statistics_identical_across_ranks(run, request):
    r = request.getfixturevalue(run)
    wd = r['work_dir']
    first = r['first']
    _assert_identical(first[0], first[1], 'ranks after training')
    counts = [k for k in first[0] if k.endswith('num_updates')]
    assert counts
    for k in counts:
        skipped = k[:-len('num_updates')] + 'num_skipped'
        assert int(first[0][k]) + int(first[0][skipped]) == ITERS, k
    pos = [v for k, v in first[0].items() if k.endswith('pos_grad')]
    assert all(float(v.sum()) > 0 for v in pos)
    # rank 0's checkpoint holds exactly these statistics
    _assert_identical(first[0], {k: r['ckpt_first'][k] for k in first[0]},
                      'checkpoint vs ranks')
    # --resume: both ranks start from the checkpoint, bit for bit, and stay
    # identical
    assert f'resumed epoch: 0, iter: {ITERS}' in r['resume_log']
    for rank in (0, 1):
        _assert_identical(_probe(wd, 'before_train', ITERS, rank), first[0],
                          f'rank {rank} after resume')
    end = {rk: _probe(wd, 'after_train', RESUMED_ITERS, rk) for rk in (0, 1)}
    _assert_identical(end[0], end[1], 'ranks after resumed training')
    for k in counts:
        skipped = k[:-len('num_updates')] + 'num_skipped'
        assert int(end[0][k]) + int(end[0][skipped]) == RESUMED_ITERS, k
    assert _differing(end[0], first[0])  # training went on
    ckpt_end = _checkpoint_state(wd, RESUMED_ITERS)
    _assert_identical(end[0], {k: ckpt_end[k] for k in end[0]},
                      'resumed checkpoint vs ranks')


@pytest.mark.parametrize('run', ['eqlv2_run', 'efl_run'])
def test_rank0_checkpoint_loads_into_a_fresh_model(run, request):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    r = request.getfixturevalue(run)
    cfg = Config.fromfile(r['config'], import_custom_modules=False)
    model = MODELS.build(cfg.model)
    state = _checkpoint_state(r['work_dir'], RESUMED_ITERS)
    model.load_state_dict(state, strict=True)
    assert not any(n.startswith('module.') for n in state)
    # the trained statistics are in the loaded model
    rank0 = _probe(r['work_dir'], 'after_train', RESUMED_ITERS, 0)
    loaded = model.state_dict()
    _assert_identical({k: loaded[k] for k in rank0}, rank0,
                      'loaded model vs rank 0')


def test_validation_gathers_every_image_once(efl_run, tiny_data):
    """The EFL runs validate at their end (rank 0 writes the gathered
    predictions): each of the five images once, the duplicate that pads
    rank 1 dropped."""
    assert 'lvis/bbox_AP' in efl_run['resume_log']
    with open(osp.join(efl_run['work_dir'], 'results', 'val.bbox.json')) as f:
        preds = json.load(f)
    with open(osp.join(tiny_data, 'annotations',
                       'lvis_v1_val_eval.json')) as f:
        image_ids = {img['id'] for img in json.load(f)['images']}
    per_image = {}
    for p in preds:
        per_image[p['image_id']] = per_image.get(p['image_id'], 0) + 1
    assert set(per_image) == image_ids
    max_per_img = Config.fromfile(
        efl_run['config'], import_custom_modules=False).model.test_cfg[
            'max_per_img']
    assert max(per_image.values()) <= max_per_img


def test_metric_gathered_over_two_processes_equals_one_process(
        tiny_data, tmp_path):
    out = str(tmp_path / 'metrics.json')
    _launch(osp.join(HERE, 'dist_metric_check.py'),
            [osp.join(tiny_data, 'annotations', 'lvis_v1_val_eval.json'), out],
            str(tmp_path / 'metric.log'), mmdet_tool_args=False)
    with open(out) as f:
        res = json.load(f)
    assert res['world_size'] == 2
    single, gathered = res['single'], res['gathered']
    for iou in ('bbox', 'segm'):  # predictions made from the ground truth
        assert 0.05 < single[f'{iou}_AP'] < 0.95
    assert gathered == {f'lvis/{k}': v for k, v in single.items()}
    # per-category AP, full precision
    assert res['gathered_per_category']['categories'] == \
        res['single_per_category']['categories']


def test_control_without_allreduce_ranks_diverge(tiny_data,
                                                 tmp_path_factory):
    """The same EQL v2 run with the statistics' all-reduce removed in the
    training processes: the check above must see the ranks differ."""
    wd = str(tmp_path_factory.mktemp('ddp_no_allreduce'))
    cfg = _cpu_ddp_config(EQLV2, tiny_data, wd)
    _launch(mmdet_tool('train.py'), [cfg, '--work-dir', wd, '--cfg-options',
                                     'train_cfg.max_iters=1'],
            osp.join(wd, 'train.log'), drop_allreduce=True)
    r0, r1 = (_probe(wd, 'after_train', 1, r) for r in (0, 1))
    assert any(k.endswith('pos_grad') for k in _differing(r0, r1))
    with pytest.raises(AssertionError):
        _assert_identical(r0, r1, 'ranks without all-reduce')


# --- the runner's own checks (no process group is started) --------------

@pytest.fixture
def torchrun_env(monkeypatch):
    for k, v in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
                     MASTER_ADDR='127.0.0.1', MASTER_PORT='29999').items():
        monkeypatch.setenv(k, v)


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='with CUDA the runner defers to MMEngine')
@pytest.mark.parametrize('launcher, env_cfg, wrapper, match', [
    ('pytorch', dict(dist_cfg=dict(backend='nccl')),
     dict(type='MMDistributedDataParallel', device_ids=None),
     'env_cfg.dist_cfg.backend'),
    ('pytorch', dict(dist_cfg=dict(backend='gloo')), None,
     'model_wrapper_cfg is not set'),
    ('pytorch', dict(dist_cfg=dict(backend='gloo')),
     dict(type='MMDistributedDataParallel'), 'model_wrapper_cfg.device_ids'),
    ('pytorch', dict(dist_cfg=dict(backend='gloo')),
     dict(type='MMDistributedDataParallel', device_ids=[0]),
     'model_wrapper_cfg.device_ids'),
    ('slurm', dict(dist_cfg=dict(backend='gloo')),
     dict(type='MMDistributedDataParallel', device_ids=None),
     "launcher 'slurm'"),
])
def test_cpu_runner_explains_bad_settings(torchrun_env, tmp_path, launcher,
                                          env_cfg, wrapper, match):
    import torch.distributed as dist
    cfg = {} if wrapper is None else dict(model_wrapper_cfg=wrapper)
    with pytest.raises(ValueError, match=match):
        CPUDistributedRunner(
            model=torch.nn.Linear(2, 2), work_dir=str(tmp_path),
            launcher=launcher, env_cfg=env_cfg, cfg=cfg)
    assert not (dist.is_available() and dist.is_initialized())
