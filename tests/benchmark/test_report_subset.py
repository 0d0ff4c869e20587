import json

import pytest

from longtail_benchmark.report import subset_ap


def _write(path, aps):
    cats = [dict(id=i + 1, name=n, segm_AP=a, bbox_AP=a)
            for i, (n, a) in enumerate(aps)]
    path.write_text(json.dumps(dict(categories=cats)))
    return str(path)


def test_subset_ap_mean_and_std_over_runs(tmp_path):
    a = _write(tmp_path / 'a.json', [('red_rod', 0.2), ('blue_frame', 0.4),
                                     ('green_disk', 0.9),
                                     ('lime_rod', -1.0)])  # no val instance
    b = _write(tmp_path / 'b.json', [('red_rod', 0.1), ('blue_frame', 0.3),
                                     ('green_disk', 0.0),
                                     ('lime_rod', 0.5)])
    s = subset_ap([a, b], ['_rod', '_frame'])
    # run a: (20 + 40) / 2 = 30; run b: (10 + 30 + 50) / 3 = 30
    assert s['values'] == pytest.approx([30.0, 30.0])
    assert s['mean'] == pytest.approx(30.0)
    assert s['std'] == pytest.approx(0.0)
    s = subset_ap([a], ['_disk'])
    assert s['mean'] == pytest.approx(90.0) and s['runs'] == 1


def test_subset_ap_group_filter(tmp_path):
    path = tmp_path / 'a.json'
    cats = [dict(id=1, name='red_rod', group='r', segm_AP=0.2),
            dict(id=2, name='blue_rod', group='f', segm_AP=0.6)]
    path.write_text(json.dumps(dict(categories=cats)))
    assert subset_ap([str(path)], ['_rod'])['mean'] == pytest.approx(40.0)
    assert subset_ap([str(path)], ['_rod'],
                     groups=['f'])['mean'] == pytest.approx(60.0)


def test_subset_ap_no_match_names_the_file(tmp_path):
    a = _write(tmp_path / 'a.json', [('red_rod', 0.2)])
    with pytest.raises(ValueError, match='a.json'):
        subset_ap([a], ['_hoop'])
