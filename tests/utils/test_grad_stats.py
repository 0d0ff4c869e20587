"""Tests of the shared gradient statistics (buffers, guard, dist, state)."""
import logging
import math
import os

import pytest
import torch
import torch.multiprocessing as mp

from longtail_plugin.utils.grad_stats import (GradientStatistics,
                                              find_gradient_statistics,
                                              split_pos_neg)


class _Capture(logging.Handler):

    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


def test_buffers_dtypes_and_persistence():
    st = GradientStatistics(3, init_ratio=100.0)
    assert st.pos_grad.dtype == torch.float64
    assert st.neg_grad.dtype == torch.float64
    assert st.pos_neg.dtype == torch.float64
    assert st.num_updates.dtype == torch.int64 and st.num_updates.dim() == 0
    assert st.num_skipped.dtype == torch.int64 and st.num_skipped.dim() == 0
    assert st.pos_neg.tolist() == [100.0, 100.0, 100.0]
    assert set(st.state_dict()) == {
        'pos_grad', 'neg_grad', 'pos_neg', 'num_updates', 'num_skipped'
    }
    r = st.ratio()
    assert r.dtype == torch.float32 and not r.requires_grad
    # lowering the module precision must not lower the accumulators
    st.half()
    assert st.pos_grad.dtype == torch.float64
    st.to(torch.float16)
    assert st.pos_neg.dtype == torch.float64


def test_update_accumulates_hand_values():
    st = GradientStatistics(2, init_ratio=5.0, eps=1e-10)
    steps = [([1.0, 0.0], [2.0, 0.0]), ([0.5, 0.0], [0.5, 0.0]),
             ([0.25, 0.0], [1.5, 0.0])]
    for dtype, (p, n) in zip((torch.float32, torch.float16, torch.float64),
                             steps):
        assert st.update(torch.tensor(p, dtype=dtype),
                         torch.tensor(n, dtype=dtype))
    # class 0: pos = 1.75, neg = 4.0; class 1 never touched -> init ratio
    assert st.pos_grad.tolist() == [1.75, 0.0]
    assert st.neg_grad.tolist() == [4.0, 0.0]
    assert st.pos_neg[0].item() == pytest.approx(1.75 / (4.0 + 1e-10),
                                                 rel=1e-15)
    assert st.pos_neg[1].item() == 5.0
    assert int(st.num_updates) == 3 and int(st.num_skipped) == 0


def test_float64_accumulation_keeps_small_steps():
    st = GradientStatistics(1)
    st.update(torch.tensor([1e8]), torch.tensor([1.0]))
    for _ in range(10):
        st.update(torch.tensor([1.0], dtype=torch.float16),
                  torch.tensor([0.0]))
    # float32 would round 1e8 + 1 back to 1e8
    assert st.pos_grad.item() == 1e8 + 10


def test_nonfinite_step_is_skipped_and_logged():
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    cap = _Capture()
    logger.addHandler(cap)
    try:
        st = GradientStatistics(2, name='my_loss')
        st.update(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0]))
        before = {k: v.clone() for k, v in st.state_dict().items()}
        for bad in (float('nan'), float('inf')):
            assert not st.update(torch.tensor([1.0, bad]),
                                 torch.tensor([1.0, 1.0]))
        assert not st.update(torch.tensor([1.0, 1.0]),
                             torch.tensor([-float('inf'), 1.0]))
    finally:
        logger.removeHandler(cap)
    for k in ('pos_grad', 'neg_grad', 'pos_neg', 'num_updates'):
        assert torch.equal(st.state_dict()[k], before[k])
    assert int(st.num_skipped) == 3
    assert len(cap.records) == 3
    assert 'my_loss' in cap.records[0] and 'non-finite' in cap.records[0]


def test_update_shape_error():
    st = GradientStatistics(3)
    with pytest.raises(ValueError, match=r'\(3,\)'):
        st.update(torch.zeros(4), torch.zeros(4))


def test_state_dict_roundtrip_bit_identical(tmp_path):
    st = GradientStatistics(3, init_ratio=100.0)
    g = torch.Generator().manual_seed(0)
    for _ in range(4):
        st.update(torch.rand(3, generator=g), torch.rand(3, generator=g))
    st.update(torch.tensor([float('nan'), 0., 0.]), torch.zeros(3))
    path = tmp_path / 'st.pth'
    torch.save(st.state_dict(), path)
    fresh = GradientStatistics(3, init_ratio=100.0)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    for k, v in st.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
        assert fresh.state_dict()[k].dtype == v.dtype
    assert int(fresh.num_updates) == 4 and int(fresh.num_skipped) == 1


