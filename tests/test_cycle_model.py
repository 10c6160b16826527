"""The exact cycle model: properties, SCALE-Sim agreement, and the driver's schedules."""
import dataclasses
import itertools
import random
from math import ceil

import numpy as np
import pytest

from hdl.mac import MacConfig
from sim.models.cycles import (max_safe_k, model_cycles, scalesim_cycles, utilization,
                             fold_counts)
from hdl.array import ArrayConfig
from sim.drivers.gemm import build_schedule

SHAPES = [(1, 1, 1), (13, 29, 7), (4, 6, 4), (100, 3, 1), (1, 100, 100), (17, 8, 12),
          (64, 64, 64), (5, 256, 3)]
ARRAYS = [(1, 1), (4, 6), (3, 5), (8, 8), (16, 16), (7, 2)]


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("W", [8, 9, 10, 12, 16, 24, 32, 64])
def test_max_safe_k_is_tight(signed, W):
    values = range(-8, 8) if signed else range(16)       # every 4-bit operand
    products = [a * b for a in values for b in values]
    lo, hi = min(products), max(products)
    k = max_safe_k(signed, W)
    rng = (-(1 << (W - 1)), (1 << (W - 1)) - 1) if signed else (0, (1 << W) - 1)
    assert rng[0] <= k * lo and k * hi <= rng[1]
    assert (k + 1) * lo < rng[0] or (k + 1) * hi > rng[1]


def test_max_safe_k_examples():
    assert max_safe_k(True, 8) == 1
    assert max_safe_k(False, 8) == 1
    assert max_safe_k(True, 10) == 7
    assert max_safe_k(False, 10) == 4
    assert max_safe_k(True, 16) == 511


@pytest.mark.parametrize("R,C", ARRAYS)
@pytest.mark.parametrize("M,K,N", SHAPES)
def test_ws_sequential_matches_scalesim(M, K, N, R, C):
    """Sequential WS, P = 0, no K split below R: SCALE-Sim + 1 (its -1 convention)."""
    assert model_cycles(M, K, N, R, C, "ws") == scalesim_cycles(M, K, N, R, C, "ws") + 1


@pytest.mark.parametrize("R,C", ARRAYS)
@pytest.mark.parametrize("M,K,N", SHAPES)
def test_os_vs_scalesim(M, K, N, R, C):
    """OS, P = 0, no K split: tiles follow each other every K + min(R, C) cycles (compact)
    or max(K, min(R, C)) (fold overlap); SCALE-Sim sums independent tiles of
    R + C + K - 2. One tile: SCALE-Sim + 1 (its -1 convention) either way."""
    F = ceil(M / R) * ceil(N / C)
    m = min(R, C)
    ss = scalesim_cycles(M, K, N, R, C, "os")
    compact = model_cycles(M, K, N, R, C, "os")
    overlap = model_cycles(M, K, N, R, C, "os", fold_overlap=True)
    assert compact == F * (K + m) - m + R + C - 2
    assert overlap == K + (F - 1) * max(K, m) + R + C - 2
    if F == 1 or R == C == 1:     # a 1x1 array has no skew to overlap
        assert overlap == ss + 1
    else:
        assert overlap <= ss
    if F == 1:
        assert compact == ss + 1
    elif m <= R + C - 3:
        assert compact <= ss


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("R,C", ARRAYS)
@pytest.mark.parametrize("M,K,N", SHAPES)
def test_overlap_never_slower_and_pipeline_cost(M, K, N, R, C, dataflow):
    seq = model_cycles(M, K, N, R, C, dataflow)
    ov = model_cycles(M, K, N, R, C, dataflow, fold_overlap=True)
    assert ov <= seq
    F = fold_counts(M, K, N, R, C, dataflow).folds
    if F == 1:
        assert ov == seq
    for P in (1, 2):
        # sequential WS folds each wait for the pipeline; OS tiles pay it once
        extra = F * P if dataflow == "ws" else P
        assert model_cycles(M, K, N, R, C, dataflow, pipeline=P) == seq + extra
        assert model_cycles(M, K, N, R, C, dataflow, pipeline=P, fold_overlap=True) == ov + P
    for cycles in (seq, ov):
        assert 0 < utilization(M, K, N, R, C, cycles) <= 1


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_monotonic_in_problem_size(dataflow):
    R, C = 4, 6
    for ov in (False, True):
        for M, K, N in itertools.product((1, 3, 4, 5, 9), repeat=3):
            base = model_cycles(M, K, N, R, C, dataflow, fold_overlap=ov)
            for dM, dK, dN in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
                assert model_cycles(M + dM, K + dK, N + dN, R, C, dataflow,
                                    fold_overlap=ov) >= base


