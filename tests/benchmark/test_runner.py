"""The benchmark runner's config preparation and boundary scoring."""
import json
import os.path as osp

import pycocotools.mask as mask_utils
from mmengine.config import Config

from lvis_cases import tiny_lvis_gt, write_json
from longtail_benchmark.runner import boundary_metrics, prepare_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SYN = osp.join(ROOT, 'configs', 'baselines',
               'mask-rcnn_r18_fpn_softmax_400it_synthetic-lvis.py')


def test_prepare_config_sets_seed_root_and_prediction_file(tmp_path):
    out = prepare_config(SYN, str(tmp_path / 'run'), seed=7,
                         data_root=str(tmp_path / 'data'))
    cfg = Config.fromfile(out)
    assert cfg.randomness.seed == 7
    assert cfg.val_evaluator.ann_file.startswith(str(tmp_path / 'data') + '/')
    assert cfg.train_dataloader.dataset.data_root == str(tmp_path / 'data') + '/'
    assert cfg.val_evaluator.outfile_prefix == str(
        tmp_path / 'run' / 'results' / 'val')


def _segm_results(gt, shift=0):
    res = []
    for ann in gt['annotations']:
        img = next(i for i in gt['images'] if i['id'] == ann['image_id'])
        x, y, w, h = ann['bbox']
        poly = [[x + shift, y, x + w + shift, y, x + w + shift, y + h,
                 x + shift, y + h]]
        rle = mask_utils.merge(
            mask_utils.frPyObjects(poly, img['height'], img['width']))
        rle['counts'] = rle['counts'].decode()
        res.append(dict(image_id=ann['image_id'],
                        category_id=ann['category_id'], score=0.9,
                        segmentation=rle))
    return res


def _work_dir(tmp_path, results):
    gt = tiny_lvis_gt()
    ann_file = write_json(gt, tmp_path / 'val.json')
    work = tmp_path / 'run'
    (work / 'results').mkdir(parents=True)
    Config(dict(val_evaluator=dict(type='LongTailLVISMetric',
                                   ann_file=ann_file))).dump(
                                       str(work / 'run.py'))
    write_json(results(gt), work / 'results' / 'val.segm.json')
    return str(work)


def test_boundary_metrics_perfect_masks(tmp_path):
    work = _work_dir(tmp_path, _segm_results)
    m = boundary_metrics(work)
    for tol in (1, 3, 5):
        assert m[f'boundary/F@{tol}'] == 1.0
        assert m[f'boundary/F@{tol}_all'] == 1.0
    assert m['boundary/num_gt'] == 3


def test_boundary_metrics_shifted_masks(tmp_path):
    # A 2-px horizontal shift: vertical edges are 2 px off (outside 1 px,
    # inside 3 px), so F grows with the tolerance and reaches 1 at 3 px.
    work = _work_dir(tmp_path, lambda gt: _segm_results(gt, shift=2))
    m = boundary_metrics(work)
    assert m['boundary/F@1'] < m['boundary/F@3']
    assert m['boundary/F@3'] == 1.0


def test_boundary_metrics_without_masks(tmp_path):
    assert boundary_metrics(str(tmp_path)) == {}


def _run(name, seed, metrics):
    return dict(name=name, seed=seed, wall_time_s=60.0, metrics=metrics)


def test_report_columns_follow_the_metrics():
    from longtail_benchmark.report import markdown_table, summarize
    dense = {'lvis/bbox_AP': 0.1, 'lvis/bbox_APr': 0.0,
             'lvis/bbox_APc': 0.1, 'lvis/bbox_APf': 0.2}
    table = markdown_table(summarize([_run('atss', 0, dense)]))
    assert 'bbox APr' in table and 'segm' not in table
    assert 'boundary' not in table
    masks = dict(dense, **{'lvis/segm_AP': 0.3, 'boundary/F@1': 0.5,
                           'boundary/F@3': 0.75})
    rows = summarize([_run('mrcnn', 0, masks),
                      _run('mrcnn', 1, dict(masks, **{'boundary/F@1': 0.7}))])
    assert rows['mrcnn']['mean']['boundary_F@1'] == 60.0
    table = markdown_table(rows)
    assert 'boundary F@1' in table and '60.0 ± 14.1' in table


