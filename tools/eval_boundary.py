"""Boundary F-score of instance masks from a results file.

Usage::

    python tools/test.py CONFIG CKPT --out results.pkl      # mmdet 3 format
    python tools/eval_boundary.py results.pkl \
        data/lvis_v1/annotations/lvis_v1_val.json
    python tools/eval_boundary.py results.segm.json ann.json --tolerances 1 3 5

Each non-crowd GT is matched to the best-IoU prediction of its image and
category with score >= --score-thr (0.3); see
``longtail_plugin.evaluation.functional.boundary_fscore`` for the protocol.
With a ``.pkl`` file, model label ``i`` is mapped to the ``i``-th category of
the annotation file (the order MMDetection's COCO/LVIS datasets use). The
pickle is read by :func:`longtail_benchmark.results_io.load_results_pickle`,
which admits only what MMDetection writes (dicts, lists, tuples, numpy arrays,
torch tensors) and refuses any other global, so no code from the file runs.
"""
import argparse
import json

from longtail_benchmark.results_io import UnsafePickleError, load_results
from longtail_plugin.evaluation.functional.boundary_fscore import (
    evaluate_boundary_fscore, load_predictions)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('results', help='results .pkl (tools/test.py --out) '
                        'or COCO-style segm .json')
    parser.add_argument('ann_file', help='COCO/LVIS annotation json')
    parser.add_argument(
        '--tolerances', type=float, nargs='+', default=[1, 3, 5])
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--out', help='write the metrics to this json file')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        results = load_results(args.results)
    except UnsafePickleError as e:
        raise SystemExit(f'eval_boundary: {e}')
    with open(args.ann_file) as f:
        ann = json.load(f)
    cat_ids = [c['id'] for c in ann['categories']]
    preds = load_predictions(results, cat_ids)
    image_ids = None
    if results and 'img_id' in results[0]:
        image_ids = [r['img_id'] for r in results]
    print(f'{len(preds)} predictions, scoring boundaries ...', flush=True)
    metrics = evaluate_boundary_fscore(
        ann,
        preds,
        tolerances=args.tolerances,
        score_thr=args.score_thr,
        image_ids=image_ids)
    for k, v in metrics.items():
        print(f'{k}: {v:.4f}' if not k.startswith('num') else f'{k}: {v:.0f}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(metrics, f, indent=2)
    return metrics


if __name__ == '__main__':
    main()
