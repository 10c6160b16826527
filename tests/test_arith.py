"""Amaranth-simulator tests of every adder and multiplier against Python integers.

Exhaustive for widths 2..8 (every operand pair; adders with both carry-ins), seeded
random plus full-range extremes for widths 9..16.
"""
import itertools
import random

import pytest

from hdl.adders import ADDERS
from hdl.multipliers import MULTIPLIERS, multiply
from tests.amaranth_harness import Combinational, evaluate

EXHAUSTIVE_WIDTHS = range(2, 9)
SAMPLED_WIDTHS = range(9, 17)


def to_signed(value, width):
    return value - (1 << width) if value >> (width - 1) else value


def operand_pairs(width, *, samples=600, seed=1):
    """All pairs up to 8 bits; beyond, the extremes crossed plus seeded random pairs."""
    if width <= 8:
        return list(itertools.product(range(1 << width), repeat=2))
    top = (1 << width) - 1
    extremes = [0, 1, 2, top, top - 1, 1 << (width - 1), (1 << (width - 1)) - 1,
                (1 << (width - 1)) + 1]
    rng = random.Random(seed * 1000 + width)
    pairs = list(itertools.product(extremes, repeat=2))
    pairs += [(rng.randrange(1 << width), rng.randrange(1 << width)) for _ in range(samples)]
    return pairs


@pytest.mark.parametrize("cin", [0, 1])
@pytest.mark.parametrize("width", [*EXHAUSTIVE_WIDTHS, *SAMPLED_WIDTHS])
@pytest.mark.parametrize("adder", sorted(ADDERS))
def test_adder(adder, width, cin):
    add = ADDERS[adder]

    def build(net, a, b):
        total, carry = add(net, a, b, cin)
        return total + [carry]

    dut = Combinational(build, a_width=width, b_width=width, out_width=width + 1)
    pairs = operand_pairs(width)
    for (x, y), got in zip(pairs, evaluate(dut, pairs)):
        assert got == x + y + cin, f"{adder} w={width}: {x} + {y} + {cin} gave {got}"


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize("width", [*EXHAUSTIVE_WIDTHS, *SAMPLED_WIDTHS])
@pytest.mark.parametrize("multiplier", sorted(MULTIPLIERS))
def test_multiplier(multiplier, width, signed):
    def build(net, a, b):
        return multiply(net, a, b, signed=signed, multiplier=multiplier, adder="ripple")

    dut = Combinational(build, a_width=width, b_width=width, out_width=2 * width)
    read = (lambda v: to_signed(v, width)) if signed else (lambda v: v)
    mask = (1 << (2 * width)) - 1
    pairs = operand_pairs(width)
    for (x, y), got in zip(pairs, evaluate(dut, pairs)):
        want = (read(x) * read(y)) & mask
        assert got == want, (f"{multiplier} {'signed' if signed else 'unsigned'} "
                             f"w={width}: {read(x)} * {read(y)} gave {got:#x}, want {want:#x}")


@pytest.mark.parametrize("adder", sorted(ADDERS))
@pytest.mark.parametrize("multiplier", sorted(MULTIPLIERS))
def test_multiplier_with_each_final_adder(multiplier, adder):
    """The final carry-propagate adder is a free choice: check every pairing at 5 bits."""
    width = 5

    def build(net, a, b):
        return multiply(net, a, b, signed=True, multiplier=multiplier, adder=adder)

    dut = Combinational(build, a_width=width, b_width=width, out_width=2 * width)
    pairs = operand_pairs(width)
    for (x, y), got in zip(pairs, evaluate(dut, pairs)):
        assert got == (to_signed(x, width) * to_signed(y, width)) & 0x3FF


@pytest.mark.parametrize("width", [6, 8])
@pytest.mark.parametrize("multiplier", sorted(MULTIPLIERS))
def test_truncated_product_width(multiplier, width):
    """A product modulo 2**k with k < 2n (what an accumulator of k bits needs)."""
    out = width + 3

    def build(net, a, b):
        return multiply(net, a, b, signed=True, width=out, multiplier=multiplier)

    dut = Combinational(build, a_width=width, b_width=width, out_width=out)
    rng = random.Random(7)
    pairs = [(rng.randrange(1 << width), rng.randrange(1 << width)) for _ in range(400)]
    pairs += [(1 << (width - 1), 1 << (width - 1)), (1 << (width - 1), (1 << width) - 1)]
    for (x, y), got in zip(pairs, evaluate(dut, pairs)):
        assert got == (to_signed(x, width) * to_signed(y, width)) % (1 << out)


def test_adders_reject_mismatched_widths():
    from amaranth.hdl import Module, Signal
    from hdl.gates import Netlist
    a, b = Signal(4), Signal(5)
    m = Module()
    m._MustUse__silence = True       # never elaborated on purpose: no "unused" warning
    for add in ADDERS.values():
        with pytest.raises(ValueError, match="equal width"):
            add(Netlist(m), list(a), list(b))
