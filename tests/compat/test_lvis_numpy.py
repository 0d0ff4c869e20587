import numpy as np
import pytest
from lvis import LVIS, LVISEval, LVISResults

from longtail_plugin.compat.lvis_numpy import (LVISEvalCompat,
                                               needs_lvis_numpy_fix)
from tests.lvis_cases import tiny_lvis_gt, write_json


def _gt_and_dt(tmp_path):
    gt = LVIS(write_json(tiny_lvis_gt(), tmp_path / 'gt.json'))
    dets = [dict(image_id=1, category_id=1, bbox=[10, 10, 40, 40],
                 score=0.9)]
    return gt, LVISResults(gt, dets)


@pytest.mark.skipif(not needs_lvis_numpy_fix(),
                    reason='numpy still has np.float: nothing to fix')
def test_official_accumulate_fails_without_fix(tmp_path):
    gt, dt = _gt_and_dt(tmp_path)
    ev = LVISEval(gt, dt, 'bbox')
    ev.evaluate()
    with pytest.raises(AttributeError, match='float'):
        ev.accumulate()


def test_compat_accumulate_works_and_leaves_numpy_untouched(tmp_path):
    had_float = hasattr(np, 'float')
    gt, dt = _gt_and_dt(tmp_path)
    ev = LVISEvalCompat(gt, dt, 'bbox')
    ev.run()
    res = ev.get_results()
    # one perfect detection of the only rare category, nothing else
    assert res['APr'] == pytest.approx(1.0)
    assert res['APc'] == pytest.approx(0.0)
    assert res['AP'] == pytest.approx(1.0 / 3)
    assert hasattr(np, 'float') == had_float
    import lvis.eval
    assert lvis.eval.np is np