def test_inference_table_ratios_and_missing_memory():
    from longtail_benchmark.inference import format_inference_table
    timing = {'fcn': dict(times=[0.10, 0.12, 0.11], dets=[100, 100, 90]),
              'refinemask': dict(times=[0.15, 0.16, 0.18], dets=[100] * 3)}
    memory = {'fcn': dict(peak_extra_bytes=100 * 2**20),
              'refinemask': dict(error='worker failed')}
    lines = format_inference_table(timing, memory).splitlines()
    assert lines[2].startswith('| fcn | 3 | 96.7 | 110.0 | 110.0 | 1.00 '
                               '| 100 | 1.00 |')
    # median 160 ms / 110 ms
    assert '| 1.45 |' in lines[3] and 'n/a (worker failed)' in lines[3]


def test_val_image_paths_names_missing_file(tmp_path):
    import pytest

    from longtail_benchmark.inference import val_image_paths
    with pytest.raises(FileNotFoundError, match='val_dataloader'):
        val_image_paths(SYN, 3, data_root=str(tmp_path))


def test_read_group_traces(tmp_path):
    from longtail_benchmark.grad_ratio_plots import read_group_traces
    recs = [dict(step=20, loss=1.0, grad_ratio_r=0.2, grad_ratio_c=0.5,
                 grad_ratio_f=1.0),
            dict(step=40, lr=0.1),
            dict(step=40, grad_ratio_r=0.4, grad_ratio_c=0.7,
                 grad_ratio_f=1.0, focal_gamma_r=6.8)]
    path = tmp_path / 'scalars.json'
    path.write_text('\n'.join(json.dumps(r) for r in recs))
    tr = read_group_traces(str(path))
    assert tr['step'].tolist() == [20, 40]
    assert tr['r'].tolist() == [0.2, 0.4]
    assert read_group_traces(str(path), 'focal_gamma')['r'].tolist() == [6.8]


def test_inference_table_flops_columns():
    from longtail_benchmark.inference import format_inference_table
    timing = {'a': dict(times=[0.1], dets=[10]),
              'b': dict(times=[0.2], dets=[10])}
    lines = format_inference_table(timing, {}, {'a': 2e9, 'b': 5e9})
    lines = lines.splitlines()
    assert lines[0].endswith('GFLOPs / image | FLOPs / ref |')
    assert lines[3].endswith('| 5.0 | 2.50 |')


def test_count_flops_matches_hand_count(monkeypatch):
    """A 3x3 conv 2->4 over 5x6 pixels: 4*5*6 outputs x 2*9 multiply-adds
    x 2 = 4,320 FLOPs per call, counted for every image."""
    import torch

    import mmdet.apis
    from longtail_benchmark.inference import count_flops
    conv = torch.nn.Conv2d(2, 4, 3, padding=1)

    def fake_inference(model, img):
        return model(torch.zeros(1, 2, 5, 6))

    monkeypatch.setattr(mmdet.apis, 'inference_detector', fake_inference)
    out = count_flops({'conv': conv}, ['x', 'y'])
    assert out == {'conv': 4320}


def test_resolve_config_and_load_images(tmp_path):
    import mmcv
    import numpy as np
    import pytest

    from longtail_benchmark.inference import (load_images,
                                                     resolve_config)
    path = resolve_config('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')
    assert osp.isfile(path) and path.endswith('mask-rcnn_r50_fpn_1x_coco.py')
    assert resolve_config(SYN) == SYN
    with pytest.raises(FileNotFoundError, match='mmdet::nope/x.py'):
        resolve_config('mmdet::nope/x.py')
    img = tmp_path / 'a.png'
    mmcv.imwrite(np.full((16, 20, 3), 7, np.uint8), str(img))
    assert load_images([str(img)]) == [str(img)]
    arr, = load_images([str(img)], (40, 24))
    assert arr.shape == (24, 40, 3) and int(arr[5, 5, 0]) == 7