def test_overlap_reaches_full_utilization():
    """Many folds and a long stream: double buffering hides loads / drains."""
    R, C = 4, 6
    M, K, N = 2000, 4 * R, 3 * C
    cyc = model_cycles(M, K, N, R, C, "ws", fold_overlap=True)
    assert utilization(M, K, N, R, C, cyc) > 0.99
    M, K, N = 8 * R, 1001, 4 * C
    cyc = model_cycles(M, K, N, R, C, "os", fold_overlap=True)
    assert utilization(M, K, N, R, C, cyc) > 0.97


@pytest.mark.parametrize("R,C", ARRAYS)
@pytest.mark.parametrize("M,K,N", SHAPES)
def test_ws_compact_vs_sequential_and_scalesim(M, K, N, R, C):
    """The compact WS PE (no shadow) loads a column's next weights as soon as its last
    activation passed: per fold 2R + M - 2, never slower than the sequential schedule
    on the shadow PE, never faster than fold overlap; below SCALE-Sim from two folds."""
    F = fold_counts(M, K, N, R, C, "ws").folds
    compact = model_cycles(M, K, N, R, C, "ws", double_buffer=False)
    assert compact == (F - 1) * (2 * R + M - 2) + 2 * R + C + M - 2
    assert model_cycles(M, K, N, R, C, "ws", fold_overlap=True) <= compact
    assert compact <= model_cycles(M, K, N, R, C, "ws")
    ss = scalesim_cycles(M, K, N, R, C, "ws")
    assert compact == ss + 1 if F == 1 else compact <= ss
    assert model_cycles(M, K, N, R, C, "ws", pipeline=2, double_buffer=False) == compact + 2


def test_os_512_cube_on_16x16_with_overlap():
    """The array's utilization target point, from the model (the bench measures RTL)."""
    cyc = model_cycles(512, 512, 512, 16, 16, "os", fold_overlap=True)
    assert cyc == 1024 * 512 + 30
    # the default 16-bit signed accumulator sums at most 511 products: two passes of 256
    k_chunk = max_safe_k(True, 16)
    cyc = model_cycles(512, 512, 512, 16, 16, "os", fold_overlap=True, k_chunk=k_chunk)
    assert fold_counts(512, 512, 512, 16, 16, "os", k_chunk).k_per_pass == (256, 256)
    assert cyc == 2048 * 256 + 30
    assert utilization(512, 512, 512, 16, 16, cyc) > 0.999


def test_k_split_counts():
    fc = fold_counts(5, 29, 7, 4, 6, "ws", k_chunk=1)
    assert fc.k_passes == 29 and fc.folds == 29 * 2
    fc = fold_counts(5, 29, 7, 4, 6, "os", k_chunk=7)
    assert fc.k_per_pass == (6, 6, 6, 6, 5) and fc.folds == 5 * 2 * 2   # balanced
    assert model_cycles(5, 29, 7, 4, 6, "ws", k_chunk=100) == model_cycles(5, 29, 7, 4, 6, "ws")


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_schedules_agree_with_model(dataflow):
    """The driver's schedule ends where the model says, and no two results collide. The
    two share the fold periods; test_fold_periods_on_the_hardware checks those."""
    rng = random.Random(7)
    for _ in range(60):
        R, C = rng.randint(1, 9), rng.randint(1, 9)
        M, K, N = rng.randint(1, 20), rng.randint(1, 40), rng.randint(1, 20)
        mac = MacConfig(pipeline=rng.randint(0, 2), acc_width=rng.choice((8, 10, 16)),
                        signed=rng.random() < 0.5)
        for ov, db in ((False, None), (True, None), (False, False)):
            cfg = ArrayConfig(R, C, dataflow, mac, fold_overlap=ov, double_buffer=db)
            A = np.zeros((M, K), np.int64)
            B = np.zeros((K, N), np.int64)
            s = build_schedule(A, B, cfg)
            want = model_cycles(M, K, N, R, C, dataflow, pipeline=mac.pipeline,
                                fold_overlap=ov, k_chunk=cfg.mac.max_safe_k,
                                double_buffer=cfg.double_buffer)
            assert s.last_cycle == want
            results = s.row >= -1           # PE results (not drain zeros, not the flush)
            assert int(s.t[results].max()) + 1 - s.pre == want
            assert s.t.max() < s.length
            # every expected (cycle, lane) is distinct: no two results collide
            assert len(set(zip(s.t.tolist(), s.lane.tolist()))) == len(s.t)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "4"])
