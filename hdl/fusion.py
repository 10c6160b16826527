"""Precision fusion: int8 x int4 (W4A8) and int8 x int8 work on the 4-bit PE, by digits.

An int8 operand ``x`` is two 4-bit digits, ``x = 16*hi + lo`` with ``hi = x >> 4``
(signed, -8..7) and ``lo = x & 15`` (unsigned, 0..15). So::

    a*b (W4A8, a int8, b int4) = 16*(hi_a*b) + lo_a*b                          (2 digit products)
    a*b (int8 x int8)          = 256*hi_a*hi_b + 16*(hi_a*lo_b + lo_a*hi_b) + lo_a*lo_b  (4)

The organisation built here is **digit-serial along K, combined by Horner steps in the
partial-sum path**: the driver expands K into digit steps in *phase-major* order (for a
K pass of k products: the k hi*hi steps, then the hi*lo and lo*hi steps, then lo*lo), and
the step that opens a new digit weight multiplies the partial sum it receives by 16::

    sum := (x16 ? 16*sum : sum) + digit(a, ua) * digit(b, ub)     (mod 2**W)

``digit(x, u)`` reads the 4-bit ``x`` as unsigned (0..15) when ``u`` is set, else as
two's complement (-8..7): a 5 x 5 two's-complement multiply whose fifth operand bit is
``x[3] & ~u``. After the pass, ``sum = 256*S_hh + 16*(S_hl + S_lh) + S_ll = sum of a*b``
exactly (mod 2**W, and the pass length keeps the true sum inside W bits, so the
wrap-arounds of the intermediate ``16*sum`` cancel).

Weight stationary, the steps of one K pass are neighbouring PE rows of a column (a
spatial fusion: the Horner step sits in the partial-sum path between rows); output
stationary they are consecutive cycles of one PE's accumulator (a temporal fusion).
Either way a W4A8 MAC takes 2 PE-steps and an int8 MAC 4, and the int4 mode is the
same PE with every tag 0.

The three tags ``ua``, ``ub``, ``x16`` belong to the digit step, i.e. to the K index, so
they travel with the A operand (the B operand of the same K index meets it in the same
PE and cycle, in both dataflows): one flop per tag per PE, no mode register. A
sub-array of the splittable array therefore runs whatever precision its own A stream
says. ``fusion`` (:data:`FUSIONS`) is what the array is built for: ``"w4a8"`` has tags
``ua`` and ``x16`` (B is always a signed int4 digit), ``"int8"`` all three.

This module is the hardware side (the datapath, its behavioural reference, the
precision names and ranges); the digit expansion of a GEMM is in
:mod:`sim.drivers.fusion`.
"""
from amaranth.hdl import Module, Signal, Cat, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .gates import Netlist, and_, or_, not_, xor_
from .mac import MacConfig, ConfigError, delay_chain, multiply_add

__all__ = ["FUSIONS", "PRECISIONS", "TAGS", "DIGIT_STEPS", "PHASES", "multiply_add_any",
           "precisions_of", "tags_of",
           "check_fusion", "precision_operand_ranges", "precision_max_safe_k",
           "fused_multiply_add", "behavioral_fused_multiply_add", "FusedMAC",
           "BehavioralFusedMAC", "fused_mac_verilog", "shift_multiply_add", "ShiftFusedMAC"]

#: What an array can be built for (``ArrayConfig.fusion``).
FUSIONS = ("none", "w4a8", "int8")
#: The run-time precisions (``systolic gemm --precision``).
PRECISIONS = ("int4", "w4a8", "int8")
#: PE steps (digit products) per MAC of each precision.
DIGIT_STEPS = {"int4": 1, "w4a8": 2, "int8": 4}
#: The digit phases of one K pass, in order: ``(a digit, b digit, ua, ub, x16)`` with a
#: digit ``"hi"`` (x >> 4, signed), ``"lo"`` (x & 15, unsigned) or ``"x"`` (the int4
#: operand itself); ``x16`` is set on the first step of a phase only (the Horner step
#: to the next digit weight: 256, 16, 16, 1 for int8).
PHASES = {
    "int4": (("x", "x", 0, 0, 0),),
    "w4a8": (("hi", "x", 0, 0, 0), ("lo", "x", 1, 0, 1)),
    "int8": (("hi", "hi", 0, 0, 0), ("hi", "lo", 0, 1, 1), ("lo", "hi", 1, 0, 0),
             ("lo", "lo", 1, 1, 1)),
}
#: The tags that travel with A, per fusion (in port order).
TAGS = {"none": (), "w4a8": ("ua", "x16"), "int8": ("ua", "ub", "x16")}


