"""Side-by-side training-iteration timing
(``longtail_benchmark.train_step_timing``, ``tools/benchmark_train_step.py``).

The real timing runs the softmax baseline and the CLIS config of
configs/clis/ (real MMEngine Runners, real train steps) on a tiny synthetic
set and its image-level companion, shrunk as in tests/test_clis_end_to_end.py
(12 categories; batches of 2 detection images, and 2 + 2 for CLIS). The
statistics, ratios and rotation are checked on hand-computed values.
"""
import importlib.util
import json
import math
import os.path as osp

import pytest
import torch

from longtail_benchmark.train_step_timing import (ConfigTiming, TrainStepper,
                                                  format_timing_table,
                                                  measure_train_steps,
                                                  rotated_order,
                                                  summarize_timings,
                                                  timing_config,
                                                  write_timing_results)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SOFTMAX = osp.join(
    ROOT, 'configs', 'baselines',
    'mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-densehead.py')
CLIS = osp.join(ROOT, 'configs', 'clis',
                'mask-rcnn_r18_fpn_clis_800it_synthetic-lvis-densehead.py')
NUM_CLASSES = 12
CLASSES = {
    'model.roi_head.bbox_head.num_classes': NUM_CLASSES,
    'model.roi_head.mask_head.num_classes': NUM_CLASSES,
}
SOFTMAX_TINY = dict(CLASSES, **{'train_dataloader.batch_size': 2})
CLIS_TINY = dict(CLASSES, **{
    'train_dataloader.batch_size': 4,
    'train_dataloader.sampler.batch_size': 4,
    'train_dataloader.sampler.source_ratio': [2, 2],
})


@pytest.fixture(scope='module', autouse=True)
def restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    """12 categories, 8 training images, and the image-level companion in
    ``<root>_imagelevel`` (where prepare_config moves the CLIS source)."""
    from longtail_benchmark.synthetic import make_synthetic_lvis
    from longtail_benchmark.synthetic.image_level import (
        default_image_level_dir, make_image_level_set)
    root = str(tmp_path_factory.mktemp('timing') / 'synthetic_lvis')
    make_synthetic_lvis(root, seed=0, num_classes=NUM_CLASSES,
                        num_train_images=8, num_val_images=12,
                        image_level=False)
    make_image_level_set(default_image_level_dir(root), root, seed=0,
                         images_per_group=dict(r=2, c=2, f=1))
    return root


@pytest.fixture(scope='module')
def measured(tiny_data, tmp_path_factory):
    work = tmp_path_factory.mktemp('timing_work')
    summary = measure_train_steps(
        [SOFTMAX, CLIS], warmup=1, rounds=2, threads=1,
        work_root=str(work), data_root=tiny_data,
        overrides=[SOFTMAX_TINY, CLIS_TINY])
    return summary, work


def test_real_configs_are_timed_side_by_side(measured):
    summary, work = measured
    assert summary['reference'] == osp.splitext(osp.basename(SOFTMAX))[0]
    assert summary['settings']['threads'] == 1
    assert torch.get_num_threads() == 1
    assert summary['settings']['rounds'] == 2
    rows = summary['results']
    assert [r['config'] for r in rows] == [SOFTMAX, CLIS]
    # images counted in the batches: 2 detection; 2 detection + 2 image-level
    assert [r['images_per_iter'] for r in rows] == [2, 4]
    for r in rows:
        raw = r['raw']
        assert len(raw['total']) == len(raw['step']) == 2
        assert all(t > 0 for t in raw['total'] + raw['step'])
        # data loading is part of total
        assert all(s < t for s, t in zip(raw['step'], raw['total']))
        assert r['total']['median'] == pytest.approx(
            sum(raw['total']) / 2)  # the median of two values
        assert r['last_loss'] is not None and math.isfinite(r['last_loss'])
    assert rows[0]['ratio_total'] == 1.0
    assert rows[0]['ratio_step'] == 1.0
    assert rows[0]['paired_ratio_total'] == 1.0
    ref = rows[0]['total']['median']
    assert rows[1]['ratio_total'] == pytest.approx(
        rows[1]['total']['median'] / ref)
    # the runners' work directories went to work_root, and no checkpoint
    assert osp.isdir(work / '0_mask-rcnn_r18_fpn_softmax_800it_synthetic-'
                     'lvis-densehead')
    assert not list(work.rglob('*.pth'))


def test_results_written_as_json_and_markdown(measured, tmp_path):
    summary, _ = measured
    paths = write_timing_results(summary, str(tmp_path / 'sub' / 't.json'))
    assert paths['markdown'] == str(tmp_path / 'sub' / 't.md')
    data = json.load(open(paths['json']))
    assert [r['name'] for r in data['results']] == [
        r['name'] for r in summary['results']]
    table = open(paths['markdown']).read()
    assert table.strip() == data['table'] == format_timing_table(summary)
    body = table.strip().splitlines()
    assert body[2].startswith('| config | images/iter |')
    assert len(body) == 4 + 2
    assert body[4].startswith(
        '| mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-densehead | 2 |')
    assert '| 1.00 | 1.00 |' in body[4]


