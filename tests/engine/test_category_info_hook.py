"""The training annotation file is named once, in ``train_dataloader``:
TrainCategoryInfoHook gives its class statistics to EQL v1 (issue 18 item 3).
Through MMEngine's Config + MMDetection's model building, and through a real
MMEngine Runner as MMDetection's ``tools/train.py`` builds it."""
import json
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MMLogger

from longtail_plugin.engine.hooks import TrainCategoryInfoHook
from longtail_plugin.models.losses import EqualizationLoss
from longtail_plugin.utils import dataset_ann_file, train_ann_file

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EQL_SYNTHETIC = osp.join(REPO, 'configs', 'eql',
                         'mask-rcnn_r18_fpn_eql_400it_synthetic-lvis.py')


def write_set(root, image_counts, num_images=1200):
    """An LVIS-format training file under ``root/annotations``."""
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    cats = [dict(id=i + 1, name=f'c{i}', image_count=n, instance_count=n)
            for i, n in enumerate(image_counts)]
    (root / 'annotations' / 'lvis_v1_train.json').write_text(json.dumps(
        dict(images=[dict(id=i) for i in range(num_images)],
             annotations=[], categories=cats)))
    return str(root) + '/'


class FakeRunner:

    def __init__(self, model, cfg):
        self.model = model
        self.cfg = cfg
        self.logger = MMLogger.get_instance('category_info_hook_test')


def test_dataset_ann_file_joins_root_and_looks_through_wrappers():
    inner = dict(type='LVISV1Dataset', data_root='data/x/',
                 ann_file='annotations/t.json')
    assert dataset_ann_file(inner) == 'data/x/annotations/t.json'
    assert dataset_ann_file(
        dict(type='ClassBalancedDataset', dataset=inner)) == \
        'data/x/annotations/t.json'
    assert dataset_ann_file(dict(type='ConcatDataset', datasets=[
        dict(ann_file='/abs/a.json', data_root='data/x/'), inner
    ])) == '/abs/a.json'
    assert dataset_ann_file(dict(type='X')) is None


def test_eql_config_reads_the_training_set_it_trains_on(tmp_path):
    """The EQL config names no path: moving the training set (one key,
    ``train_dataloader.dataset.data_root``) moves what the loss reads."""
    pytest.importorskip('mmcv.ops')
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    # 100 classes; lambda = 0.092 of 1200 images = 110.4 images
    counts_a = [5] * 30 + [200] * 70
    counts_b = [5] * 10 + [200] * 90
    root_a = write_set(tmp_path / 'a', counts_a)
    root_b = write_set(tmp_path / 'b', counts_b)
    for root, counts in ((root_a, counts_a), (root_b, counts_b)):
        cfg = Config.fromfile(EQL_SYNTHETIC)
        cfg.train_dataloader.dataset.data_root = root
        assert cfg.default_hooks.category_info.type == 'TrainCategoryInfoHook'
        model = MODELS.build(cfg.model)
        loss = model.roi_head.bbox_head.loss_cls
        assert isinstance(loss, EqualizationLoss) and loss.needs_category_info
        runner = FakeRunner(model, cfg)
        assert train_ann_file(runner) == \
            root + 'annotations/lvis_v1_train.json'
        TrainCategoryInfoHook().before_train(runner)
        assert not loss.needs_category_info
        assert loss.tail_mask.tolist() == [float(n / 1200 < 0.092)
                                           for n in counts]
        assert loss.frequency_source.startswith(osp.abspath(root))


def test_explicit_ann_file_is_kept_and_mismatch_is_named(tmp_path):
    root = write_set(tmp_path, [1, 500, 500])
    own = EqualizationLoss(num_classes=3, image_frequency=[0.5, 0.5, 0.0],
                           lambda_=0.1)
    model = nn.Module()
    model.loss_cls = own
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        data_root=root, ann_file='annotations/lvis_v1_train.json'))))
    TrainCategoryInfoHook().before_train(FakeRunner(model, cfg))
    assert own.tail_mask.tolist() == [0.0, 0.0, 1.0]  # its own counts
    model.loss_cls = EqualizationLoss(num_classes=4)
    with pytest.raises(ValueError, match=r'num_classes=4 but ann_file=.*'
                       r'lvis_v1_train.json\' has 3 categories'):
        TrainCategoryInfoHook().before_train(FakeRunner(model, cfg))
    with pytest.raises(ValueError, match='names no `ann_file`'):
        TrainCategoryInfoHook().before_train(
            FakeRunner(model, Config(dict(train_dataloader=dict(
                dataset=dict(type='X'))))))


def test_real_runner_binds_before_the_first_iteration(tmp_path):
    """MMEngine's Runner.from_cfg + train(), as MMDetection's train.py: the
    hook comes from ``default_hooks`` (a dict, so it survives inheritance)
    and the loss trains on the frequencies of the runner's training set."""
    from mmengine.dataset import BaseDataset
    from mmengine.model import BaseModel
    from mmengine.registry import DATASETS, MODELS
    from mmengine.runner import Runner

    @DATASETS.register_module(name='_CategoryInfoToyDataset', force=True)
    class ToyDataset(BaseDataset):

        def load_data_list(self):
            return [dict(x=[float(i), 1.0], y=i % 4) for i in range(4)]

        def prepare_data(self, idx):
            d = self.get_data_info(idx)
            return dict(inputs=torch.tensor(d['x']),
                        data_samples=torch.tensor(d['y']))

    @MODELS.register_module(name='_CategoryInfoToyModel', force=True)
    class ToyModel(BaseModel):

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 3)
            self.loss_cls = EqualizationLoss(num_classes=3, lambda_=0.1)
            self.seen_tail = None

        def forward(self, inputs, data_samples=None, mode='tensor'):
            logits = self.fc(torch.stack(inputs))
            if mode != 'loss':
                return logits
            self.seen_tail = self.loss_cls.tail_mask.tolist()
            return dict(loss=self.loss_cls(logits,
                                           torch.stack(data_samples)))

    root = write_set(tmp_path / 'data', [1, 500, 50], num_images=1000)
    cfg = Config(dict(
        model=dict(type='_CategoryInfoToyModel'),
        work_dir=str(tmp_path / 'work'),
        default_scope='mmdet',
        train_dataloader=dict(
            dataset=dict(type='_CategoryInfoToyDataset', data_root=root,
                         ann_file='annotations/lvis_v1_train.json'),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=4, num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(category_info=dict(type='TrainCategoryInfoHook'),
                           checkpoint=None),
        custom_imports=dict(imports=['longtail_plugin'],
                            allow_failed_imports=False),
        log_level='WARNING'))
    runner = Runner.from_cfg(cfg)
    runner.train()
    # frequencies 0.001, 0.5, 0.05 against lambda = 0.1
    assert runner.model.seen_tail == [1.0, 0.0, 1.0]
