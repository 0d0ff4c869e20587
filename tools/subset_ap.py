"""Mean AP over a subset of categories chosen by name suffix, per benchmark
row (mean and sample std over its seeds), from the per-category files the
LVIS metric writes.

    python tools/subset_ap.py work_dirs/lt \\
        --suffixes _rod _frame _corner _zigzag _hoop _sickle _chevron

prints one line per row (config folder under the benchmark output) that has
per-category files.
"""
import argparse
import glob
import os.path as osp

from longtail_benchmark.report import subset_ap


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('out', help='benchmark output folder (tools/lt_benchmark.py --out)')
    p.add_argument('--suffixes', nargs='+', required=True)
    p.add_argument('--iou', default='segm', choices=['bbox', 'segm'])
    p.add_argument('--groups', nargs='+', default=['r', 'c', 'f'],
                   help='frequency groups to keep (default: all)')
    p.add_argument('--rows', nargs='*', default=None,
                   help='config names (folders under OUT); default: all')
    args = p.parse_args()
    rows = args.rows or sorted(
        osp.basename(d) for d in glob.glob(osp.join(args.out, '*'))
        if osp.isdir(d))
    for row in rows:
        files = []
        for seed_dir in sorted(glob.glob(osp.join(args.out, row, 'seed*'))):
            found = sorted(glob.glob(
                osp.join(seed_dir, '*', 'per_category_ap.json')))
            files += found[-1:]  # the newest run of that seed
        if not files:
            continue
        try:
            s = subset_ap(files, args.suffixes, args.iou, args.groups)
        except ValueError:
            continue
        vals = ' '.join(f'{v:.1f}' for v in s['values'])
        print(f"{row}: {args.iou} AP over {s['num_categories']} categories "
              f"= {s['mean']:.1f} ± {s['std']:.1f} ({s['runs']} seeds: "
              f'{vals})')


if __name__ == '__main__':
    main()
