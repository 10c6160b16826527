"""MX block quantization (sim.models.mx): hand-worked cases, a brute-force reference on
random and extreme data, and the exact block arithmetic against Fractions."""
from fractions import Fraction

import numpy as np
import pytest

from sim.models.fp4 import fp4_values as e2m1_values
from sim.models.mx import (BLOCK, Exact, combine_blocks, exact_matmul, quantize,
                           quantize_int4, quantize_mx)

# E2M1 by hand: code = sign<<3 | E<<1 | M; value M*0.5 (E=0) or (1+M/2)*2**(E-1).
E2M1_BY_HAND = {0: 0.0, 1: 0.5, 2: 1.0, 3: 1.5, 4: 2.0, 5: 3.0, 6: 4.0, 7: 6.0}


def _row(values, k=BLOCK):
    """One row of length ``k``: ``values`` first, then zeros."""
    out = np.zeros((1, k), np.float32)
    out[0, :len(values)] = values
    return out


def _mx(values, k=BLOCK):
    q = quantize_mx(_row(values, k), axis=1)
    return q, q.dequantize()[0, :len(values)]


def test_e2m1_decode_matches_the_bit_layout():
    for code in range(16):
        want = E2M1_BY_HAND[code & 7] * (-1 if code & 8 else 1)
        assert e2m1_values(code) == want


@pytest.mark.parametrize("peak,exp", [(4.0, 0), (1.0, -2), (8.0, 1), (0.125, -5),
                                      (-8.0, 1), (2.0 ** 20, 18), (6.0, 0), (7.99, 0),
                                      (4.01, 0), (3.99, -1), (2.0 ** -125, -127),
                                      (2.0 ** -140, -127), (3e38, 125)])
def test_shared_exponent_floor_log2_minus_2(peak, exp):
    """Block maxima at and around powers of two: X = floor(log2 max|x|) - 2, clamped."""
    q, _ = _mx([peak, 0.5 * peak])
    assert q.exp.tolist() == [[exp]]
    assert q.scale_e8m0.tolist() == [[exp + 127]]


def test_powers_of_two_block_hand_worked():
    # max 8 -> X = 1: 8, 3, -1, 0.25 scale to 4, 1.5, -0.5, 0.125 -> 0.125 rounds to 0
    q, deq = _mx([8, 3, -1, 0.25])
    assert q.exp.tolist() == [[1]]
    assert e2m1_values(q.q[0, :4]).tolist() == [4, 1.5, -0.5, 0]
    assert deq.tolist() == [8, 3, -1, 0]


def test_ties_round_to_even_mantissa():
    # max 4 -> X = 0; each value is halfway between two E2M1 neighbours
    ties = [4, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, -1.25, -2.5, -5]
    _, deq = _mx(ties)
    assert deq.tolist() == [4, 0, 1, 1, 2, 2, 4, 4, -1, -2, -4]
    # the same ties four times larger: X = 2
    _, deq = _mx([4 * t for t in ties])
    assert deq.tolist() == [4 * v for v in [4, 0, 1, 1, 2, 2, 4, 4, -1, -2, -4]]
    # just off a tie goes to the nearer side
    _, deq = _mx([4, 1.2500001, 2.4999998, 0.2500001])
    assert deq.tolist() == [4, 1.5, 2, 0.5]


def test_int4_ties_and_clamp():
    q = quantize_int4(_row([4, 0.5, 1.5, 2.5, -0.5, -1.5, 6.5, 7.5, -7.9, 7.6]), axis=1)
    assert q.exp.tolist() == [[0]]
    assert q.q[0, :10].tolist() == [4, 0, 2, 2, 0, -2, 6, 7, -8, 7]


def test_values_beyond_six_times_the_scale_clamp():
    # max 7.5 -> X = 0: 7.5 and -7.9 exceed 6 and clamp; 6.5 clamps; 5.9 rounds to 6
    _, deq = _mx([7.5, -7.9, 6.5, 5.9, 5.0])
    assert deq.tolist() == [6, -6, 6, 6, 4]
    # max 1000 -> X = 7: 1000/128 = 7.8 -> 6 -> 768; -900/128 = -7.03 -> -6 -> -768;
    # 100/128 = 0.78 -> 1 -> 128
    q, deq = _mx([1000, -900, 100])
    assert q.exp.tolist() == [[7]]
    assert deq.tolist() == [768, -768, 128]


def test_all_zero_block():
    """An all-zero block: X = -127 (E8M0 code 0), all elements 0; the other block of the
    same row is untouched."""
    x = np.zeros((2, 64), np.float32)
    x[0, 32:35] = [1.0, -2.0, 3.0]
    x[1, :] = -0.0
    for fmt in ("mxfp4", "int4"):
        q = quantize(x, fmt, axis=1)
        assert q.exp.tolist() == [[-127, -1], [-127, -127]]
        assert q.scale_e8m0.tolist() == [[0, 126], [0, 0]]
        assert np.all(q.dequantize()[:, :32] == 0) and np.all(q.dequantize()[1] == 0)
        assert q.dequantize()[0, 32:35].tolist() == [1.0, -2.0, 3.0]


