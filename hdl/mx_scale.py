"""The MX block-scale unit of one output lane, from the project's gates.

An MXFP4 GEMM runs each 32-block of K on the array as an exact fixed-point partial sum:
the accumulator ``acc`` (W bits, two's complement) counts quarters, ``acc = 4 * sum
a_e2m1 * b_e2m1``. The block's true value also carries the two shared E8M0 scales,
``xa`` of the A block and ``xb`` of the B block (biased exponents, 2**(x - 127))::

    value = acc / 4 * 2**(xa - 127) * 2**(xb - 127)

:class:`ScaleUnit` (and :func:`scale_lane`, its datapath) turns one lane's ``acc`` and
the two scales into that value as an **exact** floating-point number, as a chip would at
the array edge before adding the blocks of K in floating point:

* ``sign``: 1 if the value is negative;
* ``sig[W-1:0]``: ``|acc|`` normalized, ``sig[W-1] = 1`` (read as ``1.xxx``), all zero
  when ``acc = 0``;
* ``exp[9:0]``: the unbiased exponent, two's complement:
  ``|value| = sig / 2**(W-1) * 2**exp``. With ``lz`` leading zeros of ``|acc|``,
  ``exp = xa + xb - 254 + (W - 3) - lz``; for ``acc != 0`` it lies in -256..267 (W = 16),
  which no FP32 exponent holds, hence 10 bits. When ``acc = 0`` the value is 0 whatever
  ``exp`` says (``sig[W-1] = 0`` marks it; ``exp`` is then the formula with ``lz`` =
  :func:`zero_shift`, every stage of the normalizer having shifted);
* ``nan``: either scale is the E8M0 NaN code 0xFF (the MX spec: the whole block is NaN).

Nothing rounds: the W-bit significand holds ``|acc|`` (at most 2**(W-1)) exactly and the
exponent is an integer sum, so ``(sign, sig, exp)`` is the block product exactly. The
next stage, a floating-point accumulator over the blocks of K, is where a chip would
round; it is not built here (the GEMM driver adds the blocks exactly,
:mod:`sim.drivers.blocked`).

With ``normalize=False`` the unit builds only the exact **(mantissa, exponent) pair**:
the mantissa is ``acc`` itself (two's complement, no port) and ``exp = xa + xb - 256``,
``value = acc * 2**exp`` (-256..252), plus ``nan``; the cheapest exact hand-off, for a
next stage that aligns its inputs anyway (a wide fixed-point or an alignment-based
floating-point accumulator).

Datapath: ``|acc| = (acc XOR s) + s`` (an incrementer of half adders); a normalizing
shifter of stages 2**k, ..., 2, 1 (k = the largest with 2**k < W): each stage shifts
left by its amount when that many top bits are zero, and that decision is one bit of
``lz``; the exponent is ``xa + xb + (-lz + W - 257)`` mod 2**10 (one row of full adders,
then a ripple-carry adder; the constant folds into the gates). Combinational, latency
0; the lane's output registers and the delivery of the scales to the edge are not part
of it.
"""
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .adders import ripple_carry_add
from .gates import Netlist, and_, full_adder, not_, or_, xor_

__all__ = ["ScaleUnit", "BehavioralScaleUnit", "scale_lane", "pair_exponent", "EXP_WIDTH",
           "SCALE_WIDTH", "E8M0_BIAS", "shift_stages", "zero_shift"]

#: Width of the unbiased exponent output (two's complement).
EXP_WIDTH = 10
#: Width of an E8M0 scale code.
SCALE_WIDTH = 8
E8M0_BIAS = 127


def shift_stages(width):
    """The normalizer's shift amounts, largest first: powers of two below ``width``."""
    out, d = [], 1
    while d < width:
        out.insert(0, d)
        d *= 2
    return out


def zero_shift(width):
    """The ``lz`` of ``acc = 0``: the sum of every stage of :func:`shift_stages`."""
    return sum(shift_stages(width))


def _const_bits(value, width):
    return [(value >> i) & 1 for i in range(width)]


def _all_ones(bits):
    out = bits[0]
    for b in bits[1:]:
        out = and_(out, b)
    return out


def _normalize(net, mag):
    """``(sig, lz)``: ``mag`` shifted left until its top bit is 1 (or all zero) and the
    shift, LSB first, one bit per stage of :func:`shift_stages`."""
    width, value, lz = len(mag), list(mag), []
    for d in shift_stages(width):
        top = value[width - d:]
        any_top = top[0]
        for b in top[1:]:
            any_top = or_(any_top, b)
        zero = net.wire(not_(any_top), f"nz{d}")
        shifted = [0] * d + value[:width - d]
        value = [net.wire(or_(and_(zero, s), and_(not_(zero), v)), f"sh{d}_")
                 for s, v in zip(shifted, value)]
        lz.insert(0, zero)
    return value, lz