def _pair(src_classes=5, dst_classes=3):
    src = torch.nn.Module()
    src.loss = GradientStatistics(src_classes)
    src.loss.update(torch.ones(src_classes), torch.ones(src_classes))
    dst = torch.nn.Module()
    dst.loss = GradientStatistics(dst_classes, init_ratio=100.0)
    return src, dst


def test_load_wrong_class_count_strict_names_key():
    src, dst = _pair()
    with pytest.raises(RuntimeError, match=r'Unexpected key.*loss\.pos_grad'):
        dst.load_state_dict(src.state_dict())


def _fresh(st):
    return (st.pos_grad.tolist() == [0.0] * st.num_classes
            and st.pos_neg.tolist() == [st.init_ratio] * st.num_classes
            and int(st.num_updates) == 0)


def test_load_wrong_class_count_non_strict_reinitialises_with_warning():
    """Fine-tuning onto another vocabulary (issue 20 item 5): torch's and
    MMEngine's non-strict loading (``load_from``) start the statistics
    afresh with a warning; MMEngine's strict loading stays an error."""
    from mmengine.logging import MMLogger
    from mmengine.runner.checkpoint import load_state_dict
    logger = MMLogger.get_current_instance()
    cap = _Capture()
    logger.addHandler(cap)
    try:
        src, dst = _pair()
        dst.loss.update(torch.ones(3), torch.ones(3))  # to be discarded
        dst.load_state_dict(src.state_dict(), strict=False)
        assert _fresh(dst.loss)
        src, dst = _pair()
        load_state_dict(dst, src.state_dict(), strict=False)
        assert _fresh(dst.loss)
    finally:
        logger.removeHandler(cap)
    assert sum('start afresh' in r and "'loss.pos_grad'" in r
               for r in cap.records) == 2
    src, dst = _pair()
    with pytest.raises(RuntimeError, match=r'unexpected key.*loss\.pos_grad'):
        load_state_dict(dst, src.state_dict(), strict=True)


def test_load_through_mmengine_load_checkpoint_non_strict(tmp_path):
    from mmengine.runner.checkpoint import load_checkpoint, save_checkpoint
    src, dst = _pair()
    save_checkpoint(src.state_dict(), str(tmp_path / 'c.pth'))
    load_checkpoint(dst, str(tmp_path / 'c.pth'), strict=False)
    assert _fresh(dst.loss)
    with pytest.raises(RuntimeError, match='loss.pos_grad'):
        load_checkpoint(dst, str(tmp_path / 'c.pth'), strict=True)


@pytest.mark.parametrize('key', ['pos_grad', 'neg_grad', 'pos_neg'])
@pytest.mark.parametrize('bad', [float('nan'), float('inf'), -1.0])
@pytest.mark.parametrize('strict', [True, False])
def test_load_nonfinite_checkpoint_is_an_error_naming_the_buffer(
        key, bad, strict):
    src, dst = _pair(3, 3)
    sd = src.state_dict()
    sd[f'loss.{key}'][1] = bad
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(ValueError, match=rf"'loss\.{key}' holds non-finite"):
        dst.load_state_dict(sd, strict=strict)
    for k, v in before.items():
        assert torch.equal(dst.state_dict()[k], v), k


def test_update_rejects_negative_sums():
    st = GradientStatistics(2, name='my_loss')
    with pytest.raises(ValueError, match='my_loss.*negative `neg` sum'):
        st.update(torch.tensor([1.0, 2.0]), torch.tensor([0.5, -0.5]))
    with pytest.raises(ValueError, match='negative `pos` sum'):
        st.update(torch.tensor([-1e-3, 2.0]), torch.zeros(2))
    assert int(st.num_updates) == 0 and st.pos_grad.tolist() == [0.0, 0.0]


