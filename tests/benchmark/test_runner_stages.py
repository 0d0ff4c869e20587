"""Stage-2 rows of the benchmark runner: planning, ordering and the per-seed
``load_from``, with the training call stubbed (nothing trains here)."""
import importlib.util
import json
import os.path as osp
import sys
import threading
import time

import pytest
from mmengine.config import Config

from longtail_benchmark import runner
from longtail_benchmark.runner import (RunResult, RunSpec, final_checkpoint,
                                       plan_stages, run_training,
                                       runs_to_train)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STAGE1 = osp.join(
    'configs', 'baselines',
    'mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-densehead.py')
BAGS = osp.join(
    'configs', 'lvis_traveler',
    'mask-rcnn_r18_fpn_bags-decoupled_400it_synthetic-lvis-densehead.py')
FROZEN = osp.join(
    'configs', 'lvis_traveler',
    'mask-rcnn_r18_fpn_bags-frozen-backbone_400it_synthetic-lvis-densehead.py')
S1 = runner.run_name(STAGE1)


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    # the shipped configs name stage1_config from the repository root
    monkeypatch.chdir(ROOT)


def _finish(work_dir, checkpoint=True):
    """Lay out a finished run as train.py and the tool leave it."""
    import os
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'result.json'), 'w') as f:
        json.dump(dict(config='c', name='n', seed=0, work_dir=work_dir,
                       metrics={}), f)
    if checkpoint:
        ckpt = osp.join(work_dir, 'iter_800.pth')
        open(ckpt, 'wb').close()
        with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
            f.write(ckpt)


def test_plan_adds_stage1_first_and_pairs_seeds(tmp_path):
    out = str(tmp_path / 'lt')
    phases = plan_stages([BAGS, FROZEN], [0, 1], out)
    assert len(phases) == 2
    assert [(s.config, s.seed, s.stage1_work_dir) for s in phases[0]] == [
        (STAGE1, 0, None), (STAGE1, 1, None)]
    assert [(s.config, s.seed) for s in phases[1]] == [
        (BAGS, 0), (BAGS, 1), (FROZEN, 0), (FROZEN, 1)]
    for s in phases[1]:
        assert s.work_dir == osp.join(out, runner.run_name(s.config),
                                      f'seed{s.seed}')
        # seed k starts from the stage-1 run at seed k, under the same --out
        assert s.stage1_work_dir == osp.join(out, S1, f'seed{s.seed}')
    # a stage-1 config named explicitly is not planned twice
    again = plan_stages([STAGE1, BAGS], [0], out)
    assert [[s.config for s in p] for p in again] == [[STAGE1], [BAGS]]


def test_plan_without_stages_is_one_phase(tmp_path):
    phases = plan_stages([STAGE1], [0, 2], str(tmp_path))
    assert [[(s.seed, s.stage1_work_dir) for s in p] for p in phases] == [
        [(0, None), (2, None)]]


def test_stage1_config_errors(tmp_path):
    a, b = tmp_path / 'a.py', tmp_path / 'b.py'
    a.write_text("stage1_config = 'b.py'\n")  # relative to the config
    b.write_text("stage1_config = 'a.py'\n")
    with pytest.raises(ValueError, match='stage1_config cycle'):
        plan_stages([str(a)], [0], str(tmp_path / 'out'))
    c = tmp_path / 'c.py'
    c.write_text("stage1_config = 'missing.py'\n")
    with pytest.raises(FileNotFoundError, match="c.py: stage1_config = "
                       "'missing.py' is not a file"):
        runner.stage1_config(str(c))


def test_final_checkpoint(tmp_path):
    run = tmp_path / 'run'
    assert final_checkpoint(str(run)) is None
    _finish(str(run), checkpoint=False)
    assert final_checkpoint(str(run)) is None
    (run / 'last_checkpoint').write_text('/elsewhere/iter_800.pth')
    assert final_checkpoint(str(run)) is None
    (run / 'iter_800.pth').write_bytes(b'')
    # a moved run folder: found by name inside it
    assert final_checkpoint(str(run)) == str(run / 'iter_800.pth')


def test_runs_to_train(tmp_path):
    out = str(tmp_path / 'lt')
    phases = plan_stages([BAGS], [0, 1], out)
    s1 = [s.work_dir for s in phases[0]]
    s2 = [s.work_dir for s in phases[1]]
    assert runs_to_train(phases) == s1 + s2
    # stage 1 finished at both seeds; seed 1 kept no checkpoint: it trains
    # again before its stage 2, seed 0 is reused
    _finish(s1[0])
    _finish(s1[1], checkpoint=False)
    assert runs_to_train(phases) == [s1[1]] + s2
    # once the stage-2 runs are finished, nothing needs the checkpoint
    _finish(s2[0])
    _finish(s2[1])
    assert runs_to_train(phases) == []
    assert runs_to_train(phases, rerun=True) == s1 + s2


