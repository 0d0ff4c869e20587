"""Results pickles are read without running code from them."""
import importlib.util
import io
import json
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

from longtail_benchmark.results_io import (UnsafePickleError, load_results,
                                           load_results_pickle)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class _Payload:
    """Unpickling calls ``func(*args)``: what a malicious file does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _write(path, obj):
    with open(path, 'wb') as f:
        pickle.dump(obj, f, protocol=2)
    return str(path)


def _payloads(marker):
    return {
        'open': _Payload(open, str(marker), 'w'),
        'os.system': _Payload(os.system, f'touch {marker}'),
        'exec': _Payload(exec, f'open({str(marker)!r}, "w").close()'),
    }


@pytest.mark.parametrize('kind', ['open', 'os.system', 'exec'])
def test_payload_does_not_run(tmp_path, kind):
    marker = tmp_path / 'pwned'
    payload = _payloads(marker)[kind]
    # the file really is malicious: plain pickle runs it
    pickle.loads(pickle.dumps([{'img_id': 1}, payload], protocol=2))
    assert marker.exists()
    marker.unlink()
    path = _write(tmp_path / 'results.pkl', [{'img_id': 1}, payload])
    with pytest.raises(UnsafePickleError) as err:
        load_results_pickle(path)
    assert path in str(err.value)
    refused = {'open': 'io.open', 'os.system': 'posix.system',
               'exec': 'builtins.exec'}[kind]
    assert refused in str(err.value)
    assert not marker.exists()


def test_payload_inside_a_tensor_storage_does_not_run(tmp_path):
    """Tensors carry their storage as a nested torch.save archive, which
    torch itself loads unrestricted: it is read weights-only here."""
    marker = tmp_path / 'pwned'
    nested = pickle.dumps(_Payload(open, str(marker), 'w'), protocol=2)
    evil = _Payload(torch.storage._load_from_bytes, nested)
    path = _write(tmp_path / 'results.pkl', [{'img_id': 1, 'x': evil}])
    with pytest.raises(UnsafePickleError, match='results.pkl'):
        load_results_pickle(path)
    assert not marker.exists()


def _mmdet_results(out_file):
    """Results written as ``tools/test.py --out`` writes them."""
    from mmdet.evaluation.metrics import DumpDetResults
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    samples = []
    for img_id in (1, 2):
        sample = DetDataSample(metainfo=dict(
            img_id=img_id, img_path=f'val2017/{img_id:012d}.jpg',
            ori_shape=(40, 50), img_shape=(40, 50), scale_factor=(1.0, 1.0),
            flip=False, flip_direction=None,
            homography_matrix=np.eye(3, dtype=np.float32)))
        pred = InstanceData()
        pred.bboxes = torch.tensor([[5., 6., 25., 30.]])
        pred.scores = torch.tensor([0.9])
        pred.labels = torch.tensor([0])
        masks = torch.zeros(1, 40, 50, dtype=torch.bool)
        masks[0, 6:30, 5:25] = True
        pred.masks = masks
        sample.pred_instances = pred
        samples.append(sample.to_dict())
    metric = DumpDetResults(out_file_path=str(out_file))
    metric.process({}, samples)
    metric.compute_metrics(metric.results)
    return str(out_file)


def test_mmdet_results_pickle_loads_as_pickle_does(tmp_path):
    path = _mmdet_results(tmp_path / 'results.pkl')
    safe = load_results_pickle(path)
    with open(path, 'rb') as f:
        plain = pickle.load(f)
    assert len(safe) == len(plain) == 2
    for a, b in zip(safe, plain):
        assert a.keys() == b.keys()
        np.testing.assert_array_equal(a['homography_matrix'],
                                      b['homography_matrix'])
        pa, pb = a['pred_instances'], b['pred_instances']
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(pa[key], pb[key])
            assert pa[key].dtype == pb[key].dtype
        assert pa['masks'] == pb['masks']
        assert isinstance(pa['masks'][0]['counts'], bytes)
    assert load_results(path)[0]['img_id'] == 1
    json_path = tmp_path / 'r.segm.json'
    json_path.write_text(json.dumps([{'image_id': 1}]))
    assert load_results(str(json_path)) == [{'image_id': 1}]


def _tool():
    spec = importlib.util.spec_from_file_location(
        'eval_boundary', osp.join(ROOT, 'tools', 'eval_boundary.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_eval_boundary_scores_a_results_pickle_and_refuses_a_payload(
        tmp_path, capsys):
    import pycocotools.mask as mask_utils
    path = _mmdet_results(tmp_path / 'results.pkl')
    gt = np.zeros((40, 50), np.uint8)
    gt[6:30, 5:25] = 1
    rle = mask_utils.encode(np.asfortranarray(gt))
    ann = {
        'images': [{'id': i, 'height': 40, 'width': 50} for i in (1, 2)],
        'categories': [{'id': 7, 'name': 'thing'}],
        'annotations': [{
            'id': i, 'image_id': i, 'category_id': 7, 'iscrowd': 0,
            'area': float(gt.sum()), 'bbox': [5, 6, 20, 24],
            'segmentation': {'size': [40, 50],
                             'counts': rle['counts'].decode()}
        } for i in (1, 2)]
    }
    ann_file = tmp_path / 'ann.json'
    ann_file.write_text(json.dumps(ann))
    metrics = _tool().main([path, str(ann_file), '--tolerances', '1'])
    assert metrics['F@1'] == pytest.approx(1.0)
    marker = tmp_path / 'pwned'
    evil = _write(tmp_path / 'evil.pkl', [_Payload(open, str(marker), 'w')])
    with pytest.raises(SystemExit, match='io.open'):
        _tool().main([evil, str(ann_file)])
    assert not marker.exists()
    capsys.readouterr()


def test_persistent_ids_are_refused(tmp_path):
    class _Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return 'ref' if obj == 'x' else None

    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(['x'])
    path = tmp_path / 'p.pkl'
    path.write_bytes(buf.getvalue())
    with pytest.raises(UnsafePickleError, match='persistent'):
        load_results_pickle(str(path))


@pytest.mark.parametrize('protocol', [2, pickle.HIGHEST_PROTOCOL])
def test_plain_containers_load_at_any_protocol(tmp_path, protocol):
    data = [{'img_id': 1, 'ids': {1, 2}, 'frozen': frozenset([3]),
             'counts': b'\x00ab', 'shape': (2, 3), 'score': np.float32(0.5),
             'arr': np.arange(4, dtype=np.int64), 'none': None}]
    path = tmp_path / 'r.pkl'
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    out = load_results_pickle(str(path))
    np.testing.assert_array_equal(out[0].pop('arr'), data[0].pop('arr'))
    assert out == data
