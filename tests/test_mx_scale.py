"""The MX block-scale unit (hdl.mx_scale): its gate-level datapath in Amaranth's simulator
against exact Fractions, and a Yosys equivalence proof against the behavioural unit over
every input (with a broken netlist that must be refuted)."""
import itertools
import random
import re
from fractions import Fraction

import pytest

from hdl.emit import to_verilog
from hdl.flows.formal import prove_equivalent
from hdl.mx_scale import (EXP_WIDTH, BehavioralScaleUnit, ScaleUnit, pair_exponent,
                          scale_lane)
from tests.amaranth_harness import Combinational, evaluate

#: E8M0 codes at the edges: 2**-127, 2**-126, 2**-1, 1, 2, 2**126, 2**127, NaN.
SCALES = [0, 1, 126, 127, 128, 253, 254, 255]


def signed(value, width):
    return value - (1 << width) if value >> (width - 1) else value


def accumulators(width, *, samples=300, seed=7):
    """Every value up to 10 bits; beyond, every +-2**k, +-(2**k - 1), the extremes and
    seeded random values."""
    if width <= 10:
        return list(range(1 << width))
    top = 1 << width
    values = {0, 1, top - 1, top >> 1, (top >> 1) - 1, (top >> 1) + 1}
    for k in range(width):
        values |= {1 << k, (1 << k) - 1, top - (1 << k), (top - (1 << k) + 1) % top}
    rng = random.Random(seed + width)
    values |= {rng.randrange(top) for _ in range(samples)}
    return sorted(values)


def vectors(width, seed=3):
    """(acc, xa | xb << 8): each acc with one scale pair, cycling through every pair of
    :data:`SCALES` in a seeded order, plus random scales."""
    rng = random.Random(seed)
    pairs = list(itertools.product(SCALES, repeat=2))
    rng.shuffle(pairs)
    out = []
    for i, acc in enumerate(accumulators(width)):
        xa, xb = pairs[i % len(pairs)] if i % 2 == 0 else (rng.randrange(256),
                                                           rng.randrange(256))
        out.append((acc, xa | xb << 8))
    return out


def block_value(acc, xa, xb, width):
    """acc / 4 * 2**(xa - 127) * 2**(xb - 127), exactly."""
    return Fraction(signed(acc, width), 4) * Fraction(2) ** (xa + xb - 254)


@pytest.mark.parametrize("width", [9, 16, 24])
def test_normalized_float_is_exact(width):
    def build(net, a, b):
        sign, sig, exp, nan = scale_lane(net, a, b[:8], b[8:])
        return [*sig, *exp, sign, nan]

    dut = Combinational(build, a_width=width, b_width=16, out_width=width + EXP_WIDTH + 2)
    vecs = vectors(width)
    for (acc, x), out in zip(vecs, evaluate(dut, vecs)):
        xa, xb = x & 0xFF, x >> 8
        sig = out & ((1 << width) - 1)
        exp = signed((out >> width) & ((1 << EXP_WIDTH) - 1), EXP_WIDTH)
        sign, nan = (out >> (width + EXP_WIDTH)) & 1, out >> (width + EXP_WIDTH + 1)
        where = f"W={width} acc={signed(acc, width)} xa={xa} xb={xb}"
        assert nan == (xa == 0xFF or xb == 0xFF), where
        want = block_value(acc, xa, xb, width)
        if want == 0:
            assert (sig, sign) == (0, 0), where
            continue
        assert sig >> (width - 1) == 1, f"{where}: not normalized"
        assert sign == (want < 0), where
        got = Fraction(sig, 1 << (width - 1)) * Fraction(2) ** exp
        assert got == abs(want), f"{where}: {float(got)} != {float(abs(want))}"


def test_pair_is_exact():
    """normalize=False: value = acc * 2**exp for every pair of scales."""
    def build(net, a, b):
        exp, nan = pair_exponent(net, a, b)
        return [*exp, nan]

    dut = Combinational(build, a_width=8, b_width=8, out_width=EXP_WIDTH + 1)
    pairs = list(itertools.product(range(256), SCALES)) + list(
        itertools.product(SCALES, range(256)))
    for (xa, xb), out in zip(pairs, evaluate(dut, pairs)):
        exp = signed(out & ((1 << EXP_WIDTH) - 1), EXP_WIDTH)
        assert out >> EXP_WIDTH == (xa == 0xFF or xb == 0xFF)
        for acc in (1, -3, 1 << 15):
            assert acc * Fraction(2) ** exp == Fraction(acc, 4) * Fraction(2) ** (
                xa + xb - 254), (xa, xb)