def pair_exponent(net, xa, xb):
    """``(exp, nan)`` of the unnormalized pair: ``xa + xb - 256`` mod 2**10."""
    if len(xa) != SCALE_WIDTH or len(xb) != SCALE_WIDTH:
        raise ValueError(f"E8M0 scales have {SCALE_WIDTH} bits")
    pad = [0] * (EXP_WIDTH - SCALE_WIDTH)
    total, _ = ripple_carry_add(net, [*xa, *pad], [*xb, *pad])
    exp, _ = ripple_carry_add(net, total, _const_bits(-256 % (1 << EXP_WIDTH), EXP_WIDTH))
    return exp, or_(_all_ones(xa), _all_ones(xb))


def scale_lane(net, acc, xa, xb):
    """The datapath of :class:`ScaleUnit` on lists of bits (LSB first): returns
    ``(sign, sig, exp, nan)``."""
    width = len(acc)
    if len(xa) != SCALE_WIDTH or len(xb) != SCALE_WIDTH:
        raise ValueError(f"E8M0 scales have {SCALE_WIDTH} bits")
    sign = acc[-1]
    mag, _ = ripple_carry_add(net, [xor_(b, sign) for b in acc], [0] * width, sign)
    mag = [net.wire(b, "mag") for b in mag]
    sig, lz = _normalize(net, mag)
    # exp = xa + xb + (W - 257 - lz): -lz = ~lz + 1 - 2**len(lz), so the third operand
    # is ~lz plus the constant W - 256 - 2**len(lz) (mod 2**EXP_WIDTH), folded below.
    const = (width - 256 - (1 << len(lz))) % (1 << EXP_WIDTH)
    third, _ = ripple_carry_add(net, [not_(b) for b in lz] + [0] * (EXP_WIDTH - len(lz)),
                                _const_bits(const, EXP_WIDTH))
    ext = [*xa, 0, 0], [*xb, 0, 0]
    s_row, c_row = [], [0]
    for a, b, c in zip(*ext, third):
        s, carry = full_adder(net, a, b, c)
        s_row.append(s)
        c_row.append(carry)
    exp, _ = ripple_carry_add(net, s_row, c_row[:EXP_WIDTH])
    nan = or_(_all_ones(xa), _all_ones(xb))
    return sign, sig, exp, nan


class ScaleUnit(wiring.Component):
    """One output lane's block scale (see the module docstring): ``acc`` (``acc_width``
    bits, quarters, two's complement), ``xa``/``xb`` (E8M0) -> ``sign``, ``sig``
    (normalized ``|acc|``), ``exp`` (unbiased, two's complement), ``nan``; with
    ``normalize=False`` only ``exp`` (of the pair ``acc * 2**exp``) and ``nan``.
    Combinational (latency 0)."""

    def __init__(self, *, acc_width=16, normalize=True):
        if isinstance(acc_width, bool) or not isinstance(acc_width, int) \
                or not 9 <= acc_width <= 64:
            self._MustUse__silence = True       # never elaborated: no unused warning
            raise ValueError(f"acc_width {acc_width!r} is out of range; allowed: 9..64")
        self.acc_width, self.normalize = acc_width, bool(normalize)
        ports = {"acc": In(acc_width), "xa": In(SCALE_WIDTH), "xb": In(SCALE_WIDTH),
                 "exp": Out(EXP_WIDTH), "nan": Out(1)}
        if normalize:
            ports.update(sign=Out(1), sig=Out(acc_width))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        net = Netlist(m)
        if not self.normalize:
            exp, nan = pair_exponent(net, list(self.xa), list(self.xb))
            m.d.comb += [self.exp.eq(Cat(*exp)), self.nan.eq(nan)]
            return m
        sign, sig, exp, nan = scale_lane(net, list(self.acc), list(self.xa), list(self.xb))
        m.d.comb += [self.sign.eq(sign), self.sig.eq(Cat(*sig)), self.exp.eq(Cat(*exp)),
                     self.nan.eq(nan)]
        return m

    def verilog(self, name="mx_scale"):
        """Deterministic Verilog with top module ``name``."""
        from .emit import to_verilog
        return to_verilog(self, name=name)


class BehavioralScaleUnit(ScaleUnit):
    """The reference for the equivalence proof: the same ports and outputs from
    Amaranth's ``-``, ``<<`` and ``+`` and a leading-zero count written as a priority
    chain."""

    def elaborate(self, platform):
        m = Module()
        nan = (self.xa == 0xFF) | (self.xb == 0xFF)
        if not self.normalize:
            m.d.comb += [self.exp.eq((self.xa + self.xb - 256)[:EXP_WIDTH]),
                         self.nan.eq(nan)]
            return m
        w = self.acc_width
        mag = Signal(w)
        m.d.comb += mag.eq(Mux(self.acc[-1], -self.acc, self.acc))
        lz = Signal(range(zero_shift(w) + 1))
        m.d.comb += lz.eq(zero_shift(w))
        for i in range(w):                          # the highest set bit wins
            with m.If(mag[i]):
                m.d.comb += lz.eq(w - 1 - i)
        m.d.comb += [self.sign.eq(self.acc[-1]), self.sig.eq((mag << lz)[:w]),
                     self.exp.eq((self.xa + self.xb + (w - 2 * E8M0_BIAS - 3) - lz)
                                 [:EXP_WIDTH]),
                     self.nan.eq(nan)]
        return m