def test_load_checkpoint_without_counters():
    st = GradientStatistics(2)
    old = {
        'pos_grad': torch.tensor([1.0, 2.0]),  # float32, like mmdet's EQLV2
        'neg_grad': torch.tensor([4.0, 4.0]),
        'pos_neg': torch.tensor([0.25, 0.5]),
    }
    st.load_state_dict(old)
    assert st.pos_grad.dtype == torch.float64
    assert st.pos_neg.tolist() == [0.25, 0.5]
    assert int(st.num_updates) == 0


def test_split_pos_neg_hand_values():
    grad = torch.tensor([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]])
    labels = torch.tensor([1, 2])  # second row: label 2 = "background"
    w = torch.tensor([2.0, 1.0])
    pos, neg = split_pos_neg(grad, labels, w, num_classes=2)
    assert pos.dtype == torch.float64
    assert pos.tolist() == pytest.approx([0.0, 0.4])
    assert neg.tolist() == pytest.approx([0.2 + 0.4, 0.5])
    onehot = torch.tensor([[0., 1., 0.], [0., 0., 1.]])
    pos2, neg2 = split_pos_neg(grad, onehot, w, num_classes=2)
    assert torch.allclose(pos, pos2) and torch.allclose(neg, neg2)


def test_find_gradient_statistics_unwraps():
    inner = torch.nn.Module()
    inner.a = GradientStatistics(2)
    inner.b = torch.nn.Sequential(GradientStatistics(2))
    wrapper = torch.nn.Module()
    wrapper.module = inner
    names = [n for n, _ in find_gradient_statistics(wrapper)]
    assert names == ['a', 'b.0']


# --------------------------------------------------------------------------
# two processes (gloo): replicas identical and equal to one process

C = 3
N = 8


def _batch():
    g = torch.Generator().manual_seed(123)
    logits = torch.randn(2, N, C + 1, generator=g, dtype=torch.float64)
    labels = torch.randint(0, C + 1, (2, N), generator=g)
    return logits, labels


def _run_modules(logits, labels, rows, distributed=False):
    from longtail_plugin.models.losses import (EqualizationLossV2,
                                               SoftmaxEqualizationLoss)
    st = GradientStatistics(C)
    eqlv2 = EqualizationLossV2(num_classes=C)
    seql = SoftmaxEqualizationLoss(num_classes=C, reduction='sum')
    for step in range(2):
        z, y = logits[step][rows], labels[step][rows]
        st.update(z[:, :C].abs().sum(0), z[:, C:].abs().sum(0).expand(C))
        eqlv2(z, y)
        seql(z, y)
    # a non-finite value on one replica must make every replica skip
    if distributed:
        bad = torch.zeros(C)
        if rows.start == N // 2:
            bad[0] = float('nan')
        assert not st.update(bad, torch.zeros(C))
    return {
        'st': {k: v.clone() for k, v in st.state_dict().items()},
        'eqlv2': {k: v.clone() for k, v in eqlv2.state_dict().items()},
        'seql': {k: v.clone() for k, v in seql.state_dict().items()},
    }


def _dist_worker(rank, init_file, out_dir):
    import torch.distributed as dist
    dist.init_process_group(
        'gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    try:
        logits, labels = _batch()
        half = N // 2
        res = _run_modules(logits, labels,
                           slice(rank * half, (rank + 1) * half), True)
        torch.save(res, os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


def test_two_process_statistics_identical(tmp_path):
    mp.spawn(
        _dist_worker,
        args=(str(tmp_path / 'init'), str(tmp_path)),
        nprocs=2,
        join=True)
    r0 = torch.load(tmp_path / 'rank0.pth', weights_only=True)
    r1 = torch.load(tmp_path / 'rank1.pth', weights_only=True)
    logits, labels = _batch()
    # the single-process run sees the whole batch (and no NaN step)
    single = _run_modules(logits, labels, slice(0, N))
    for mod in ('st', 'eqlv2', 'seql'):
        for k, v in r0[mod].items():
            assert torch.equal(v, r1[mod][k]), (mod, k)  # bit-identical
            if mod == 'st' and k == 'num_skipped':
                assert int(v) == 1
                continue
            ref = single[mod][k]
            if v.is_floating_point():
                assert torch.allclose(v, ref, rtol=1e-12, atol=0), (mod, k)
            else:
                assert torch.equal(v, ref), (mod, k)
    assert int(single['st']['num_skipped']) == 0
    assert math.isfinite(float(r0['eqlv2']['grad_stats.pos_neg'].sum()))
