"""Inference time per image and peak memory of detectors, side by side.

Written for the RefineMask issue (RefineMask vs the FCN mask head on the same
detector) but usable for any set of MMDetection configs:

* **time**: every model is built once in this process; each image is run
  through every model in turn (the order alternates from one image to the
  next), so machine load affects all models alike; the table reports the
  median and mean milliseconds per image and the ratio to the first model.
  Each call is MMDetection's own ``inference_detector`` (test pipeline,
  ``data_preprocessor``, ``predict`` with its ``test_cfg``).
* **memory**: each model runs in a fresh process over the same images;
  peak extra memory is ``torch.cuda.max_memory_allocated`` over the memory
  held after loading (CUDA) or the resident-set high-water mark ``VmHWM``
  reset after loading (CPU, Linux).

The number of detections per image is reported too: the mask head's cost
grows with it, so two models compare fairly only with similar counts.
"""
import json
import os
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    'resolve_config', 'load_detector', 'val_image_paths', 'load_images',
    'time_detectors', 'count_flops', 'peak_memory', 'format_inference_table'
]

Image = Union[str, np.ndarray]


def resolve_config(config: str) -> str:
    """A config file path; ``'mmdet::mask_rcnn/x.py'`` names a config that
    ships inside an installed package, resolved by MMEngine's own rule for
    such ``_base_`` entries."""
    if '::' not in config:
        return config
    from mmengine.config.utils import (_get_external_cfg_base_path,
                                       _get_package_and_cfg_path)
    from mmengine.utils import get_installed_path
    package, rel = _get_package_and_cfg_path(config)
    try:
        return _get_external_cfg_base_path(get_installed_path(package), rel)
    except FileNotFoundError as e:
        raise FileNotFoundError(f'{config}: {e}') from e