@pytest.mark.parametrize("width, normalize", [(9, True), (16, True), (24, True),
                                              (16, False)])
def test_gates_equal_behavioural(width, normalize):
    """Every acc and every pair of scales, proved by Yosys."""
    gold = to_verilog(BehavioralScaleUnit(acc_width=width, normalize=normalize),
                      name="gold")
    gate = ScaleUnit(acc_width=width, normalize=normalize).verilog(name="gate")
    result = prove_equivalent(gold, "gold", gate, "gate")
    assert result.equivalent, result.counterexample


def test_broken_normalizer_is_refuted():
    """A normalizer whose 8-bit stage never fires must be caught."""
    gate = ScaleUnit(acc_width=16).verilog(name="gate")
    broken, n = re.subn(r"(assign nz8 = )[^;]+;", r"\g<1>1'h0;", gate, count=1)
    assert n == 1
    gold = to_verilog(BehavioralScaleUnit(acc_width=16), name="gold")
    result = prove_equivalent(gold, "gold", broken, "gate")
    assert not result.equivalent and "in_acc" in result.counterexample


def test_bad_width():
    with pytest.raises(ValueError, match="acc_width 8 is out of range; allowed: 9..64"):
        ScaleUnit(acc_width=8)


def test_cli_verilog_and_bad_input(tmp_path, capsys):
    from sim.cli import main
    out = tmp_path / "scale.v"
    assert main(["verilog", "mx-scale", "--acc-width", "12", "-o", str(out)]) == 0
    text = out.read_text()
    assert "module mx_scale(" in text.replace("module mx_scale (", "module mx_scale(")
    assert "[11:0] sig" in text and "[9:0] exp" in text
    assert main(["verilog", "mx-scale", "--exact-pair", "-o", str(out)]) == 0
    assert " sig" not in out.read_text()
    capsys.readouterr()
    for argv, message in ((["verilog", "mx-scale", "--acc-width", "8"],
                           "--acc-width: acc_width 8 is out of range; allowed: 9..64"),
                          (["synth", "mac", "--exact-pair"],
                           "--exact-pair: only for the mx-scale design, not mac")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_unit_gives_the_drivers_block_terms():
    """An MXFP4 GEMM's per-block partial sums (the numpy model of the array) and block
    scales through the gate-level unit: every block term equals the driver's exact one,
    and the terms of each C element add up to the driver's C."""
    import numpy as np
    from sim.drivers.blocked import model_runner, run_blocked
    from sim.models.mx import quantize
    rng = np.random.default_rng(3)
    A = rng.standard_normal((3, 70)).astype(np.float32)
    B = rng.standard_normal((70, 2)).astype(np.float32)
    A[0, 32:64] *= np.float32(2.0 ** 100)                 # scales far apart
    B[:32, 1] *= np.float32(2.0 ** -120)
    A[2, :32] = 0                                        # an all-zero block (X = -127)
    qa, qb = quantize(A, "mxfp4", axis=1), quantize(B, "mxfp4", axis=0)
    gemm, = run_blocked([(qa, qb)], runner=model_runner("mxfp4"))
    width = 16
    vecs, where = [], []
    for b, part in enumerate(gemm.partials):
        for i, j in itertools.product(range(part.shape[0]), range(part.shape[1])):
            xa, xb = int(qa.exp[i, b]) + 127, int(qb.exp[b, j]) + 127
            vecs.append((int(part[i, j]) % (1 << width), xa | xb << 8))
            where.append((i, j, int(part[i, j]), xa, xb))

    def build(net, a, x):
        sign, sig, exp, nan = scale_lane(net, a, x[:8], x[8:])
        return [*sig, *exp, sign, nan]

    dut = Combinational(build, a_width=width, b_width=16, out_width=width + EXP_WIDTH + 2)
    sums = {}
    for (i, j, part, xa, xb), out in zip(where, evaluate(dut, vecs)):
        sig = out & ((1 << width) - 1)
        exp = signed((out >> width) & ((1 << EXP_WIDTH) - 1), EXP_WIDTH)
        sign = (out >> (width + EXP_WIDTH)) & 1
        got = (-1) ** sign * Fraction(sig, 1 << (width - 1)) * Fraction(2) ** exp
        assert got == Fraction(part) * Fraction(2) ** (xa + xb - 256), (i, j, part)
        sums[i, j] = sums.get((i, j), 0) + got
    for (i, j), total in sums.items():
        assert total == Fraction(int(gemm.C.mant[i, j])) * Fraction(2) ** gemm.C.exp