def test_short_last_block():
    """K = 40: blocks 0..31 and 32..39, each with its own scale; K = 1 is one short block."""
    x = np.ones((1, 40), np.float32)
    x[0, 5] = 16.0                 # block 0: X = 2, the ones scale to 0.25 -> 0
    x[0, 39] = 0.5                 # block 1: max 1 -> X = -2
    q = quantize_mx(x, axis=1)
    assert [(s.start, s.stop) for s in q.slices] == [(0, 32), (32, 40)]
    assert q.exp.tolist() == [[2, -2]]
    deq = q.dequantize()[0]
    assert deq[5] == 16 and np.all(np.delete(deq[:32], 5) == 0)
    assert deq[32:].tolist() == [1] * 7 + [0.5]
    q1 = quantize_mx(np.array([[3.0]], np.float32), axis=1)
    assert q1.exp.tolist() == [[-1]] and q1.dequantize().tolist() == [[3.0]]


def test_axis_0_is_axis_1_transposed():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((70, 5)).astype(np.float32)
    for fmt in ("mxfp4", "int4"):
        a, b = quantize(x, fmt, axis=0), quantize(x.T, fmt, axis=1)
        assert np.array_equal(a.q, b.q.T) and np.array_equal(a.exp, b.exp.T)


def test_bad_input_names_the_element():
    x = np.zeros((2, 3), np.float32)
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"A\[1,2\] = nan is not a finite"):
        quantize_mx(x, axis=1, name="A")
    x[1, 2] = np.inf
    with pytest.raises(ValueError, match=r"A\[1,2\] = inf"):
        quantize_int4(x, axis=1, name="A")
    with pytest.raises(ValueError, match="must hold floats"):
        quantize_mx(np.zeros((2, 2), np.int64), axis=1)
    with pytest.raises(ValueError, match="unknown block format"):
        quantize(x, "fp8", axis=1)


# ---------------------------------------------------------------------- brute force

def _ref_exp(block):
    peak = max(abs(Fraction(float(v))) for v in block)
    if peak == 0:
        return -127
    e = 0
    while Fraction(2) ** (e + 1) <= peak:
        e += 1
    while Fraction(2) ** e > peak:
        e -= 1
    return max(-127, min(127, e - 2))


def _ref_e2m1(v):
    """Nearest of the signed E2M1 values, ties to the even mantissa (code bit 0 = 0)."""
    v = Fraction(v)
    mag = min(abs(v), Fraction(6))
    best = min(E2M1_BY_HAND, key=lambda c: (abs(Fraction(E2M1_BY_HAND[c]) - mag), c & 1))
    return Fraction(E2M1_BY_HAND[best]) * (-1 if v < 0 else 1)


def _ref_int4(v):
    return max(-8, min(7, round(Fraction(v))))       # Python's round: ties to even


@pytest.mark.parametrize("seed", range(4))
def test_random_and_extreme_blocks_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    K = [1, 31, 32, 33, 70][seed % 5] + seed
    rows = [rng.standard_normal(K) * 10.0 ** rng.integers(-6, 6),
            rng.integers(-16, 17, K) / 4,                   # many exact ties
            np.where(rng.random(K) < 0.5, 0.0, rng.standard_normal(K)),
            np.full(K, -6.0), np.zeros(K), np.full(K, 2.0 ** -130),
            rng.standard_normal(K) * 2.0 ** 120]
    x = np.array(rows, np.float32)
    qm, qi = quantize_mx(x, axis=1), quantize_int4(x, axis=1)
    for r in range(x.shape[0]):
        for b, s in enumerate(qm.slices):
            X = _ref_exp(x[r, s])
            assert qm.exp[r, b] == X and qi.exp[r, b] == X
            scale = Fraction(2) ** X
            for k in range(s.start, s.stop):
                v = Fraction(float(x[r, k])) / scale
                assert Fraction(float(qm.dequantize()[r, k])) == _ref_e2m1(v) * scale
                assert Fraction(float(qi.dequantize()[r, k])) == _ref_int4(v) * scale


# ---------------------------------------------------------------------- exact products

def _fraction_matmul(qa, qb):
    A = [[Fraction(float(v)) for v in row] for row in qa.dequantize()]
    B = [[Fraction(float(v)) for v in row] for row in qb.dequantize()]
    return [[sum(A[i][k] * B[k][j] for k in range(len(B))) for j in range(len(B[0]))]
            for i in range(len(A))]


@pytest.mark.parametrize("fmt", ["mxfp4", "int4"])
def test_block_combination_is_exact_over_a_huge_exponent_range(fmt):
    """Blocks whose scales differ by 2**250: float64 would lose the small ones."""
    rng = np.random.default_rng(7)
    A = rng.standard_normal((3, 70)).astype(np.float32)
    B = rng.standard_normal((70, 4)).astype(np.float32)
    A[:, 32:64] *= np.float32(2.0 ** -120)
    B[:32, :] *= np.float32(2.0 ** 120)
    B[64:, 1] = 0
    qa, qb = quantize(A, fmt, axis=1), quantize(B, fmt, axis=0)
    partials = [qa.units()[:, s] @ qb.units()[s, :] for s in qa.slices]
    got = combine_blocks(partials, qa, qb)
    ref = exact_matmul(qa, qb)
    assert got.equals(ref)
    want = _fraction_matmul(qa, qb)
    for i in range(3):
        for j in range(4):
            assert Fraction(int(got.mant[i, j])) * Fraction(2) ** got.exp == want[i][j]
    # a wrong partial sum is caught
    partials[1] = partials[1].copy()
    partials[1][2, 3] += 1
    bad = combine_blocks(partials, qa, qb)
    assert not bad.equals(ref) and bad.first_difference(ref) == (2, 3)


def test_exact_to_float_rounds_once():
    e = Exact(np.array([[(1 << 60) + 1, 3, -5]], dtype=object), -2)
    assert e.to_float().tolist() == [[2.0 ** 58, 0.75, -1.25]]
