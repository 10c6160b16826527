"""Block-scaled GEMMs (MXFP4 on the FP4 array, blocked int4 on the int4 array) on both
simulators, and the digits MLP on a few test images, against exact references.

Small arrays; each (format, simulator) is one simulator run. The designs are the int4 WS
4x6 of tests/test_array.py and the FP4 OS 4x4 (Icarus) and 2x3 (Verilator) of
tests/test_fp4_array.py, so the builds are shared."""
from fractions import Fraction

import numpy as np
import pytest

from hdl.mac import MacConfig
from sim.drivers.blocked import model_runner, rtl_runner, run_blocked
from hdl.array import ArrayConfig
from sim.models.mx import quantize
from sim.runner import available_simulators

SIMS = available_simulators()
ARRAYS = {"int4": ArrayConfig(4, 6, "ws", MacConfig()),
          "mxfp4": ArrayConfig(4, 4, "os", MacConfig(numerics="fp4"))}
# Verilator builds are the expensive ones: the FP4 design Verilator runs in those tests
VERILATOR_ARRAYS = {**ARRAYS, "mxfp4": ArrayConfig(2, 3, "os", MacConfig(numerics="fp4"))}


def _need(simulator):
    if simulator not in SIMS:
        pytest.skip(f"{simulator} is not available here")


def _operands():
    """Float32 pairs: random with a short last block, exact ties, all-zero blocks,
    clamped values, -0, a 2**200 spread of block scales, 1x1x1 and K = 33."""
    rng = np.random.default_rng(11)
    pairs = [(rng.standard_normal((5, 70)), rng.standard_normal((70, 4)))]
    A = rng.integers(-16, 17, (3, 64)) / 4.0
    A[0, :32] = 0                                 # an all-zero block
    A[1, 32:] = -0.0                              # an all -0 block
    A[2, :4] = [1000, -900, 7.9, -7.6]            # beyond 6 x scale
    B = rng.standard_normal((64, 3)) * 2.0 ** 100
    B[32:, :] *= 2.0 ** -200                      # scales 2**200 apart
    B[:, 2] = -6.0
    pairs += [(A, B), (np.array([[-3.0]]), np.array([[0.5]])),
              (rng.standard_normal((2, 33)), rng.standard_normal((33, 7)))]
    return [(a.astype(np.float32), b.astype(np.float32)) for a, b in pairs]


def _fraction_check(gemm, qa, qb):
    """One element per GEMM recomputed with Fractions from the dequantized floats."""
    A, B = qa.dequantize(), qb.dequantize()
    i, j = A.shape[0] - 1, B.shape[1] - 1
    want = sum(Fraction(float(A[i, k])) * Fraction(float(B[k, j])) for k in range(len(B)))
    assert Fraction(int(gemm.C.mant[i, j])) * Fraction(2) ** gemm.C.exp == want


@pytest.mark.parametrize("fmt", ["mxfp4", "int4"])
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_block_scaled_gemms_on_rtl(fmt, simulator):
    _need(simulator)
    pairs = [(quantize(a, fmt, axis=1), quantize(b, fmt, axis=0)) for a, b in _operands()]
    array = (VERILATOR_ARRAYS if simulator == "verilator" else ARRAYS)[fmt]
    got = run_blocked(pairs, runner=rtl_runner(array, simulator=simulator))
    model = run_blocked(pairs, runner=model_runner(fmt))
    for n, ((qa, qb), g, m) in enumerate(zip(pairs, got, model)):
        assert len(g.partials) == len(qa.slices)
        assert g.matches, f"pair {n}: RTL C differs from the exact reference at " \
                          f"{g.C.first_difference(g.reference)}"
        for p_rtl, p_model in zip(g.partials, m.partials):
            assert np.array_equal(p_rtl, p_model)
        assert all(r.cycles == r.model_cycles for r in g.results)
        _fraction_check(g, qa, qb)
    # the moderate-range pair: float64 arithmetic is exact there, so it must agree too
    qa, qb = pairs[0]
    assert np.array_equal(got[0].C.to_float(), qa.dequantize() @ qb.dequantize())
    # the all-zero block contributes nothing, the clamped row is finite
    assert np.all(np.isfinite(got[1].C.to_float()))


def test_digits_pipeline_on_a_few_test_images():
    """Both quantized networks on 12 test images with the GEMMs on the RTL (Icarus, else
    Verilator): every GEMM exact; logits equal the numpy model runner's; predictions
    equal an independent float64 forward pass over the dequantized operands."""
    from sim.studies import digits
    simulator = "icarus" if "icarus" in SIMS else "verilator"
    _need(simulator)
    n = 12
    runners = {fmt: rtl_runner(ARRAYS[fmt], simulator=simulator) for fmt in ARRAYS}
    report = digits.run_digits(runners=runners, limit=n)
    assert report.n_test == n and report.n_train == 1437
    assert report.all_match
    assert [g.shape for g in report.layers["int4"]] == [(n, 64, 32), (n, 32, 10)]
    assert [g.blocks for g in report.layers["mxfp4"]] == [2, 1]
    mlp = digits.train()
    X = digits.load_split()[1][:n]
    y = digits.load_split()[3][:n]
    for fmt in ARRAYS:
        rtl_logits = report.logits[fmt]
        model_logits, _ = digits.quantized_forward(mlp, X, fmt, runner=model_runner(fmt))
        assert np.array_equal(rtl_logits, model_logits)
        # independent: float64 dequantize-and-multiply (exact at these ranges)
        h = np.maximum(quantize(X, fmt, axis=1).dequantize()
                       @ quantize(mlp.W1, fmt, axis=0).dequantize() + mlp.b1, 0)
        logits = (quantize(h.astype(np.float32), fmt, axis=1).dequantize()
                  @ quantize(mlp.W2, fmt, axis=0).dequantize() + mlp.b2)
        assert np.array_equal(np.argmax(logits, 1), np.argmax(rtl_logits, 1))
        assert report.accuracy[fmt] == np.mean(np.argmax(rtl_logits, 1) == y)


def test_digits_full_test_set_in_numpy():
    """The whole test set through the numpy model of the array: the accuracies the
    README reports come from these networks (the RTL reproduces them exactly)."""
    from sim.studies import digits
    report = digits.run_digits(runners={f: model_runner(f) for f in ARRAYS})
    assert report.n_test == 360
    for fmt in ("float32", "int4", "mxfp4"):
        assert report.accuracy[fmt] > 0.9, (fmt, report.accuracy)
    assert report.all_match
