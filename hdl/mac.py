"""The gate-level multiply-accumulate unit and its configuration.

Port contract (top module ``mac`` when emitted on its own)::

    inputs   clk, rst (synchronous, active high), a[n-1:0], b[n-1:0]   (n = 4)
    output   acc[W-1:0]

On each rising edge: if ``rst``, ``acc := 0`` (and every pipeline register is cleared);
otherwise ``acc := (acc + a*b) mod 2**W``, with a and b read as two's complement when
``signed`` (``numerics`` int4; uint4: unsigned); with ``numerics="fp4"`` a and b are E2M1
codes and ``acc := (acc + 4*a*b) mod 2**W`` (two fractional bits; :mod:`hdl.fp4`).
With ``pipeline = P`` the product of the inputs present at edge t is added into ``acc``
at edge t+P (latency P): ``acc`` after edge t includes every product of inputs sampled
at edges <= t-P.

Datapath, and where the P pipeline cuts go::

    unfused:  partial products -> reducer -> CPA (product) -> CPA (acc + product) -> acc
                          P=2 cut ^      P>=1 cut ^
    fused:    partial products -> reducer(pp + acc + constants) -> CPA -> acc
              with P>=1 the product is first reduced to two carry-save rows
              (P=1 cut there; P=2 also cuts after the partial products), then the rows,
              acc and the sign constants go through one more reducer and one CPA.

The fused form needs one carry-propagate adder per cycle instead of two. Above the
product's 2n columns the fused sum only ever changes ``acc`` by -1, 0 or +1 (the low
part's carry minus the sign-extension constant), so those bits are built as an
up/down counter chain (one XOR per bit) instead of a second adder.
"""
from dataclasses import dataclass, replace

from amaranth.hdl import Module, Signal, Cat
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .gates import Netlist, is_const, and_, or_, xor_, not_
from .adders import ADDERS
from .multipliers import MULTIPLIERS, PARTIAL_PRODUCTS, REDUCERS, add_constant
from .numerics import NUMERICS, FP4_PRODUCT_MAX
from . import fp4

__all__ = ["MacConfig", "ConfigError", "MAC", "BehavioralMAC", "multiply_add", "delay_chain",
           "behavioral_multiply_add", "OPERAND_WIDTH", "operand_range", "product_range",
           "max_safe_k",
           "ACC_WIDTHS", "PIPELINES", "MULTIPLIER_CHOICES", "ADDER_CHOICES", "NUMERICS",
           "FP4_MULTIPLIERS", "ALL_MULTIPLIERS", "FP4_MIN_ACC_WIDTH", "DEFAULT_MULTIPLIER"]

OPERAND_WIDTH = 4
ACC_WIDTHS = range(8, 65)
PIPELINES = range(0, 3)
MULTIPLIER_CHOICES = tuple(MULTIPLIERS) + ("behavioral",)
ADDER_CHOICES = tuple(ADDERS)
#: Architectures that exist for FP4 only (mantissa product and shift, see hdl.fp4).
FP4_MULTIPLIERS = ("shift",)
ALL_MULTIPLIERS = MULTIPLIER_CHOICES + FP4_MULTIPLIERS
#: The architecture when none is named: the smallest of each format at W = 16, P = 0.
DEFAULT_MULTIPLIER = {"int4": "dadda", "uint4": "dadda", "fp4": "shift"}
#: An FP4 product reaches +-144 quarters: 9 bits of two's complement.
FP4_MIN_ACC_WIDTH = FP4_PRODUCT_MAX.bit_length() + 1


class ConfigError(ValueError):
    """A generator parameter has a value it cannot take: ``field`` names the parameter
    (a config field such as ``acc_width``), ``message`` what it got and what is allowed.
    The CLI names its own flag instead (:func:`sim.cli.common.flag_for`)."""

    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def operand_range(signed, width=OPERAND_WIDTH):
    """``(lo, hi)``, inclusive, of the integers an operand of ``width`` bits encodes:
    two's complement when ``signed``."""
    half = 1 << (width - 1)
    return (-half, half - 1) if signed else (0, (1 << width) - 1)


