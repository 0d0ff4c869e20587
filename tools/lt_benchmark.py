#!/usr/bin/env python
"""Train a set of configs on the synthetic long-tailed LVIS benchmark.

Generates the data when missing, trains every (config, seed) with the same
iteration budget through MMDetection's own train.py, evaluates with the LVIS
metric, and writes OUT/results.md, OUT/results.json and OUT/ap_by_group.png.

Example:
    python tools/lt_benchmark.py --out work_dirs/lt --seeds 0 1 2 \
        --configs configs/baselines/mask-rcnn_r18_fpn_softmax_400it_synthetic-lvis.py

A stage-2 config (one that names ``stage1_config = '<path>'``) starts at
seed k from the final checkpoint of its stage-1 config's seed-k run under the
same --out; that row is added and trained first when its run (or its
checkpoint) is missing. Stage-1 rows all finish before any stage-2 row
starts, also with --jobs.
"""
import argparse
import json
import os
import os.path as osp
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from longtail_benchmark.report import write_report
from longtail_benchmark.runner import (boundary_metrics, plan_stages,
                                       predict_checkpoint, prepare_data,
                                       run_name, run_training, runs_to_train)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    p.add_argument('--configs', nargs='+', required=True)
    p.add_argument('--seeds', nargs='+', type=int, default=[0])
    p.add_argument('--out', required=True, help='output directory')
    p.add_argument('--data-root', default=None,
                   help='train every config on this synthetic set (default: '
                   "each config's own data_root, generated when missing with "
                   "the config's `synthetic_lvis` generator arguments)")
    p.add_argument('--data-seed', type=int, default=0,
                   help='seed of the synthetic data set')
    p.add_argument('--num-classes', type=int, default=100)
    p.add_argument('--jobs', type=int, default=1,
                   help='trainings run side by side (threads are split)')
    p.add_argument('--threads', type=int, default=None,
                   help='torch threads per training (default: cores / jobs)')
    p.add_argument('--rerun', action='store_true',
                   help='train again even when a finished run is found')
    p.add_argument('--add-boundary', action='store_true',
                   help='for finished mask runs without boundary scores: '
                   'predict with their checkpoint and add the boundary '
                   'F-score to result.json')
    p.add_argument('--report-only', action='store_true',
                   help='train nothing: tabulate the finished runs in --out')
    p.add_argument('--data-only', action='store_true',
                   help='train nothing: check the configs and generate (or '
                   'reuse) their synthetic sets, then stop')
    return p.parse_args()


class Progress:
    """One status line per run: which run, iteration, time left."""

    def __init__(self, total: int):
        self.total = total
        self.lock = threading.Lock()

    def say(self, idx: int, name: str, seed: int, what: str):
        with self.lock:
            print(f'[{idx}/{self.total}] {name} seed={seed}: {what}',
                  flush=True)

    def make_callback(self, idx: int, name: str, seed: int):
        t0 = time.time()
        last = [0.0]

        def cb(it: int, max_it: int):
            now = time.time()
            if now - last[0] < 30 and it != max_it:
                return
            last[0] = now
            eta = (now - t0) / max(it, 1) * (max_it - it)
            with self.lock:
                print(f'[{idx}/{self.total}] {name} seed={seed}: '
                      f'iter {it}/{max_it}, about {eta / 60:.1f} min of '
                      'training left', flush=True)

        return cb


def main():
    args = parse_args()
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    try:
        phases = plan_stages(args.configs, args.seeds, args.out)
    except (ValueError, FileNotFoundError, TypeError) as e:
        raise SystemExit(f'lt_benchmark: {e}')
    specs = [s for phase in phases for s in phase]
    if args.report_only:
        specs = [
            s for s in specs
            if osp.exists(osp.join(s.work_dir, 'result.json'))
        ]
        if not specs:
            raise SystemExit(f'no finished run in {args.out}')
        phases = [specs]
    to_train = set(runs_to_train(phases, args.rerun))
    roots = {}
    if not args.report_only:
        try:
            roots = prepare_data(list(dict.fromkeys(s.config for s in specs)),
                                 args.data_root,
                                 seed=args.data_seed,
                                 num_classes=args.num_classes,
                                 progress=lambda m: print(m, flush=True))
        except (ValueError, FileExistsError, NotADirectoryError) as e:
            raise SystemExit(f'lt_benchmark: {e}')
        if args.data_only:
            return
    progress = Progress(len(specs))
    threads = args.threads or max(1, (os.cpu_count() or 1) //
                                  max(args.jobs, 1))

    def one(idx_spec):
        idx, spec = idx_spec
        name = run_name(spec.config)
        done = osp.join(spec.work_dir, 'result.json')
        if args.report_only or spec.work_dir not in to_train:
            progress.say(idx, name, spec.seed, 'reusing finished run')
            with open(done) as f:
                rec = json.load(f)
            if (args.add_boundary and 'lvis/segm_AP' in rec['metrics']
                    and 'boundary/F@1' not in rec['metrics']):
                progress.say(idx, name, spec.seed,
                             'predicting for the boundary F-score')
                predict_checkpoint(spec.work_dir, threads)
                rec['metrics'].update(boundary_metrics(spec.work_dir))
                with open(done, 'w') as f:
                    json.dump(rec, f, indent=1)
            return rec
        progress.say(idx, name, spec.seed, 'started')
        res = run_training(
            spec, data_root=roots[spec.config][0], threads=threads,
            on_progress=progress.make_callback(idx, name, spec.seed))
        rec = res.to_dict()
        with open(done, 'w') as f:
            json.dump(rec, f, indent=1)
        m = res.metrics
        progress.say(
            idx, name, spec.seed, f'done in {res.wall_time_s / 60:.1f} min, '
            f"bbox AP {100 * m.get('lvis/bbox_AP', float('nan')):.1f} "
            f"APr {100 * m.get('lvis/bbox_APr', float('nan')):.1f}")
        return rec

    # one phase after another: a stage-2 run starts once every stage-1 run
    # (its checkpoint) is done
    numbered = list(enumerate(specs, 1))
    results = []
    with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        for phase in phases:
            todo = [(i, s) for i, s in numbered if s in phase]
            results += list(pool.map(one, todo))
    table = write_report(results, args.out)
    print('\n' + table)
    print(f'\nwritten: {args.out}/results.md, results.json, ap_by_group.png '
          f'(total {(time.time() - t0) / 60:.1f} min)')


if __name__ == '__main__':
    main()