def check_fusion(fusion, *, signed=True, numerics="int4"):
    """``fusion`` if an array of ``numerics`` MACs can be built for it, else ConfigError."""
    if fusion not in FUSIONS:
        raise ConfigError("fusion", f"unknown fusion {fusion!r}; allowed: "
                          f"{', '.join(FUSIONS)}")
    if fusion != "none" and numerics != "int4":
        raise ConfigError("fusion", f"fusion {fusion} fuses int4 digits; the MAC is "
                          f"{numerics}: use numerics int4")
    return fusion


def precisions_of(fusion):
    """The precisions an array built for ``fusion`` runs."""
    return {"none": ("int4",), "w4a8": ("int4", "w4a8"), "int8": PRECISIONS}[fusion]


def tags_of(fusion):
    return TAGS[fusion]


def precision_operand_ranges(precision):
    """``((a_lo, a_hi), (b_lo, b_hi))``, inclusive, of A and B in ``precision``."""
    i4, i8 = (-8, 7), (-128, 127)
    return {"int4": (i4, i4), "w4a8": (i8, i4), "int8": (i8, i8)}[precision]


def precision_max_safe_k(precision, acc_width):
    """Largest K whose worst-case sum of K products of ``precision`` fits a signed
    ``acc_width``-bit accumulator (the driver's K pass length; at least 1). Products:
    int4 -56..64, W4A8 -1016..1024, int8 -16256..16384."""
    (alo, ahi), (blo, bhi) = precision_operand_ranges(precision)
    ends = [x * y for x in (alo, ahi) for y in (blo, bhi)]
    lo, hi = min(ends), max(ends)
    top, bottom = (1 << (acc_width - 1)) - 1, -(1 << (acc_width - 1))
    return max(1, min(top // hi, bottom // lo))


def digit_partial_products(a, b, *, ua, ub, width):
    """Baugh-Wooley partial products of two 4-bit digits whose sign rows the tags
    control: ``digit(a, ua) * digit(b, ub)`` as ``(columns, constant)`` (mod 2**width).

    A digit is ``x = sum_{i<3} x_i 2^i + x_3 2^3 (1 - 2s)`` with ``s = ~u`` (s = 1:
    two's complement, -8..7; s = 0: unsigned, 0..15). Every term ``x 2^k (1 - 2s)``
    equals ``(x XOR s) 2^k - s 2^k``, so the row of ``a_3 b_j`` is XORed with ``sa``,
    the column of ``a_i b_3`` with ``sb``, and ``a_3 b_3`` (sign ``(1-2sa)(1-2sb) =
    1 - 2t``, ``t = sa XOR sb = ua XOR ub``) with ``t``. The corrections
    ``-56 sa - 56 sb - 64 t`` are ``-120 + V`` with ``V = 8`` (ua = ub = 0), 0 (one
    unsigned) or 120 (both): bit 3 of V is ``~t``, bits 4..6 are ``ua & ub``. With both
    tags 0 this is the plain signed Baugh-Wooley array (NANDs, constant -112)."""
    columns = [[] for _ in range(width)]
    sa, sb, t = not_(ua), not_(ub), xor_(ua, ub)
    for i in range(4):
        for j in range(4):
            if i + j >= width:
                continue
            bit = and_(a[i], b[j])
            if i == 3 and j == 3:
                bit = xor_(bit, t)
            elif i == 3:
                bit = xor_(bit, sa)
            elif j == 3:
                bit = xor_(bit, sb)
            columns[i + j].append(bit)
    both = and_(ua, ub)
    for k, bit in ((3, not_(t)), (4, both), (5, both), (6, both)):
        if k < width:
            columns[k].append(bit)
    return columns, (-120) % (1 << width)


def _digit(bits, unsigned):
    """The 4-bit digit as 5 bits of two's complement: bit 4 = bit 3 unless unsigned."""
    return list(bits) + [and_(bits[-1], not_(unsigned))]


def fused_multiply_add(m, net, a, b, tags, addend, cfg):
    """``(x16 ? 16*addend : addend) + digit(a, ua)*digit(b, ub) mod 2**W`` from gates
    (``tags``: dict of the tag bits, a missing tag is 0), with ``cfg.pipeline`` stages on
    the product path and ``x16`` delayed to match (the addend joins in the last stage,
    as in :func:`hdl.mac.multiply_add`, whose datapath this is with 5-bit operands).

    The digit product's partial products are :func:`digit_partial_products` (a 4 x 4
    array, its sign rows under tag control); the configured reducer and adder sum them
    with the addend. Horner step: bits 0..3 of ``16*addend`` are 0, bit i >= 4 is
    addend[i-4], so the shift is one AND (bits 0..3) or one 2:1 mux (bits 4..W-1) per
    bit."""
    x16 = delay_chain(m, tags["x16"], cfg.pipeline, "x16")[-1] if "x16" in tags else 0
    ua, ub = tags.get("ua", 0), tags.get("ub", 0)

    def pp(a, b, *, signed, width):
        return digit_partial_products(a, b, ua=ua, ub=ub, width=width)
    keep = not_(x16)
    shifted = []
    for i, bit in enumerate(addend):
        if i < 4:
            s = and_(bit, keep)
        else:
            s = or_(and_(bit, keep), and_(addend[i - 4], x16))
        shifted.append(net.wire(s, f"horner{i}") if not isinstance(s, int) else s)
    return multiply_add(m, net, list(a), list(b), shifted, cfg, partial_products=pp)


def behavioral_fused_multiply_add(m, a, b, tags, addend, cfg):
    """The same function and latency as :func:`fused_multiply_add`, with ``*``, ``+``
    and ``<<``."""
    def digit(x, u):
        return Mux(u, Cat(x, 0).as_signed(), x.as_signed()) if not isinstance(u, int) \
            else x.as_signed()
    product = digit(a, tags.get("ua", 0)) * digit(b, tags.get("ub", 0))
    x16 = tags.get("x16", 0)
    for stage in range(cfg.pipeline):
        reg = Signal(product.shape(), name=f"pipe_product{stage}")
        m.d.sync += reg.eq(product)
        product = reg
    if not isinstance(x16, int):
        x16 = delay_chain(m, x16, cfg.pipeline, "x16")[-1]
        addend = Mux(x16, addend << 4, addend)
    return addend + product


def multiply_add_any(m, a, b, tags, addend, cfg):
    """W bits of the fused step, gate-level or behavioural as ``cfg.multiplier`` says."""
    if cfg.behavioral:
        return behavioral_fused_multiply_add(m, a, b, tags, addend, cfg)[:len(addend)]
    return Cat(*fused_multiply_add(m, Netlist(m), list(a), list(b), tags, list(addend), cfg))


class _FusedMacBase(wiring.Component):
    """One fused MAC: ``acc := (x16 ? 16*acc : acc) + digit(a, ua)*digit(b, ub)``
    (mod 2**W) on each rising edge, latency ``config.pipeline``; ``rst`` clears it.

    Ports: ``a[4]``, ``b[4]``, the tags of ``fusion`` (``ua``, ``ub``, ``x16``; 1 bit
    each), ``acc[W]``."""

    def __init__(self, config: MacConfig, fusion="int8"):
        check_fusion(fusion, numerics=config.numerics)
        if fusion == "none":
            raise ConfigError("fusion", "a fused MAC needs fusion w4a8 or int8")
        if config.width != 4:
            raise ConfigError("width", "fused digits are 4 bits; allowed: 4")
        self.config, self.fusion = config, fusion
        ports = {"a": In(4), "b": In(4)}
        ports.update({t: In(1) for t in TAGS[fusion]})
        ports["acc"] = Out(config.acc_width)
        super().__init__(ports)

    @property
    def latency(self):
        return self.config.pipeline

    def elaborate(self, platform):
        m = Module()
        tags = {t: getattr(self, t) for t in TAGS[self.fusion]}
        m.d.sync += self.acc.eq(self._step(m, tags))
        return m


class FusedMAC(_FusedMacBase):
    """Gate-level fused MAC (:func:`fused_multiply_add`)."""

    def _step(self, m, tags):
        return Cat(*fused_multiply_add(m, Netlist(m), list(self.a), list(self.b), tags,
                                       list(self.acc), self.config))


class BehavioralFusedMAC(_FusedMacBase):
    """Reference fused MAC written with ``*``, ``+`` and ``<<``; same ports."""

    def _step(self, m, tags):
        return behavioral_fused_multiply_add(m, self.a, self.b, tags, self.acc,
                                             self.config)[:self.config.acc_width]


def fused_mac_verilog(config: MacConfig, fusion="int8", *, name="mac", behavioral=False):
    """Deterministic Verilog of a (gate-level or behavioural) fused MAC."""
    from .emit import to_verilog
    cls = BehavioralFusedMAC if behavioral else FusedMAC
    return to_verilog(cls(config, fusion), name=name)


# -- The alternative measured against: shift each digit product into place --------------

def shift_multiply_add(net, a, b, tags, addend, *, multiplier="dadda", adder="ripple"):
    """``addend + (digit(a, ua)*digit(b, ub) << 4*(ha + hb)) mod 2**W`` from gates, P = 0:
    the organisation this module does NOT use, built to measure it (``tags``: ``ua``,
    ``ub``, ``ha``, ``hb``; ``ha``/``hb`` mark a high digit). The 5 x 5 product (10
    bits, two's complement) is shifted by 0, 4 or 8 with one AND-OR per bit, its sign
    bit (column 17) inverted with the constant -2**17 (sign extension), and added to the
    addend over 18 columns before the up/down chain (:func:`hdl.mac._fused_split`)."""
    from .adders import ADDERS
    from .mac import _split_point, _fused_split
    from .multipliers import (MULTIPLIERS, REDUCERS, add_constant,
                              multiply)
    W = len(addend)
    reduce, add = REDUCERS[MULTIPLIERS[multiplier][1]], ADDERS[adder]
    a5, b5 = _digit(a, tags["ua"]), _digit(b, tags["ub"])
    p = multiply(net, a5, b5, signed=True, multiplier=multiplier, adder=adder)
    p = [net.wire(bit, f"prod{i}") for i, bit in enumerate(p)]
    ha, hb = tags["ha"], tags["hb"]
    sel = {0: and_(not_(ha), not_(hb)), 4: xor_(ha, hb), 8: and_(ha, hb)}
    sel = {k: net.wire(v, f"sel{k}") for k, v in sel.items()}
    columns = [[] for _ in range(W)]
    for k in range(18):
        bit = 0
        for s, en in sel.items():
            j = k - s
            if j >= 0:
                bit = or_(bit, and_(en, p[min(j, 9)]))
        if k < W:
            columns[k].append(net.wire(not_(bit) if k == 17 else bit, f"q{k}"))
    constant = (-(1 << 17)) % (1 << W)
    split = _split_point(columns, constant, 9, W)
    if split is not None:
        return _fused_split(net, columns, constant, addend, 1, split, reduce, add)
    for w in range(W):
        columns[w].append(addend[w])
    rows = reduce(net, add_constant(columns, constant))
    total, _ = add(net, *rows)
    return total


class ShiftFusedMAC(wiring.Component):
    """Clocked :func:`shift_multiply_add` (P = 0): ``acc := acc + (digit(a, ua) *
    digit(b, ub) << 4*(ha + hb))``; ports a[4], b[4], ua, ub, ha, hb, acc[W]."""

    def __init__(self, config: MacConfig):
        self.config = config
        super().__init__({"a": In(4), "b": In(4), "ua": In(1), "ub": In(1), "ha": In(1),
                          "hb": In(1), "acc": Out(config.acc_width)})

    def elaborate(self, platform):
        m = Module()
        tags = {t: getattr(self, t) for t in ("ua", "ub", "ha", "hb")}
        m.d.sync += self.acc.eq(Cat(*shift_multiply_add(
            Netlist(m), list(self.a), list(self.b), tags, list(self.acc),
            multiplier=self.config.multiplier, adder=self.config.adder)))
        return m
