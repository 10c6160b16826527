"""FP4 (E2M1): the reference (ml_dtypes), the MAC options, and every FP4 MAC
configuration in Icarus and Verilator through cocotb (all 256 code pairs with resets, a
wrapping stretch of extremes, reset of a full pipeline), checked every cycle against
:class:`sim.models.mac.MacModel` with ml_dtypes decoding."""
import itertools
import json
import os

import numpy as np
import pytest

from hdl.mac import (ADDER_CHOICES, ALL_MULTIPLIERS, PIPELINES, ConfigError, MacConfig)
from hdl.numerics import NUMERICS
from sim.drivers.gemm import check_operands, exact_result
from sim.drivers.mac import run_mac_design
from sim.drivers.mac_suite import write_mac, write_mac_suite
from sim.models.fp4 import encode_fp4, fp4_gemm_quarters, fp4_values
from sim.models.mac import MacModel
from sim.runner import REPO_ROOT, SimulatorUnavailable, available_simulators, check_simulator

BUILD_ROOT = REPO_ROOT / "build" / "sim"
CASES = ("test_all_pairs", "test_extremes_wrap", "test_reset_clears_pipeline")
FP4_ARCHS = [m for m in ALL_MULTIPLIERS if m != "behavioral"]

# The format as the OCP MX v1.0 spec lists it (written out here, not computed).
SPEC_VALUES = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
               -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


# -- the reference ----------------------------------------------------------------------

def test_ml_dtypes_decoding_is_the_spec():
    got = fp4_values(np.arange(16))
    assert got.tolist() == SPEC_VALUES
    assert np.signbit(got[8]) and not np.signbit(got[0])            # code 1000 is -0


def test_encode_accepts_exact_values_and_names_the_first_bad_one():
    codes = encode_fp4(np.array([[0.0, -0.0, 6.0], [-6.0, 0.5, -1.5]]))
    assert codes.tolist() == [[0, 8, 7], [15, 1, 11]] and codes.dtype == np.uint8
    assert encode_fp4(np.array([[3, -4]], dtype=np.int32)).tolist() == [[5, 14]]
    for bad, text in ((2.5, "2.5"), (np.nan, "nan"), (np.inf, "inf"), (7.0, "7.0"),
                      (0.25, "0.25"), (-12.0, "-12.0")):
        values = np.array([[1.0, 2.0], [3.0, bad]])
        with pytest.raises(ValueError, match=rf"^A\[1,1\] = {text} is not an FP4"):
            encode_fp4(values, "A")
    with pytest.raises(ValueError, match="must hold numbers"):
        encode_fp4(np.array([["x"]]), "A")


def test_exact_result_hand_worked():
    A = encode_fp4(np.array([[0.5, -6.0, 1.5], [3.0, -0.0, 4.0]]))
    B = encode_fp4(np.array([[1.0, 2.0], [-0.5, 6.0], [0.0, -3.0]]))
    # [[0.5 + 3, 1 - 36 - 4.5], [3, 6 - 12]] in quarters
    assert exact_result(A, B, "fp4").tolist() == [[14, -158], [12, -24]]
    assert fp4_gemm_quarters(A, B).dtype == np.int64
    assert exact_result(np.array([[2, -3]]), np.array([[4], [5]]), "int4").tolist() == [[-7]]


def test_model_fp4_products_wrap_and_pipeline():
    m = MacModel(numerics="fp4", acc_width=9, pipeline=0)
    assert m.step(0x7, 0x7) == 144                       # 6 * 6 * 4
    assert m.step(0x7, 0x7) == (288 - 512) % 512 and m.wraps == 1
    assert m.step(0x7, 0xF) == 144                       # -224 - 144 wraps back up
    assert m.signed_acc() == 144 and m.wraps == 2
    m.reset()
    assert m.step(0x1, 0x9) == 511                       # 0.5 * -0.5 = -1 quarter
    assert m.step(0x8, 0xF) == 511                       # -0 * -6 = 0
    p = MacModel(numerics="fp4", acc_width=16, pipeline=2)
    assert [p.step(0x6, 0x3), p.step(0, 0), p.step(0, 0)] == [0, 0, 24]   # 4 * 1.5 * 4
    with pytest.raises(ValueError):
        MacModel(numerics="fp8", acc_width=16, pipeline=0)


def test_numerics_is_one_field_of_mac_config():
    assert NUMERICS == ("int4", "uint4", "fp4")
    assert MacConfig().numerics == "int4" and MacConfig(signed=False).numerics == "uint4"
    fp = MacConfig(numerics="fp4")
    assert fp.signed and fp.multiplier == "shift" and fp.slug == "mac_f16_shift_ripple_fused_p0"
    assert MacConfig(numerics="uint4", signed=False).slug == MacConfig(signed=False).slug
    assert MacConfig().replace(signed=False).numerics == "uint4"
    assert MacConfig(signed=False).replace(numerics="fp4").signed is True
    assert fp.replace(acc_width=9).numerics == "fp4"
    with pytest.raises(ConfigError, match=r"^acc_width: 8 bits cannot hold one FP4"):
        MacConfig(numerics="fp4", acc_width=8)
    with pytest.raises(ConfigError, match=r"^multiplier: 'shift' is an FP4 architecture; for int4"):
        MacConfig(multiplier="shift")
    with pytest.raises(ConfigError, match=r"^numerics: fp4 operands are signed, not signed=False"):
        MacConfig(numerics="fp4", signed=False)
    with pytest.raises(ConfigError, match=r"^numerics: unknown number format 'fp8'"):
        MacConfig(numerics="fp8")


