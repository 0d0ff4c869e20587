"""MMEngine checkpoints load with torch's weights-only default, and only
the allow-listed classes are accepted."""
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

MAKE_CKPT = textwrap.dedent('''
    import sys, torch, torch.nn as nn
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    from torch.utils.data import Dataset

    class M(BaseModel):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(2, 1)
        def forward(self, x, mode='tensor'):
            out = self.l(torch.stack(x) if isinstance(x, list) else x)
            return dict(loss=(out ** 2).mean()) if mode == 'loss' else out

    class D(Dataset):
        metainfo = dict(classes=('a', 'b'))
        def __len__(self):
            return 8
        def __getitem__(self, i):
            return dict(x=torch.ones(2))

    Runner(model=M(), work_dir=sys.argv[1],
           train_dataloader=dict(dataset=D(), batch_size=2,
                                 sampler=dict(type='DefaultSampler')),
           optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
           param_scheduler=dict(type='MultiStepLR', milestones=[2],
                                by_epoch=False),
           train_cfg=dict(by_epoch=False, max_iters=4),
           default_hooks=dict(checkpoint=dict(
               type='CheckpointHook', by_epoch=False, interval=4)),
           randomness=dict(seed=0)).train()
''')


@pytest.fixture(scope='module')
def mmengine_ckpt(tmp_path_factory):
    wd = tmp_path_factory.mktemp('ckpt')
    script = wd / 'make.py'
    script.write_text(MAKE_CKPT)
    subprocess.run([sys.executable, str(script), str(wd)], check=True,
                   capture_output=True, cwd=ROOT)
    path = wd / 'iter_4.pth'
    assert path.exists()
    return str(path)


def _load_in_fresh_process(path, import_plugin):
    code = ('import torch\n' +
            ('import longtail_plugin\n' if import_plugin else '') +
            f'ck = torch.load({path!r}, map_location="cpu")\n'
            'print(sorted(ck))\n')
    env = dict(os.environ)
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    return subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, cwd=ROOT, env=env)


def test_plain_torch_load_refuses_mmengine_checkpoint(mmengine_ckpt):
    # the failure the fix is for (torch >= 2.6 loads weights-only)
    out = _load_in_fresh_process(mmengine_ckpt, import_plugin=False)
    assert out.returncode != 0
    assert 'Weights only load failed' in out.stderr


def test_plugin_import_makes_checkpoint_loadable(mmengine_ckpt):
    out = _load_in_fresh_process(mmengine_ckpt, import_plugin=True)
    assert out.returncode == 0, out.stderr
    assert 'message_hub' in out.stdout and 'param_schedulers' in out.stdout


def test_context_manager_scoped(mmengine_ckpt):
    from longtail_plugin.compat import mmengine_safe_globals
    with mmengine_safe_globals():
        ck = torch.load(mmengine_ckpt, map_location='cpu', weights_only=True)
    assert ck['meta']['iter'] == 4


class _Evil:

    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_arbitrary_globals_still_refused(tmp_path):
    import longtail_plugin  # noqa: F401  (registers the allow-list)
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': _Evil()}, str(path))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(str(path), weights_only=True)


def test_getattr_restricted_to_history_buffer_methods(tmp_path):
    import longtail_plugin  # noqa: F401
    from mmengine.logging.history_buffer import HistoryBuffer

    from longtail_plugin.compat.checkpoint import history_buffer_method
    assert history_buffer_method(HistoryBuffer, 'mean') is HistoryBuffer.mean

    class _ReachOs:

        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))

    path = tmp_path / 'getattr.pth'
    torch.save({'x': _ReachOs()}, str(path))
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(str(path), weights_only=True)


def test_context_manager_keeps_global_registration():
    import longtail_plugin  # noqa: F401
    from longtail_plugin.compat import mmengine_safe_globals
    before = list(torch.serialization.get_safe_globals())
    with mmengine_safe_globals():
        pass
    assert torch.serialization.get_safe_globals() == before


def test_context_manager_scope_without_process_registration(mmengine_ckpt):
    """What the docstring promises: inside the block the classes are
    allowed even when the process-wide list lacks them, and on exit the
    list is exactly as before (so, after a clear, the load fails again)."""
    import longtail_plugin  # noqa: F401
    from longtail_plugin.compat import (mmengine_safe_globals,
                                        register_mmengine_safe_globals)
    saved = list(torch.serialization.get_safe_globals())
    try:
        torch.serialization.clear_safe_globals()
        with mmengine_safe_globals():
            ck = torch.load(mmengine_ckpt, map_location='cpu',
                            weights_only=True)
        assert ck['meta']['iter'] == 4
        assert torch.serialization.get_safe_globals() == []
        with pytest.raises(pickle.UnpicklingError):
            torch.load(mmengine_ckpt, map_location='cpu', weights_only=True)
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(saved)
    register_mmengine_safe_globals()


def test_importing_compat_registers_process_wide(mmengine_ckpt):
    """Importing ``longtail_plugin.compat`` alone runs the package's
    registration (documented): a plain weights-only load works after it."""
    code = '\n'.join([
        'import torch',
        'from longtail_plugin.compat import mmengine_safe_globals',
        f'ck = torch.load({mmengine_ckpt!r}, map_location="cpu")',
        'print(ck["meta"]["iter"])', ''])
    env = dict(os.environ)
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '4'
