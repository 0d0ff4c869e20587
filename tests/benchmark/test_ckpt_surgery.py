"""tools/ckpt_surgery.py (issue 16 item 2): remove or re-initialise the
classifier of an MMEngine checkpoint, read with weights-only loading."""
import os.path as osp
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from longtail_benchmark.ckpt_surgery import (classifier_surgery,
                                             load_checkpoint_weights_only)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FC = 'roi_head.bbox_head.fc_cls.'


def write_ckpt(path, with_classifier=True):
    g = torch.Generator().manual_seed(1)
    sd = OrderedDict([
        ('backbone.conv1.weight', torch.randn(4, 3, 3, 3, generator=g)),
        ('backbone.bn1.running_mean', torch.randn(4, generator=g)),
        ('roi_head.bbox_head.fc_reg.weight', torch.randn(8, 16, generator=g)),
        ('roi_head.mask_head.conv_logits.weight',
         torch.randn(3, 8, 1, 1, generator=g)),
    ])
    if with_classifier:
        sd[FC + 'weight'] = torch.randn(4, 16, generator=g)
        sd[FC + 'bias'] = torch.randn(4, generator=g)
    buf = HistoryBuffer()
    buf.update(np.float64(0.5))
    # what MMEngine 0.10.7 stores beside the weights (numpy scalars,
    # HistoryBuffer): only readable through the plugin's allow-list
    torch.save(dict(meta=dict(iter=np.int64(800), seed=0),
                    state_dict=sd,
                    optimizer=dict(state={}, param_groups=[]),
                    message_hub=dict(log_scalars={'loss': buf})), path)
    return sd


def test_remove_drops_only_the_classifier_and_the_run_state(tmp_path):
    src, dst = str(tmp_path / 'a.pth'), str(tmp_path / 'b.pth')
    sd = write_ckpt(src)
    keys = classifier_surgery(src, dst, 'remove')
    assert keys == [FC + 'bias', FC + 'weight']
    out = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(out) == {'meta', 'state_dict'}
    assert set(out['state_dict']) == set(sd) - set(keys)
    for k, v in out['state_dict'].items():
        assert torch.equal(v, sd[k])
    assert out['meta']['ckpt_surgery']['method'] == 'remove'
    assert out['meta']['ckpt_surgery']['keys'] == keys


def test_reinit_draws_seeded_normal_weights_and_constant_bias(tmp_path):
    src = str(tmp_path / 'a.pth')
    sd = write_ckpt(src)
    outs = []
    for name, seed in (('b', 0), ('c', 0), ('d', 1)):
        dst = str(tmp_path / f'{name}.pth')
        classifier_surgery(src, dst, 'reinit', std=0.01, bias=-2.0,
                           seed=seed)
        outs.append(load_checkpoint_weights_only(dst)['state_dict'])
    b, c, d = outs
    assert set(b) == set(sd)
    w = b[FC + 'weight']
    assert w.shape == sd[FC + 'weight'].shape and w.dtype == torch.float32
    assert not torch.equal(w, sd[FC + 'weight'])
    expect = torch.randn(4, 16, generator=torch.Generator().manual_seed(0),
                         dtype=torch.float64).mul_(0.01).float()
    assert torch.equal(w, expect)
    assert torch.equal(b[FC + 'bias'], torch.full((4, ), -2.0))
    assert torch.equal(w, c[FC + 'weight'])       # same seed, same draw
    assert not torch.equal(w, d[FC + 'weight'])   # another seed
    for k in sd:
        if not k.startswith(FC):
            assert torch.equal(b[k], sd[k])


def test_custom_pattern_and_clear_errors(tmp_path):
    src = str(tmp_path / 'a.pth')
    write_ckpt(src, with_classifier=False)
    with pytest.raises(ValueError, match=r"checkpoint .*a\.pth has no "
                       r"classifier weights.*fc_cls.*fc_reg"):
        classifier_surgery(src, str(tmp_path / 'b.pth'))
    assert not osp.exists(tmp_path / 'b.pth')
    keys = classifier_surgery(src, str(tmp_path / 'b.pth'), 'remove',
                              pattern=r'^roi_head\.mask_head\.conv_logits\.')
    assert keys == ['roi_head.mask_head.conv_logits.weight']
    with pytest.raises(ValueError, match='refusing to overwrite'):
        classifier_surgery(src, src)
    with pytest.raises(ValueError, match="method must be 'remove' or"):
        classifier_surgery(src, str(tmp_path / 'c.pth'), 'zero')


def test_cli(tmp_path, capsys):
    """The thin command line, loaded from tools/ and run in-process."""
    import importlib.util
    tool = osp.join(ROOT, 'tools', 'ckpt_surgery.py')
    spec = importlib.util.spec_from_file_location('_ckpt_surgery_cli', tool)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    src, dst = str(tmp_path / 'a.pth'), str(tmp_path / 'b.pth')
    write_ckpt(src)
    assert cli.main([src, dst, '--method', 'reinit', '--seed', '3']) == 0
    assert 're-initialised 2 keys' in capsys.readouterr().out
    meta = load_checkpoint_weights_only(dst)['meta']['ckpt_surgery']
    assert (meta['method'], meta['seed']) == ('reinit', 3)
    bare = str(tmp_path / 'bare.pth')
    write_ckpt(bare, with_classifier=False)
    assert cli.main([bare, str(tmp_path / 'x.pth')]) == 1
    assert 'bare.pth has no classifier weights' in capsys.readouterr().err
