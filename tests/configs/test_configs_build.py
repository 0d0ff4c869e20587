"""Every shipped config parses through MMEngine and its model builds
through MMDetection's registry."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True)
    if '_base_' not in p)


def test_configs_found():
    assert len(CONFIGS) >= 3


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_builds(path):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['longtail_plugin']
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    # the evaluator is one of ours or MMDetection's, built by its registry
    from mmdet.registry import METRICS
    ev = cfg.get('val_evaluator')
    if isinstance(ev, dict) and ev.get('type') == 'LongTailLVISMetric':
        assert METRICS.get('LongTailLVISMetric') is not None
