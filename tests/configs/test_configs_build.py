"""Every shipped config parses through MMEngine and its model builds
through MMDetection's registry."""
import glob
import json
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


def _stand_in_ann_files(node, tmp_path, train_ann):
    """Losses that read class frequencies at build time (EQL v1) name the
    training annotation file: it must be the training set's; where it is
    absent (real LVIS, or synthetic data not generated yet) point them at a
    stand-in with as many categories, so that the build itself is tested."""
    if isinstance(node, dict):
        if 'ann_file' in node and 'num_classes' in node:
            assert osp.normpath(node['ann_file']) == osp.normpath(train_ann)
        if 'ann_file' in node and 'num_classes' in node and \
                not osp.exists(node['ann_file']):
            k = node['num_classes']
            path = tmp_path / f'stand_in_{k}.json'
            path.write_text(json.dumps(dict(
                images=[dict(id=i) for i in range(1, 1001)],
                categories=[dict(id=i, name=f'c{i}', image_count=i,
                                 instance_count=i, frequency='r')
                            for i in range(1, k + 1)])))
            node['ann_file'] = str(path)
            node.pop('data_root', None)
        for v in node.values():
            _stand_in_ann_files(v, tmp_path, train_ann)
    elif isinstance(node, list):
        for v in node:
            _stand_in_ann_files(v, tmp_path, train_ann)


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_builds(path, tmp_path):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(path)
    from longtail_plugin.engine.hooks.grad_ratio_hook import \
        find_dataset_ann_file
    ann_file, data_root = find_dataset_ann_file(cfg.train_dataloader.dataset)
    _stand_in_ann_files(cfg.model, tmp_path,
                        osp.join(data_root or '', ann_file))
    assert cfg.custom_imports['imports'] == ['longtail_plugin']
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    # the evaluator is one of ours or MMDetection's, built by its registry
    from mmdet.registry import METRICS
    ev = cfg.get('val_evaluator')
    if isinstance(ev, dict) and ev.get('type') == 'LongTailLVISMetric':
        assert METRICS.get('LongTailLVISMetric') is not None


SYNTHETIC = [p for p in CONFIGS if 'synthetic-lvis' in osp.basename(p)]


@pytest.mark.parametrize('path', SYNTHETIC,
                         ids=[osp.relpath(p, ROOT) for p in SYNTHETIC])
def test_synthetic_config_trains_and_evaluates_on_one_set(path):
    """Train, val and test data and the evaluator's file all live under the
    config's ``data_root`` (a variant set overriding only some of them would
    train on one set and score on another); a variant names its generator
    arguments in ``synthetic_lvis``."""
    from longtail_plugin.datasets.synthetic_lvis import make_synthetic_lvis
    import inspect
    cfg = Config.fromfile(path)
    root = cfg.data_root
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[loader].dataset
        while 'data_root' not in ds:  # wrappers (ClassBalancedDataset)
            ds = ds.dataset
        assert ds.data_root == root, loader
    for ev in ('val_evaluator', 'test_evaluator'):
        assert cfg[ev].ann_file == root + 'annotations/lvis_v1_val.json', ev
    gen = cfg.get('synthetic_lvis', None) or {}
    assert set(gen) <= set(inspect.signature(make_synthetic_lvis).parameters)
    assert ('densehead' in path) == (root == 'data/synthetic_lvis_densehead/')
    assert ('densehead' in path) == (gen == dict(head_instances=3.0))
