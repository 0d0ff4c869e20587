#!/usr/bin/env python
"""Inference time per image and peak memory of detectors, side by side.

Default: RefineMask vs the FCN mask head on the synthetic benchmark's
Mask R-CNN, with the seed-0 checkpoints of ``tools/lt_benchmark.py`` when
they exist in ``--bench-dir``::

    python tools/benchmark_inference.py --num-images 60 --threads 1
    python tools/benchmark_inference.py --device cuda --num-images 200
    python tools/benchmark_inference.py --configs A.py B.py \
        --checkpoints a.pth b.pth

At the paper's scale (R50-FPN, COCO input size, randomly initialised heads
forced to keep 100 detections per image; the images are the synthetic
validation images resized to 1333x800)::

    python tools/benchmark_inference.py --threads 2 --num-images 10 \
        --configs mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py \
                  configs/refinemask/mask-rcnn_r50_fpn_refinemask_1x_coco.py \
        --images-from configs/baselines/mask-rcnn_r18_fpn_softmax_400it_synthetic-lvis.py \
        --image-size 1333 800 --cfg-options model.test_cfg.rcnn.score_thr=0

The first config is the reference of the ratios. Logic:
``longtail_benchmark/inference.py``.
"""
import argparse
import os.path as osp

from mmengine.config import DictAction

from longtail_benchmark.inference import (count_flops, format_inference_table,
                                          load_detector, load_images,
                                          peak_memory, time_detectors,
                                          val_image_paths)
from longtail_benchmark.runner import run_name

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
    p.add_argument('--images-from', default=None,
                   help='config whose validation set gives the images '
                   '(default: the first of --configs)')
    p.add_argument('--image-size', type=int, nargs=2, default=None,
                   metavar=('W', 'H'),
                   help='resize every image to W x H before inference')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='overrides merged into every config, as in '
                   'MMDetection\'s test.py')
    p.add_argument('--data-root', default=None,
                   help='validation data root (default: the config\'s)')
    p.add_argument('--num-images', type=int, default=60)
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=None,
                   help='torch threads (CPU)')
    p.add_argument('--skip-memory', action='store_true')
    p.add_argument('--flops', action='store_true',
                   help='also count FLOPs per image (first 2 images)')
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
    paths = val_image_paths(args.images_from or args.configs[0],
                            args.num_images, args.data_root)
    images = load_images(paths, args.image_size)
    names = [run_name(c) for c in args.configs]
    for n, c in zip(names, ckpts):
        print(f'{n}: checkpoint {c or "none (random init)"}', flush=True)
    models = {
        n: load_detector(c, k, args.device, args.cfg_options)
        for n, c, k in zip(names, args.configs, ckpts)
    }
    print(f'timing {len(images)} images per model, interleaved ...',
          flush=True)
    timing = time_detectors(models, images, args.device)
    flops = count_flops(models, images[:2]) if args.flops else None
    del models
    memory = {}
    if not args.skip_memory:
        for n, c, k in zip(names, args.configs, ckpts):
            print(f'peak memory of {n} (fresh process) ...', flush=True)
            memory[n] = peak_memory(
                c,
                k,
                paths,
                args.device,
                args.threads,
                image_size=args.image_size,
                cfg_options=args.cfg_options)
    import torch
    size = (f', images resized to {args.image_size[0]}x{args.image_size[1]}'
            if args.image_size else '')
    print(f'\ndevice: {args.device}, torch threads: '
          f'{torch.get_num_threads()}{size}\n')
    print(format_inference_table(timing, memory, flops))


if __name__ == '__main__':
    main()