def test_data_roots_follow_each_config_and_refuse_a_mixed_override(tmp_path):
    import pytest

    from longtail_benchmark.runner import data_roots
    dense = osp.join(
        ROOT, 'configs', 'baselines',
        'mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-densehead.py')
    roots = data_roots([SYN, dense])
    assert roots[SYN] == ('data/synthetic_lvis', ())
    assert roots[dense] == ('data/synthetic_lvis_densehead',
                            (('head_instances', 3.0), ))
    assert data_roots([dense], str(tmp_path))[dense][0] == str(tmp_path)
    with pytest.raises(ValueError, match='different synthetic sets'):
        data_roots([SYN, dense], str(tmp_path))


def test_prepare_config_reads_configs_one_at_a_time(tmp_path, monkeypatch):
    """Side-by-side trainings (--jobs) prepare their configs from threads;
    MMEngine's resolution of ``mmdet::`` bases is not thread-safe (a race in
    pkg_resources' lazy start failed a real run), so reads are serialised."""
    import threading
    import time

    from longtail_benchmark import runner
    real = Config.fromfile
    active, peak, lock = [0], [0], threading.Lock()

    def slow_fromfile(*args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.2)
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(runner.Config, 'fromfile', slow_fromfile)
    threads = [
        threading.Thread(target=prepare_config,
                         args=(SYN, str(tmp_path / f'run{i}'), i))
        for i in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 1
    for i in range(3):
        assert osp.isfile(tmp_path / f'run{i}' /
                          'mask-rcnn_r18_fpn_softmax_400it_synthetic-lvis.py')


REAL = osp.join(ROOT, 'configs', 'eqlv2',
                'mask-rcnn_r50_fpn_eqlv2_1x_lvis-v1.py')
DENSE = osp.join(ROOT, 'configs', 'baselines',
                 'mask-rcnn_r18_fpn_softmax_800it_synthetic-lvis-densehead.py')


def test_only_configs_that_name_a_synthetic_set_get_data():
    from longtail_benchmark.runner import synthetic_set_args
    assert synthetic_set_args(Config.fromfile(SYN)) == {}
    assert synthetic_set_args(Config.fromfile(DENSE)) == {
        'head_instances': 3.0}
    real = Config.fromfile(REAL)
    assert real.data_root.rstrip('/').endswith('lvis_v1')
    assert synthetic_set_args(real) is None


def test_runner_refuses_a_real_lvis_folder_and_changes_nothing(
        tmp_path, monkeypatch):
    """A real-LVIS config gets an error instead of generation, and a
    synthetic config pointed at a real folder (--data-root) is refused by
    the generator: the folder is byte-identical afterwards. Nothing trains:
    the runner's data preparation alone is called."""
    import pytest

    from longtail_benchmark.runner import prepare_data
    from tests.real_lvis_folder import fingerprint, make_real_lvis_folder
    monkeypatch.chdir(tmp_path)  # the real config's data/lvis_v1/
    root = make_real_lvis_folder(str(tmp_path / 'data' / 'lvis_v1'))
    before = fingerprint(str(tmp_path))
    with pytest.raises(ValueError, match='names no synthetic set') as err:
        prepare_data([SYN, REAL], seed=0, num_classes=6, progress=None)
    assert REAL in str(err.value) and 'lvis_v1' in str(err.value)
    assert fingerprint(str(tmp_path)) == before
    with pytest.raises(ValueError, match='names no synthetic set'):
        prepare_data([REAL], data_root=root, progress=None)
    assert fingerprint(str(tmp_path)) == before
    from longtail_benchmark.synthetic import FolderNotOwnedError
    with pytest.raises(FolderNotOwnedError, match='train2017'):
        prepare_data([SYN], data_root=root, num_classes=6, progress=None)
    assert fingerprint(str(tmp_path)) == before