class _FakePopen:
    """Stands in for train.py: records the command, prints one log line."""
    calls = []

    def __init__(self, cmd, **kwargs):
        type(self).calls.append(cmd)
        self.stdout = iter(['Iter(train) [1/1]\n'])
        self.returncode = 0

    def wait(self):
        return 0


def test_run_training_loads_the_same_seed_stage1_checkpoint(
        tmp_path, monkeypatch):
    monkeypatch.setattr(runner.subprocess, 'Popen', _FakePopen)
    monkeypatch.setattr(runner, 'mmdet_tool', lambda name: name)
    _FakePopen.calls = []
    out = str(tmp_path / 'lt')
    phases = plan_stages([BAGS], [0, 1], out)
    for spec in phases[0]:
        _finish(spec.work_dir)
    for spec in phases[1]:
        run_training(spec, data_root=str(tmp_path / 'data'))
        cfg = Config.fromfile(
            osp.join(spec.work_dir, runner.run_name(BAGS) + '.py'))
        assert cfg.load_from == osp.abspath(
            osp.join(out, S1, f'seed{spec.seed}', 'iter_800.pth'))
        assert cfg.randomness.seed == spec.seed
    assert len(_FakePopen.calls) == 2


def test_run_training_refuses_a_missing_stage1_checkpoint(
        tmp_path, monkeypatch):
    monkeypatch.setattr(runner.subprocess, 'Popen', _FakePopen)
    _FakePopen.calls = []
    spec = RunSpec(BAGS, 0, str(tmp_path / 'stage2'),
                   stage1_work_dir=str(tmp_path / 'stage1'))
    with pytest.raises(FileNotFoundError, match='stage1_config first'):
        run_training(spec)
    assert _FakePopen.calls == []


def _load_tool():
    path = osp.join(ROOT, 'tools', 'lt_benchmark.py')
    spec = importlib.util.spec_from_file_location('lt_benchmark_tool', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run_tool(monkeypatch, tmp_path, argv):
    tool = _load_tool()
    events = []
    lock = threading.Lock()

    def fake_train(spec, data_root=None, threads=None, on_progress=None,
                   overrides=None):
        if spec.stage1_work_dir is not None:
            # what run_training reads: the stage-1 checkpoint must exist
            assert final_checkpoint(spec.stage1_work_dir) is not None
        with lock:
            events.append(('start', spec.config, spec.seed))
        time.sleep(0.05)  # lets a wrongly scheduled job overlap
        _finish(spec.work_dir)
        with lock:
            events.append(('end', spec.config, spec.seed))
        return RunResult(spec.config, runner.run_name(spec.config),
                         spec.seed, spec.work_dir)

    monkeypatch.setattr(tool, 'run_training', fake_train)
    monkeypatch.setattr(
        tool, 'prepare_data',
        lambda configs, *a, **k: {c: ('data/x', ()) for c in configs})
    monkeypatch.setattr(tool, 'write_report', lambda results, out: 'table')
    monkeypatch.setattr(sys, 'argv', ['lt_benchmark.py'] + argv)
    tool.main()
    return events


def test_tool_trains_missing_stage1_first_with_two_jobs(tmp_path,
                                                        monkeypatch):
    out = str(tmp_path / 'lt')
    events = _run_tool(monkeypatch, tmp_path, [
        '--configs', BAGS, '--seeds', '0', '1', '--out', out, '--jobs', '2'
    ])
    starts = [e for e in events if e[0] == 'start']
    assert sorted(starts) == sorted([('start', STAGE1, 0),
                                     ('start', STAGE1, 1),
                                     ('start', BAGS, 0), ('start', BAGS, 1)])
    last_stage1_end = max(i for i, e in enumerate(events)
                          if e[0] == 'end' and e[1] == STAGE1)
    first_stage2_start = min(i for i, e in enumerate(events)
                             if e[0] == 'start' and e[1] == BAGS)
    assert last_stage1_end < first_stage2_start
    with open(osp.join(out, runner.run_name(BAGS), 'seed1',
                       'result.json')) as f:
        assert json.load(f)['seed'] == 1


def test_tool_reuses_a_finished_stage1(tmp_path, monkeypatch):
    out = str(tmp_path / 'lt')
    for seed in (0, 1):
        _finish(osp.join(out, S1, f'seed{seed}'))
    events = _run_tool(monkeypatch, tmp_path, [
        '--configs', BAGS, '--seeds', '0', '1', '--out', out
    ])
    assert [e for e in events if e[0] == 'start'] == [('start', BAGS, 0),
                                                      ('start', BAGS, 1)]


def test_shipped_stage2_configs_name_their_stage1():
    """Every config with ``stage1_config`` names an existing config, and
    its ``load_from`` (for MMDetection's train.py) is that config's run."""
    import glob
    found = 0
    for path in sorted(glob.glob(osp.join('configs', '**', '*.py'),
                                 recursive=True)):
        with open(path) as f:
            if 'stage1_config' not in f.read():
                continue
        first = runner.stage1_config(path)
        assert first is not None, path
        cfg = Config.fromfile(path)
        assert runner.run_name(first) in cfg.load_from, path
        found += 1
    assert found >= 3