def test_model_rejects_bad_dims(bad):
    with pytest.raises(ValueError):
        model_cycles(bad, 1, 1, 1, 1, "ws")
    with pytest.raises(ValueError):
        model_cycles(1, 1, 1, 1, 1, "xs")


def _overlay(s1, s2, delta, n1):
    """One schedule playing single-fold schedule ``s2`` (built without a power-up flush)
    ``delta`` cycles after ``s1``: the port lanes added (an overlap of two nonzero values
    garbles both), ``s2``'s results moved ``n1`` columns right."""
    assert s2.pre == 0
    start = s1.pre + delta
    length = max(s1.length, start + s2.length)
    ports = {}
    for name, (lanes1, bits) in s1.ports.items():
        lanes2 = s2.ports[name][0]
        out = np.zeros((length, lanes1.shape[1]), np.int64)
        out[:len(lanes1)] += lanes1
        out[start:start + len(lanes2)] += lanes2
        ports[name] = ((out & ((1 << bits) - 1)).astype(np.uint8), bits)
    cat = np.concatenate
    return dataclasses.replace(
        s1, ports=ports, length=length, t=cat([s1.t, s2.t + start]),
        lane=cat([s1.lane, s2.lane]), row=cat([s1.row, s2.row]),
        col=cat([s1.col, np.where(s2.col >= 0, s2.col + n1, s2.col)]),
        last_cycle=s2.last_cycle + delta, folds=2)


def _plays(config, A, B, n1, delta, monkeypatch):
    """Does the flat Amaranth array give ``A @ B`` (two folds: columns ``:n1`` and
    ``n1:``) with every result in the cycle the overlaid schedule expects?"""
    import sim.drivers.amaranth as driver
    import sim.drivers.gemm as gemm
    from sim.runner import SimulationError
    real = gemm.build_schedule
    s1 = real(A, B[:, :n1], config)
    with monkeypatch.context() as mp:             # the array is flushed once, by s1
        mp.setattr(gemm, "init_cycles", lambda rows, cols: 0)
        s2 = real(A, B[:, n1:], config)
    assert s1.folds == s2.folds == 1
    with monkeypatch.context() as mp:
        mp.setattr(driver, "build_schedule", lambda *_: _overlay(s1, s2, delta, n1))
        try:
            C, last, _ = driver.amaranth_sim_gemm(A, B, config)
        except SimulationError:
            return False
    return np.array_equal(C, A @ B) and last == s1.last_cycle + delta


@pytest.mark.parametrize("dataflow,overlap,double_buffer,R,C,M,K", [
    ("ws", True, True, 3, 2, 2, 3),      # max(M, 2R-1) = 5: the shadow load, not M
    ("ws", True, True, 2, 3, 5, 2),      # max(M, 2R-1) = 5 = M: the activation stream
    ("ws", False, False, 3, 2, 2, 3),    # compact: 2R + M - 2 = 6
    ("os", False, False, 3, 3, 3, 2),    # compact: K + min(R, C) = 5
    ("os", True, True, 3, 3, 3, 2),      # overlap: max(K, min(R, C)) = 3: the drain, not K
])
def test_fold_periods_on_the_hardware(dataflow, overlap, double_buffer, R, C, M, K,
                                      monkeypatch):
    """The array itself, not the model, says how close two folds may follow: the second
    of two single-fold GEMMs started ``period`` cycles after the first (the model's
    period) computes right and on time on the flat Amaranth array; one cycle earlier it
    does not. So each period of the model is both safe and the shortest."""
    config = ArrayConfig(R, C, dataflow, MacConfig(pipeline=1), fold_overlap=overlap,
                         double_buffer=double_buffer)
    rng = np.random.default_rng(R * 100 + M * 10 + K)
    A = rng.integers(1, 8, (M, K))                      # no zeros: an overlap shows
    B = rng.integers(1, 8, (K, 2 * C))
    one = model_cycles(M, K, C, R, C, dataflow, pipeline=1, fold_overlap=overlap,
                       double_buffer=double_buffer)
    period = model_cycles(M, K, 2 * C, R, C, dataflow, pipeline=1, fold_overlap=overlap,
                          double_buffer=double_buffer) - one
    assert build_schedule(A, B, config).last_cycle == one + period
    assert _plays(config, A, B, C, period, monkeypatch)
    assert not _plays(config, A, B, C, period - 1, monkeypatch)