def load_detector(config: str,
                  checkpoint: Optional[str] = None,
                  device: str = 'cpu',
                  cfg_options: Optional[dict] = None):
    """An MMDetection detector in eval mode (``custom_imports`` honoured).

    ``cfg_options`` are merged into the config first (as ``--cfg-options``
    of MMDetection's tools), e.g. ``{'model.test_cfg.rcnn.score_thr': 0}``.
    """
    from mmengine.config import Config

    from mmdet.apis import init_detector
    cfg = Config.fromfile(resolve_config(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return init_detector(cfg, checkpoint, device=device)


def val_image_paths(config: str, num_images: int,
                    data_root: Optional[str] = None) -> List[str]:
    """The first ``num_images`` images of a config's validation set."""
    from mmengine.config import Config
    cfg = Config.fromfile(resolve_config(config))
    ds = cfg.val_dataloader.dataset
    root = data_root if data_root is not None else ds.get('data_root', '')
    ann_file = osp.join(root, ds.ann_file)
    if not osp.isfile(ann_file):
        raise FileNotFoundError(
            f'val_dataloader.dataset.ann_file {ann_file} not found (make the '
            'synthetic data with tools/make_synthetic_lvis.py or pass '
            '--data-root)')
    with open(ann_file) as f:
        images = json.load(f)['images'][:num_images]
    prefix = ds.get('data_prefix', {}).get('img', '')
    paths = []
    for img in images:
        # LVIS v1 datasets locate images by coco_url (split/file name)
        name = ('/'.join(img['coco_url'].split('/')[-2:])
                if img.get('coco_url') else img['file_name'])
        paths.append(osp.join(root, prefix, name))
    return paths


def load_images(paths: Sequence[str],
                size: Optional[Tuple[int, int]] = None) -> List[Image]:
    """The images to time: the paths themselves, or, with ``size=(w, h)``,
    the decoded images resized to that size (BGR arrays, which
    ``inference_detector`` feeds through ``LoadImageFromNDArray``). Used to
    time a detector at another input scale than the data's, e.g. the
    synthetic images at COCO's 1333x800."""
    if size is None:
        return list(paths)
    import mmcv
    return [mmcv.imresize(mmcv.imread(p), tuple(size)) for p in paths]


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        import torch
        torch.cuda.synchronize()


def time_detectors(models: Dict[str, object],
                   images: Sequence[Image],
                   device: str = 'cpu',
                   warmup: int = 2) -> Dict[str, Dict]:
    """Per-image wall time of each model over the same images, interleaved.

    Returns:
        ``{name: {times: [s, ...], dets: [n, ...]}}``.
    """
    from mmdet.apis import inference_detector
    names = list(models)
    for name in names:
        for img in images[:warmup]:
            inference_detector(models[name], img)
    out = {n: dict(times=[], dets=[]) for n in names}
    for i, img in enumerate(images):
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            _sync(device)
            t0 = time.perf_counter()
            res = inference_detector(models[name], img)
            _sync(device)
            out[name]['times'].append(time.perf_counter() - t0)
            out[name]['dets'].append(len(res.pred_instances))
    return out


def count_flops(models: Dict[str, object],
                images: Sequence[Image]) -> Dict[str, float]:
    """Mean floating-point operations per image of each model, counted by
    ``torch.utils.flop_counter`` (convolutions and matrix products, i.e. the
    multiply-adds x 2; mmcv's RoIAlign/NMS are not counted). Unlike time,
    this does not depend on the machine."""
    from torch.utils.flop_counter import FlopCounterMode

    from mmdet.apis import inference_detector
    out = {}
    for name, model in models.items():
        total = 0
        for img in images:
            counter = FlopCounterMode(display=False)
            with counter:
                inference_detector(model, img)
            total += counter.get_total_flops()
        out[name] = total / max(len(images), 1)
    return out


def _memory_worker(config: str, checkpoint: Optional[str], device: str,
                   paths: List[str], image_size: Optional[List[int]] = None,
                   cfg_options: Optional[dict] = None) -> Dict:
    from mmdet.apis import inference_detector

    from .loss_benchmark import peak_extra_memory
    images = load_images(paths, image_size)
    model = load_detector(config, checkpoint, device, cfg_options)
    inference_detector(model, images[0])  # lazy initialisation

    def run_all():
        for img in images:
            inference_detector(model, img)

    return peak_extra_memory(run_all, device)


def peak_memory(config: str,
                checkpoint: Optional[str],
                images: List[str],
                device: str = 'cpu',
                threads: Optional[int] = None,
                timeout: float = 1200.0,
                image_size: Optional[Tuple[int, int]] = None,
                cfg_options: Optional[dict] = None) -> Dict:
    """Peak extra memory of one detector over the image files ``images``
    (resized to ``image_size`` when given, see :func:`load_images`), in a
    fresh process (see the module docstring)."""
    code = ('import json, sys; '
            'from longtail_benchmark.inference import _memory_worker; '
            'print("@@" + json.dumps(_memory_worker(*json.loads(sys.argv[1]))))')
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    env = dict(os.environ)
    env['PYTHONPATH'] = root + os.pathsep + env.get('PYTHONPATH', '')
    if threads:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    args = json.dumps([
        config, checkpoint, device,
        list(images),
        list(image_size) if image_size else None,
        dict(cfg_options or {})
    ])
    from .child_process import run_json_child
    out = run_json_child([sys.executable, '-c', code, args], '@@',
                         timeout=timeout, env=env)
    if out.timed_out:
        return dict(error=f'timed out after {timeout:.0f} s')
    if out.data is not None:
        return out.data
    return dict(error=f'worker failed (rc {out.returncode}): ' +
                ' | '.join(out.tail))


def format_inference_table(timing: Dict[str, Dict],
                           memory: Dict[str, Dict],
                           flops: Optional[Dict[str, float]] = None) -> str:
    """Markdown table; ratios are against the first model."""
    names = list(timing)
    ref = names[0]
    ref_med = statistics.median(timing[ref]['times'])
    ref_mem = memory.get(ref, {}).get('peak_extra_bytes')
    lines = [
        '| model | images | dets / image | ms / image (median) '
        '| ms / image (mean) | time / ref | peak extra MB | memory / ref |'
        + (' GFLOPs / image | FLOPs / ref |' if flops else ''),
        '|---|---:|---:|---:|---:|---:|---:|---:|' +
        ('---:|---:|' if flops else '')
    ]
    for n in names:
        t = timing[n]['times']
        med = statistics.median(t)
        mem = memory.get(n, {})
        if 'peak_extra_bytes' in mem:
            mb = f"{mem['peak_extra_bytes'] / 2**20:.0f}"
            mratio = (f"{mem['peak_extra_bytes'] / ref_mem:.2f}"
                      if ref_mem else 'n/a')
        else:
            mb, mratio = f"n/a ({mem.get('error', 'not measured')})", ''
        row = (f'| {n} | {len(t)} | {statistics.mean(timing[n]["dets"]):.1f} '
               f'| {1e3 * med:.1f} | {1e3 * statistics.mean(t):.1f} '
               f'| {med / ref_med:.2f} | {mb} | {mratio} |')
        if flops:
            row += f' {flops[n] / 1e9:.1f} | {flops[n] / flops[ref]:.2f} |'
        lines.append(row)
    return '\n'.join(lines)
