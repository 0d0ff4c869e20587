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


def _no_path_of_the_training_file(node, train_ann):
    """The training annotation file is named once, in train_dataloader:
    no model module repeats it (frequency-aware modules get it from
    TrainCategoryInfoHook)."""
    if isinstance(node, dict):
        assert osp.normpath(str(node.get('ann_file', ''))) != \
            osp.normpath(train_ann)
        for v in node.values():
            _no_path_of_the_training_file(v, train_ann)
    elif isinstance(node, list):
        for v in node:
            _no_path_of_the_training_file(v, train_ann)


def _bind_stand_in(model, cfg, tmp_path):
    """Modules that need the training set's class statistics (EQL v1) get
    them from TrainCategoryInfoHook, which the config must register; the
    data may be absent here (real LVIS, synthetic data not generated yet),
    so they are bound to a stand-in with as many categories."""
    from longtail_plugin.engine.hooks.category_info_hook import \
        modules_needing_category_info
    from longtail_plugin.utils import category_info_from_dataset
    needing = modules_needing_category_info(model)
    if not needing:
        return
    hooks = list((cfg.get('default_hooks', None) or {}).values()) + list(
        cfg.get('custom_hooks', None) or [])
    assert 'TrainCategoryInfoHook' in [h.get('type') for h in hooks if h]
    for _, module in needing:
        k = module.num_classes
        module.bind_category_info(category_info_from_dataset(dict(
            images=[dict(id=i) for i in range(1, 1001)],
            categories=[dict(id=i, name=f'c{i}', image_count=i,
                             instance_count=i, frequency='r')
                        for i in range(1, k + 1)]), str(tmp_path)))
        assert not module.needs_category_info


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_builds(path, tmp_path):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(path)
    from longtail_plugin.utils import dataset_ann_file
    train_ann = dataset_ann_file(cfg.train_dataloader.dataset)
    assert train_ann
    _no_path_of_the_training_file(cfg.model, train_ann)
    assert cfg.custom_imports['imports'] == ['longtail_plugin']
    model = MODELS.build(cfg.model)
    _bind_stand_in(model, cfg, tmp_path)
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
    from longtail_benchmark.synthetic import make_synthetic_lvis
    import inspect
    cfg = Config.fromfile(path)
    root = cfg.data_root
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[loader].dataset
        while 'data_root' not in ds:
            # wrappers: ClassBalancedDataset (dataset), ConcatDataset (the
            # detection source first, image-level sources after it)
            ds = ds.dataset if 'dataset' in ds else ds.datasets[0]
        assert ds.data_root == root, loader
    for ev in ('val_evaluator', 'test_evaluator'):
        assert cfg[ev].ann_file == root + 'annotations/lvis_v1_val.json', ev
    gen = cfg.get('synthetic_lvis', None) or {}
    assert set(gen) <= set(inspect.signature(make_synthetic_lvis).parameters)
    thin = 'densehead-thin' in path
    dense = 'densehead' in path and not thin
    assert dense == (root == 'data/synthetic_lvis_densehead/')
    assert dense == (gen == dict(head_instances=3.0))
    assert thin == (root == 'data/synthetic_lvis_densehead_thin/')
    assert thin == (gen == dict(head_instances=3.0, thin_shapes=True))
    # an image-level companion lives in its own folder beside the set's
    # (the generator refuses a folder inside another set)
    if cfg.get('synthetic_image_level', None) is not None:
        extra = cfg.train_dataloader.dataset.datasets[1]
        assert extra.type == 'ImageLevelDataset'
        assert extra.data_root == root[:-1] + '_imagelevel/'