def test_check_operands_takes_codes():
    A, B = check_operands(np.array([[15, 0]]), np.array([[8], [7]]), "fp4")
    assert A.dtype == np.int64
    with pytest.raises(ValueError, match=r"A\[0,0\] = 16 is out of range for FP4 \(E2M1\) "
                                         r"codes \(0\.\.15\)"):
        check_operands(np.array([[16]]), np.array([[0]]), "fp4")
    with pytest.raises(ValueError, match="signed 4-bit operands"):
        check_operands(np.array([[8]]), np.array([[0]]), True)          # the old bool


# -- every FP4 MAC configuration in the simulators --------------------------------------

def fp4_variants(full=None):
    """The FP4 MACs of the simulator suite: every architecture x fused x pipeline at
    W = 16 with the adders rotated (each adder meets each architecture and each P), the
    behavioural MAC at each P, every architecture at W = 9 (the narrowest) and two at
    W = 64. ``SYSTOLIC_FULL_SIM=1``: every architecture x adder x fused x pipeline."""
    if full is None:
        full = os.environ.get("SYSTOLIC_FULL_SIM") == "1"
    configs = [MacConfig(numerics="fp4", multiplier="behavioral", pipeline=p)
               for p in PIPELINES]
    for i, (m, f) in enumerate(itertools.product(FP4_ARCHS, (True, False))):
        for j, p in enumerate(PIPELINES):
            adders = ADDER_CHOICES if full else [ADDER_CHOICES[(i + j) % len(ADDER_CHOICES)]]
            configs += [MacConfig(numerics="fp4", multiplier=m, adder=a, fused=f, pipeline=p)
                        for a in adders]
    for i, m in enumerate(FP4_ARCHS + ["behavioral"]):
        cfg = MacConfig(numerics="fp4", acc_width=9, multiplier=m,
                        pipeline=i % len(PIPELINES))
        if m != "behavioral":
            cfg = cfg.replace(adder=ADDER_CHOICES[i % len(ADDER_CHOICES)], fused=i % 2 == 0)
        configs.append(cfg)
    configs += [MacConfig(numerics="fp4", acc_width=64, adder="kogge-stone", pipeline=1),
                MacConfig(numerics="fp4", acc_width=64, multiplier="booth", fused=False)]
    return configs


def test_variants_cover_every_option():
    for full in (False, True):
        configs = fp4_variants(full)
        assert len({c.slug for c in configs}) == len(configs)
        assert {c.multiplier for c in configs} == set(FP4_ARCHS) | {"behavioral"}
        gate = [c for c in configs if c.acc_width == 16 and not c.behavioral]
        assert {(c.multiplier, c.fused, c.pipeline) for c in gate} == set(
            itertools.product(FP4_ARCHS, (True, False), PIPELINES))
        assert {(c.multiplier, c.adder) for c in gate} == set(
            itertools.product(FP4_ARCHS, ADDER_CHOICES))
        assert {c.acc_width for c in configs} == {9, 16, 64}
    assert len(fp4_variants(True)) == 3 + len(FP4_ARCHS) * len(ADDER_CHOICES) * 2 * 3 + 8


def _need(simulator):
    try:
        check_simulator(simulator)
    except SimulatorUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def fp4_suite():
    return write_mac_suite(fp4_variants(), BUILD_ROOT / "mac_suite_fp4_src")


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_every_fp4_mac_in_simulator(simulator, fp4_suite):
    _need(simulator)
    sources, toplevel, manifest = fp4_suite
    assert {v["numerics"] for v in manifest["variants"]} == {"fp4"}
    outcome = run_mac_design((sources, toplevel, manifest), simulator,
                             build_root=BUILD_ROOT / "fp4", spill=sources[0].parent)
    assert outcome.ok and outcome.passed == len(CASES), outcome.summary()


def test_bench_catches_an_fp4_mac_read_as_int4():
    """The checker is live: the default FP4 MAC described as int4 fails every test."""
    simulator = next((s for s in ("icarus", "verilator") if s in available_simulators()),
                     None)
    if simulator is None:
        pytest.skip("no simulator available")
    cfg = MacConfig(numerics="fp4")
    sources, toplevel, manifest = write_mac(cfg, BUILD_ROOT / "mac_fp4_src", name="mac")
    wrong = json.loads(json.dumps(manifest))
    wrong["variants"][0]["numerics"] = "int4"
    outcome = run_mac_design((sources, toplevel, wrong), simulator,
                             build_root=BUILD_ROOT / "fp4_lie", testcase=list(CASES))
    assert outcome.failed == len(CASES) and outcome.passed == 0, outcome.summary()
    for failure in outcome.failures:
        assert f"{cfg.slug} cycle " in failure and "expected acc=" in failure, failure
