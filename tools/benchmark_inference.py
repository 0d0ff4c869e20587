#!/usr/bin/env python
"""Inference time per image and peak memory of detectors, side by side.

Default: RefineMask vs the FCN mask head on the synthetic benchmark's
Mask R-CNN, with the seed-0 checkpoints of ``tools/lt_benchmark.py`` when
they exist in ``--bench-dir``::

    python tools/benchmark_inference.py --num-images 60 --threads 1
    python tools/benchmark_inference.py --device cuda --num-images 200
    python tools/benchmark_inference.py --configs A.py B.py \
        --checkpoints a.pth b.pth

The first config is the reference of the ratios. Logic:
``longtail_plugin/benchmark/inference.py``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from longtail_plugin.benchmark.inference import (  # noqa: E402
    format_inference_table, load_detector, peak_memory, time_detectors,
    val_image_paths)
from longtail_plugin.benchmark.runner import run_name  # noqa: E402

DEFAULT_CONFIGS = [
    'configs/baselines/mask-rcnn_r18_fpn_softmax_400it_synthetic-lvis.py',
    'configs/refinemask/mask-rcnn_r18_fpn_refinemask_400it_synthetic-lvis.py',
]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--configs', nargs='+', default=DEFAULT_CONFIGS)
    p.add_argument('--checkpoints', nargs='+', default=None,
                   help='one per config (default: <bench-dir>/<config '
                   'name>/seed0/iter_*.pth when present, else random init)')
    p.add_argument('--bench-dir', default='work_dirs/lt')
    p.add_argument('--data-root', default=None,
                   help='validation data root (default: the config\'s)')
    p.add_argument('--num-images', type=int, default=60)
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=None,
                   help='torch threads (CPU)')
    p.add_argument('--skip-memory', action='store_true')
    return p.parse_args()


def _default_checkpoint(bench_dir: str, config: str):
    d = osp.join(bench_dir, run_name(config), 'seed0')
    if not osp.isdir(d):
        return None
    import glob
    ckpts = sorted(glob.glob(osp.join(d, 'iter_*.pth')),
                   key=lambda p: int(p.rsplit('_', 1)[1].split('.')[0]))
    return ckpts[-1] if ckpts else None


def main():
    args = parse_args()
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    if args.checkpoints and len(args.checkpoints) != len(args.configs):
        raise SystemExit('--checkpoints needs one file per --configs entry')
    ckpts = args.checkpoints or [
        _default_checkpoint(args.bench_dir, c) for c in args.configs
    ]
    images = val_image_paths(args.configs[0], args.num_images,
                             args.data_root)
    names = [run_name(c) for c in args.configs]
    for n, c in zip(names, ckpts):
        print(f'{n}: checkpoint {c or "none (random init)"}', flush=True)
    models = {
        n: load_detector(c, k, args.device)
        for n, c, k in zip(names, args.configs, ckpts)
    }
    print(f'timing {len(images)} images per model, interleaved ...',
          flush=True)
    timing = time_detectors(models, images, args.device)
    del models
    memory = {}
    if not args.skip_memory:
        for n, c, k in zip(names, args.configs, ckpts):
            print(f'peak memory of {n} (fresh process) ...', flush=True)
            memory[n] = peak_memory(c, k, images, args.device, args.threads)
    import torch
    print(f'\ndevice: {args.device}, torch threads: '
          f'{torch.get_num_threads()}\n')
    print(format_inference_table(timing, memory))


if __name__ == '__main__':
    main()