def product_range(signed, width=OPERAND_WIDTH):
    """``(lo, hi)`` of ``a*b`` over every pair of operands (signed 4-bit: -56..64)."""
    lo, hi = operand_range(signed, width)
    ends = (lo * lo, lo * hi, hi * hi)
    return min(ends), max(ends)


def max_safe_k(signed, acc_width, width=OPERAND_WIDTH, *, numerics=None):
    """Largest K whose worst-case sum of K products fits the ``acc_width``-bit
    accumulator (two's complement if ``signed``, else unsigned): the driver splits a
    longer K into passes of at most this many products. Always >= 1 for
    ``acc_width >= 2*width``. ``numerics="fp4"``: the products are 4*a*b of E2M1 values
    (+-144, signed)."""
    if numerics == "fp4":
        signed, (lo, hi) = True, (-FP4_PRODUCT_MAX, FP4_PRODUCT_MAX)
    else:
        lo, hi = product_range(signed, width)
    if signed:
        top, bottom = (1 << (acc_width - 1)) - 1, -(1 << (acc_width - 1))
        k = top // hi
        if lo < 0:
            k = min(k, bottom // lo)
    else:
        k = ((1 << acc_width) - 1) // hi
    return max(1, k)


def _allowed(values):
    return ", ".join(str(v) for v in values)


@dataclass(frozen=True)
class MacConfig:
    """Every option of a MAC; validated on construction.

    ``multiplier="behavioral"`` selects :class:`BehavioralMAC` (``*`` and ``+``),
    for which ``adder`` and ``fused`` have no meaning.

    ``numerics`` (:data:`hdl.numerics.NUMERICS`) names the operand format; left out, it
    follows ``signed`` (int4 or uint4), and ``signed`` follows it (fp4 is signed).
    ``replace(signed=...)`` and ``replace(numerics=...)`` keep the two in step.
    ``multiplier`` left out: :data:`DEFAULT_MULTIPLIER` of the format.
    """
    signed: bool = True
    acc_width: int = 16
    multiplier: str | None = None        # None: DEFAULT_MULTIPLIER[numerics]
    adder: str = "ripple"
    fused: bool = True
    pipeline: int = 0
    width: int = OPERAND_WIDTH
    numerics: str | None = None

    def __post_init__(self):
        self._check_numerics()
        if self.multiplier is None:
            object.__setattr__(self, "multiplier", DEFAULT_MULTIPLIER[self.numerics])
        if self.multiplier in FP4_MULTIPLIERS and self.numerics != "fp4":
            raise ConfigError("multiplier", f"{self.multiplier!r} is an FP4 architecture; "
                              f"for {self.numerics} use one of "
                              f"{_allowed(MULTIPLIER_CHOICES)}")
        if self.multiplier not in ALL_MULTIPLIERS:
            raise ConfigError("multiplier", f"unknown architecture {self.multiplier!r}; "
                              f"allowed: {_allowed(ALL_MULTIPLIERS)}")
        if self.adder not in ADDER_CHOICES:
            raise ConfigError("adder", f"unknown architecture {self.adder!r}; "
                              f"allowed: {_allowed(ADDER_CHOICES)}")
        if not isinstance(self.acc_width, int) or self.acc_width not in ACC_WIDTHS:
            raise ConfigError("acc_width", f"{self.acc_width} is out of range; "
                              f"allowed: {ACC_WIDTHS.start}..{ACC_WIDTHS.stop - 1}")
        if not isinstance(self.pipeline, int) or self.pipeline not in PIPELINES:
            raise ConfigError("pipeline", f"{self.pipeline} is out of range; "
                              f"allowed: {_allowed(PIPELINES)}")
        if not 2 <= self.width <= 16 or self.acc_width < 2 * self.width:
            raise ConfigError("width", f"operand width {self.width} needs 2..16 and "
                              f"an accumulator of at least {2 * self.width} bits")
        if self.numerics == "fp4" and self.acc_width < FP4_MIN_ACC_WIDTH:
            raise ConfigError("acc_width", f"{self.acc_width} bits cannot hold one FP4 "
                              f"product (4*a*b reaches +-{FP4_PRODUCT_MAX} quarters); "
                              f"allowed with fp4: {FP4_MIN_ACC_WIDTH}..{ACC_WIDTHS.stop - 1}")
        if self.numerics == "fp4" and self.width != OPERAND_WIDTH:
            raise ConfigError("width", f"FP4 codes are {OPERAND_WIDTH} bits; allowed: "
                              f"{OPERAND_WIDTH}")

    def _check_numerics(self):
        if self.numerics is None:
            object.__setattr__(self, "numerics", "int4" if self.signed else "uint4")
        elif self.numerics not in NUMERICS:
            raise ConfigError("numerics", f"unknown number format {self.numerics!r}; "
                              f"allowed: {_allowed(NUMERICS)}")
        elif bool(self.signed) != (self.numerics != "uint4"):
            raise ConfigError("numerics", f"{self.numerics} operands are "
                              f"{'unsigned' if self.numerics == 'uint4' else 'signed'}, "
                              f"not signed={bool(self.signed)}")

    @property
    def behavioral(self):
        return self.multiplier == "behavioral"

    @property
    def latency(self):
        """Edges from the inputs to ``acc``: the product of inputs sampled at edge t is
        in ``acc`` after edge t + latency (0: the same edge)."""
        return self.pipeline

    @property
    def operand_range(self):
        """``(lo, hi)``, inclusive, of ``a`` and ``b`` (:func:`operand_range`; FP4: the
        codes 0..15)."""
        if self.numerics == "fp4":
            return operand_range(False, self.width)
        return operand_range(self.signed, self.width)

    @property
    def max_safe_k(self):
        """:func:`max_safe_k` of this MAC: products per pass that cannot overflow."""
        return max_safe_k(self.signed, self.acc_width, self.width, numerics=self.numerics)

    @property
    def slug(self):
        """A short, file-name-safe, unique name for this configuration."""
        sign = {"int4": "s", "uint4": "u", "fp4": "f"}[self.numerics]
        if self.behavioral:
            return f"mac_{sign}{self.acc_width}_behavioral_p{self.pipeline}"
        fused = "fused" if self.fused else "unfused"
        return (f"mac_{sign}{self.acc_width}_{self.multiplier}_{self.adder}_"
                f"{fused}_p{self.pipeline}")

    def replace(self, **changes):
        if "signed" in changes and "numerics" not in changes:
            changes["numerics"] = None                      # follows the new signed
        elif "numerics" in changes and "signed" not in changes:
            changes["signed"] = changes["numerics"] != "uint4"
        return replace(self, **changes)

    def build(self):
        return BehavioralMAC(self) if self.behavioral else MAC(self)

    def verilog(self, name="mac", *, cache=True):
        """Deterministic Verilog of :meth:`build` with top module ``name`` (remembered in
        ``cache``, see :func:`hdl.cache.cached_verilog`)."""
        from .cache import cached_verilog
        return cached_verilog(f"mac {self!r}", self.build, name=name, cache=cache)


def delay_chain(m, sig, stages, name, *, reset_less=False):
    """``[sig, sig delayed by 1, ..., by stages]``: ``stages`` registers ``{name}_d1``
    .. ``{name}_d{stages}`` in ``m``'s sync domain (cleared by rst unless
    ``reset_less``); a valid bit or tag kept in step with the MAC's pipeline."""
    chain = [sig]
    for i in range(stages):
        reg = Signal(len(sig), name=f"{name}_d{i + 1}", reset_less=reset_less)
        m.d.sync += reg.eq(chain[-1])
        chain.append(reg)
    return chain


class _MacBase(wiring.Component):
    def __init__(self, config):
        self.config = config
        super().__init__({
            "a": In(config.width),
            "b": In(config.width),
            "acc": Out(config.acc_width),
        })

    @property
    def latency(self):
        """Clock edges from an (a, b) pair at the inputs to its product in ``acc``."""
        return self.config.pipeline


class _Pipeline:
    """The pipeline registers of one MAC, all cleared by ``rst``.

    A constant bit cannot just bypass a register: after ``rst`` the registers hold
    zeros, which must mean "product 0", so any constant 1 that belongs to the same
    product must vanish too. Constants crossing a cut therefore become the stage's
    ``valid`` bit (0 after ``rst``, 1 once a real product has entered the stage).
    """

    def __init__(self, m):
        self.m = m
        self.valid = 1        # the combinational input side is always valid
        self.stages = 0

    def cut(self):
        """Start a new register stage; the bits registered next belong to it."""
        self.stages += 1
        valid = Signal(name=f"pipe{self.stages}_valid")
        self.m.d.sync += valid.eq(self.valid)
        self.valid = valid

    def register(self, bits, name):
        """Register the live bits; constant 1s become this stage's valid bit."""
        live = [b for b in bits if not is_const(b)]
        out = [self.valid if b == 1 else 0 for b in bits if is_const(b)]
        if live:
            reg = Signal(len(live), name=name)
            self.m.d.sync += reg.eq(Cat(*live))
            regs = iter(reg)
        consts = iter(out)
        return [next(consts) if is_const(b) else next(regs) for b in bits]

    def register_columns(self, columns, name):
        flat = self.register([b for col in columns for b in col], name)
        out, i = [], 0
        for col in columns:
            out.append([b for b in flat[i:i + len(col)] if not is_const(b)])
            i += len(col)
        return out


def _split_point(columns, constant, n, W):
    """Where the fused sum can be split into a reduced low part and an up/down counter
    on the addend's high bits: column L = 2n if nothing but constants lives at or above
    it and the constant's high part is 0 or all ones; else None."""
    L = 2 * n
    if W - L < 2 or any(not is_const(bit) for col in columns[L:] for bit in col):
        return None
    if any(bit for col in columns[L:] for bit in col):
        return None                                   # constant bits inside columns
    K_hi = (constant >> L) % (1 << (W - L))
    if K_hi not in (0, (1 << (W - L)) - 1):
        return None
    return L


def _fused_split(net, columns, constant, addend, one, L, reduce, add):
    """``addend + product`` as: low = addend[:L] + product columns + constant[:L],
    reduced and added over L+2 columns, whose top two bits c = c0 + 2 c1 are the carry
    into column L; then ``addend[L:] + c + K_hi`` where K_hi is 0 (delta = c in {0, 1})
    or -1 (delta = c - 1 in {-1, 0, 1}): an up/down chain, one XOR per bit.

    Why c <= 2: the partial products plus the low constant equal a*b (+ 2**L when
    K_hi = -1) exactly, so low < 2**L + 2**(2n-2) + 2**L < 3 * 2**L (signed), and
    low < 2**L + (2**n - 1)**2 < 2**(L+1) (unsigned). ``one`` is the valid bit that
    carries the constant (1 without a pipeline); when it is 0 the product is 0, so
    c = 0 and delta must be 0.
    """
    W = len(addend)
    K_lo, K_hi = constant % (1 << L), (constant >> L) % (1 << (W - L))
    low = [list(col) for col in columns[:L]] + [[], []]
    for w in range(L):
        low[w].append(addend[w])
    rows = reduce(net, add_constant(low, K_lo, one=one))
    total, _ = add(net, *rows)
    c0, c1 = total[L], total[L + 1]
    if K_hi:                                          # delta = c - one
        up = c1
        t = and_(one, or_(c1, not_(c0)))
    else:                                             # delta = c (c1 is always 0)
        up = 1
        t = c0
    out = list(total[:L])
    for i in range(L, W):
        x = addend[i]
        t = net.wire(t, f"hi{i}_t") if not is_const(t) else t
        out.append(net.wire(xor_(x, t), f"hi{i}_s") if not is_const(t) else xor_(x, t))
        if i + 1 < W:
            t = and_(t, not_(xor_(x, up)))
    return out


def multiply_add(m, net, a, b, addend, cfg, *, partial_products=None):
    """``addend + a*b mod 2**len(addend)`` from gates, with ``cfg.pipeline`` register
    stages on the product path only: the addend joins combinationally in the last stage,
    so a self-accumulating MAC (addend = acc) and a partial-sum chain (addend = psum
    from a neighbour) share this datapath. Returns the sum bits, LSB first.

    FP4 (``cfg.numerics``): ``addend + 4*a*b``, by :func:`hdl.fp4.shift_multiply_add`
    (``multiplier="shift"``), or with a and b decoded to the signed 5-bit operands of
    :func:`hdl.fp4.signed_magnitude_operands` and this integer datapath.

    ``partial_products``: a generator ``(a, b, signed=, width=) -> (columns, constant)``
    used instead of the configured one (the fused digit PE, :mod:`hdl.fusion`)."""
    if cfg.numerics == "fp4" and cfg.multiplier == "shift":
        return fp4.shift_multiply_add(net, a, b, addend, cfg, _Pipeline(m))
    extra = ()
    if cfg.numerics == "fp4":
        a, b, extra = fp4.signed_magnitude_operands(net, a, b)
    pp_gen, reducer_name = MULTIPLIERS[cfg.multiplier]
    pp, reduce = PARTIAL_PRODUCTS[pp_gen], REDUCERS[reducer_name]
    pp = partial_products or pp
    add = ADDERS[cfg.adder]
    P, W, n = cfg.pipeline, len(addend), len(a)

    pipe = _Pipeline(m)
    if cfg.fused:
        columns, constant = pp(a, b, signed=cfg.signed, width=W)
        for w, bit in extra:
            columns[w].append(bit)
        if P == 2:
            pipe.cut()
            columns = pipe.register_columns(columns, "pipe_pp")
        if P >= 1:
            # Reduce the product alone to two carry-save rows and register them;
            # the constant joins after the cut, carried by the valid bit.
            rows = reduce(net, columns)
            pipe.cut()
            rows = [pipe.register(row, f"pipe_row{i}") for i, row in enumerate(rows)]
            columns = [[bit for bit in col if not is_const(bit)] for col in zip(*rows)]
        split = _split_point(columns, constant, n, W)
        if split is not None:
            return _fused_split(net, columns, constant, addend, pipe.valid, split,
                                reduce, add)
        for w in range(W):
            columns[w].append(addend[w])
        rows = reduce(net, add_constant(columns, constant, one=pipe.valid))
    else:
        columns, constant = pp(a, b, signed=cfg.signed, width=2 * n)
        for w, bit in extra:
            columns[w].append(bit)
        rows = reduce(net, add_constant(columns, constant))
        if P == 2:
            pipe.cut()
            rows = [pipe.register(row, f"pipe_row{i}") for i, row in enumerate(rows)]
        product, _ = add(net, *rows)
        if P >= 1:
            pipe.cut()
            product = pipe.register(product, "pipe_product")
        fill = product[-1] if cfg.signed else 0           # sign or zero extension
        rows = [list(addend), (product + [fill] * (W - 2 * n))[:W]]
    total, _carry = add(net, *rows)
    return total


def behavioral_multiply_add(m, a, b, addend, cfg):
    """The same function and latency as :func:`multiply_add`, written with ``*``/``+``."""
    if cfg.numerics == "fp4":
        return fp4.behavioral_fp4_multiply_add(m, a, b, addend, cfg)
    if cfg.signed:
        a, b = a.as_signed(), b.as_signed()
    product = a * b
    for stage in range(cfg.pipeline):
        reg = Signal(product.shape(), name=f"pipe_product{stage}")
        m.d.sync += reg.eq(product)
        product = reg
    return addend + product


class MAC(_MacBase):
    """Gate-level MAC: no ``*`` and no multi-bit ``+``; every sum bit comes from
    :mod:`hdl.gates`. Widths: a, b are ``config.width`` bits, acc is
    ``config.acc_width`` bits. Latency: ``config.pipeline`` cycles."""

    def elaborate(self, platform):
        m = Module()
        total = multiply_add(m, Netlist(m), list(self.a), list(self.b), list(self.acc),
                             self.config)
        m.d.sync += self.acc.eq(Cat(*total))
        return m


class BehavioralMAC(_MacBase):
    """Reference MAC written with ``*`` and ``+``: what a synthesizer gets from RTL.
    Same ports, reset and latency as :class:`MAC` (the product is registered P times)."""

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.acc.eq(behavioral_multiply_add(m, self.a, self.b, self.acc,
                                                        self.config))
        return m