def test_stepper_prepares_the_runner_like_train(tiny_data, tmp_path):
    """Optimizer wrapper and schedulers built, weights initialised, the
    loop's iteration advanced, LinearLR warm-up stepped per iteration, the
    weights trained."""
    cfg = timing_config(SOFTMAX, str(tmp_path), data_root=tiny_data,
                        overrides=SOFTMAX_TINY)
    assert cfg.val_dataloader is None and cfg.default_hooks.checkpoint is None
    assert cfg.train_dataloader.num_workers == 0
    assert cfg.train_dataloader.persistent_workers is False
    st = TrainStepper(cfg)
    from mmengine.optim import OptimWrapper
    assert isinstance(st.runner.optim_wrapper, OptimWrapper)
    lr0 = st.runner.optim_wrapper.get_lr()['lr'][0]
    # LinearLR(start_factor=0.001) of lr 0.02 over 100 iterations
    assert lr0 == pytest.approx(0.02 * 0.001)
    w = st.runner.model.roi_head.bbox_head.fc_cls.weight.detach().clone()
    out = st.step()
    assert out['images'] == 2 and 0 < out['step'] < out['total']
    assert st.runner.iter == 1
    assert st.runner.message_hub.get_info('iter') == 0
    lr1 = st.runner.optim_wrapper.get_lr()['lr'][0]
    # MMEngine's LinearLR, one step: lr0 * (1 + (1 - 0.001) / (T * 0.001))
    # with T = end - begin - 1 = 99
    assert lr1 == pytest.approx(lr0 * (1 + 0.999 / (99 * 0.001)))
    assert not torch.equal(
        w, st.runner.model.roi_head.bbox_head.fc_cls.weight)


def test_cli_writes_table(tiny_data, tmp_path, capsys):
    path = osp.join(ROOT, 'tools', 'benchmark_train_step.py')
    spec = importlib.util.spec_from_file_location('benchmark_train_step',
                                                  path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'timing.json'
    rc = tool.main([
        '--configs', SOFTMAX, SOFTMAX, '--warmup', '0', '--rounds', '1',
        '--threads', '1', '--data-root', tiny_data, '--out', str(out),
        '--cfg-options', 'model.roi_head.bbox_head.num_classes=12',
        'model.roi_head.mask_head.num_classes=12',
        'train_dataloader.batch_size=1'
    ])
    assert rc == 0
    data = json.load(open(out))
    # the same config twice: distinct names, one runner each
    names = [r['name'] for r in data['results']]
    stem = osp.splitext(osp.basename(SOFTMAX))[0]
    assert names == [stem, stem + '#2']
    assert [r['images_per_iter'] for r in data['results']] == [1, 1]
    assert data['results'][0]['ratio_total'] == 1.0
    assert data['table'] in capsys.readouterr().out
    assert (tmp_path / 'timing.md').exists()


def test_rotated_order():
    assert rotated_order(3, 0) == [0, 1, 2]
    assert rotated_order(3, 1) == [1, 2, 0]
    assert rotated_order(3, 2) == [2, 0, 1]
    assert rotated_order(3, 4) == [1, 2, 0]
    assert rotated_order(1, 5) == [0]


def test_summary_statistics_by_hand():
    a = ConfigTiming('a', 'a.py', total=[1.0, 2.0, 4.0],
                     step=[0.5, 1.5, 3.0], images=[2, 2, 2])
    b = ConfigTiming('b', 'b.py', total=[3.0, 3.0, 6.0],
                     step=[2.0, 2.0, 2.0], images=[4, 4, 4])
    s = summarize_timings([a, b], dict(rounds=3))
    ra, rb = s['results']
    assert ra['total'] == dict(median=2.0, mean=7 / 3, min=1.0, max=4.0)
    assert ra['step']['median'] == 1.5
    assert (ra['ratio_total'], ra['ratio_step'],
            ra['paired_ratio_total']) == (1.0, 1.0, 1.0)
    assert rb['total']['median'] == 3.0 and rb['total']['mean'] == 4.0
    assert rb['ratio_total'] == 1.5               # 3 / 2
    assert rb['ratio_step'] == pytest.approx(2.0 / 1.5)
    # per-round ratios 3, 1.5, 1.5 -> median 1.5
    assert rb['paired_ratio_total'] == 1.5
    assert rb['images_per_iter'] == 4
    table = format_timing_table(s)
    assert '| b | 4 | 3.000 | 4.000 | 1.50 | 1.50 | 2.000 | 2.000 | 1.33 |' \
        in table


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match='rounds must be >= 1'):
        measure_train_steps([SOFTMAX], rounds=0)
    with pytest.raises(ValueError, match='1 overrides for 2 configs'):
        measure_train_steps([SOFTMAX, CLIS], overrides=[None])
    with pytest.raises(FileNotFoundError, match='nope.py'):
        timing_config(str(tmp_path / 'nope.py'), str(tmp_path / 'w'))
    with pytest.raises(ValueError, match='no timed iteration'):
        summarize_timings([ConfigTiming('a', 'a.py')])
    a = ConfigTiming('a', 'a.py', total=[1.0], step=[0.5])
    b = ConfigTiming('b', 'b.py', total=[1.0, 2.0], step=[0.5, 1.0])
    with pytest.raises(ValueError, match='b: 2 timed iterations'):
        summarize_timings([a, b])
