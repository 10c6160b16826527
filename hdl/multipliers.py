"""Multipliers from gates: partial-product generation, reducer trees, final adder.

A multiplier here is three independent pieces, so each can be swapped and compared:

1. **partial products** -> a bit matrix in *columns* (``columns[w]`` holds the bits of
   weight ``2**w``) plus an integer constant to add (the sign corrections);
2. a **reducer** compresses the columns to at most two bits each (two rows) with full
   and half adders: ``array_reduce``, ``wallace_reduce``, ``dadda_reduce``;
3. a **carry-propagate adder** from :mod:`hdl.adders` sums the two rows.

All results are modulo ``2**width`` of the chosen result width, so a multiplier and
an accumulator can share one reducer (the fused MAC in :mod:`hdl.mac`).
"""
from .gates import and_, not_, xor_, or_, half_adder, full_adder, is_const
from .adders import ADDERS

__all__ = ["baugh_wooley_partial_products", "booth_radix4_partial_products",
           "add_constant", "array_reduce", "wallace_reduce", "dadda_reduce",
           "REDUCERS", "PARTIAL_PRODUCTS", "multiply", "MULTIPLIERS"]


def _empty(width):
    return [[] for _ in range(width)]


def add_constant(columns, value, *, one=1):
    """Add the integer ``value`` (mod 2**len(columns)) as constant bits.

    ``one`` is the bit used for a 1: the constant ``1`` normally, or a signal that is
    1 whenever the constant applies (a pipeline stage's valid bit, see :mod:`hdl.mac`).
    """
    width = len(columns)
    value %= 1 << width
    for w in range(width):
        if (value >> w) & 1:
            columns[w].append(one)
    return columns


def baugh_wooley_partial_products(a, b, *, signed, width):
    """AND-array partial products; Baugh-Wooley sign handling when ``signed``.

    For n-bit two's complement ``a = -a_{n-1} 2^{n-1} + sum_{i<n-1} a_i 2^i`` (same for b):

        a*b = sum_{i,j<n-1} a_i b_j 2^{i+j} + a_{n-1} b_{n-1} 2^{2n-2}
              - sum_{j<n-1} a_{n-1} b_j 2^{n-1+j} - sum_{i<n-1} a_i b_{n-1} 2^{i+n-1}

    and each negative term ``-x 2^k = (NOT x) 2^k - 2^k``. So the mixed terms become
    NAND gates and the ``-2^k`` terms sum to one constant,
    ``-2 * (2^{2n-2} - 2^{n-1})``, added modulo ``2**width`` (which also performs the
    sign extension to ``width`` bits for free).

    Returns ``(columns, constant)``.
    """
    n = len(a)
    if len(b) != n:
        raise ValueError(f"operands must have equal widths, got {len(a)} and {len(b)}")
    columns = _empty(width)
    constant = 0
    for i in range(n):
        for j in range(n):
            if i + j >= width:
                continue
            bit = and_(a[i], b[j])
            if signed and (i == n - 1) != (j == n - 1):
                bit = not_(bit)
                constant -= 1 << (i + j)
            columns[i + j].append(bit)
    return columns, constant % (1 << width)


def booth_radix4_partial_products(a, b, *, signed, width):
    """Radix-4 (modified) Booth recoding of ``b``: about n/2 partial products.

    ``b = sum_k d_k 4^k`` with digits ``d_k = -2 b_{2k+1} + b_{2k} + b_{2k-1}`` in
    {-2..2} (``b_{-1} = 0``; unsigned ``b`` gets a zero sign bit appended first).
    Each row is ``d_k * a`` (select a or 2a, then conditionally invert), and an
    inversion's +1 becomes a constant-free "neg" bit in the row's LSB column.
    Row k is sign-extended to ``width`` by the usual trick: its sign bit ``s``
    contributes ``-s 2^m = (NOT s) 2^m - 2^m``; the ``-2^m`` terms join the constant.

    Returns ``(columns, constant)``.
    """
    n = len(a)
    if len(b) != n:
        raise ValueError(f"operands must have equal widths, got {len(a)} and {len(b)}")
    # Rows are d*a with |d| <= 2: a signed a needs one more bit (n+1), an unsigned
    # a two more (2a < 2**(n+1) plus a sign bit).
    a_ext = list(a) + ([a[-1]] if signed else [0, 0])
    m = len(a_ext)
    b_ext = list(b) + ([] if signed else [0])
    if len(b_ext) % 2:
        b_ext.append(b_ext[-1])                           # sign-extend to even width
    columns = _empty(width)
    constant = 0
    for k in range(len(b_ext) // 2):
        lo = b_ext[2 * k - 1] if k else 0
        mid, hi = b_ext[2 * k], b_ext[2 * k + 1]
        one = xor_(mid, lo)                                # |d| == 1
        two = and_(xor_(hi, mid), not_(one))               # |d| == 2
        neg = hi                                           # d < 0 (or d = -0: harmless)
        # Row bits r_j = ((one & a_j) | (two & a_{j-1})) ^ neg, j = 0..m-1
        shift = 2 * k
        for j in range(m):
            w = shift + j
            if w >= width:
                break
            sel = or_(and_(one, a_ext[j]), and_(two, a_ext[j - 1] if j else 0))
            bit = xor_(sel, neg)
            if j == m - 1:                                 # the row's sign bit
                bit = not_(bit)
                constant -= 1 << w
            columns[w].append(bit)
        if shift < width:
            columns[shift].append(neg)                     # +1 completes the negation
    return columns, constant % (1 << width)


def _rows_from_columns(columns):
    height = max((len(c) for c in columns), default=0)
    return [[col[k] if k < len(col) else 0 for col in columns] for k in range(height)]


def array_reduce(net, columns):
    """Carry-save array: add the rows one after another (depth linear in rows)."""
    width = len(columns)
    rows = _rows_from_columns(columns)
    if len(rows) <= 2:
        return rows + [[0] * width] * (2 - len(rows))
    s, c = rows[0], rows[1]
    for row in rows[2:]:
        s_new, c_new = [], [0]
        for w in range(width):
            bit_s, bit_c = full_adder(net, s[w], c[w], row[w])
            s_new.append(bit_s)
            c_new.append(bit_c)
        s, c = s_new, c_new[:width]
    return [s, c]


def _compress_stage(net, columns, limit_of):
    """One reducer stage: in each column, use FAs/HAs until its height (including
    carries arriving from the column below in this stage) is at most ``limit_of(w)``."""
    width = len(columns)
    out = _empty(width)
    carries_in = []
    for w in range(width):
        bits = list(columns[w])
        # Constants ride along for free: fold them into a single constant bit first.
        consts = [b for b in bits if is_const(b)]
        bits = [b for b in bits if not is_const(b)]
        const_sum = sum(consts)
        carry_const, const_sum = const_sum >> 1, const_sum & 1
        if const_sum:
            bits.append(1)
        carries_out = [1] * carry_const
        limit = limit_of(w)
        while len(bits) + len(carries_in) > limit and len(bits) >= 2:
            excess = len(bits) + len(carries_in) - limit
            if excess >= 2 and len(bits) >= 3:
                s, c = full_adder(net, bits.pop(0), bits.pop(0), bits.pop(0))
            else:
                s, c = half_adder(net, bits.pop(0), bits.pop(0))
            out[w].append(s)
            carries_out.append(c)
            limit -= 1                               # the sum bit occupies a place
        out[w].extend(bits)
        out[w].extend(carries_in)
        carries_in = carries_out
    return out                                       # carries past the MSB wrap away


def dadda_reduce(net, columns):
    """Dadda: each stage reduces to the next height in 2, 3, 4, 6, 9, 13, ...,
    with as few adders as possible (fewest cells of the tree reducers)."""
    heights = [2]
    while heights[-1] < max((len(c) for c in columns), default=0):
        heights.append(heights[-1] * 3 // 2)
    for target in reversed(heights[:-1]):
        columns = _compress_stage(net, columns, lambda w, t=target: t)
    return _two_rows(columns)


def wallace_reduce(net, columns):
    """Wallace: each stage compresses every group of three bits (and leftover pairs)
    in every column, as early as possible (fewest stages, more cells than Dadda)."""
    while max((len(c) for c in columns), default=0) > 2:
        width = len(columns)
        out = _empty(width + 1)
        for w, col in enumerate(columns):
            bits = list(col)
            while len(bits) >= 3:
                s, c = full_adder(net, bits.pop(0), bits.pop(0), bits.pop(0))
                out[w].append(s)
                out[w + 1].append(c)
            if len(bits) == 2 and len(col) > 3:
                s, c = half_adder(net, bits.pop(0), bits.pop(0))
                out[w].append(s)
                out[w + 1].append(c)
            out[w].extend(bits)
        columns = out[:width]
    return _two_rows(columns)


def _two_rows(columns):
    rows = _rows_from_columns(columns)
    while len(rows) < 2:
        rows.append([0] * len(columns))
    if len(rows) > 2:
        raise AssertionError("reducer left more than two rows")
    return rows


REDUCERS = {"array": array_reduce, "wallace": wallace_reduce, "dadda": dadda_reduce}
PARTIAL_PRODUCTS = {"baugh-wooley": baugh_wooley_partial_products,
                    "booth": booth_radix4_partial_products}

#: Multiplier architectures by CLI name: (partial-product generator, reducer).
MULTIPLIERS = {
    "array": ("baugh-wooley", "array"),
    "wallace": ("baugh-wooley", "wallace"),
    "dadda": ("baugh-wooley", "dadda"),
    "booth": ("booth", "dadda"),
}


def multiply(net, a, b, *, signed, width=None, multiplier="dadda", adder="ripple"):
    """``a * b mod 2**width`` from gates (``width`` defaults to ``2 * len(a)``, the
    full product). Returns the product bits, least significant first."""
    width = 2 * len(a) if width is None else width
    pp, reducer = MULTIPLIERS[multiplier]
    columns, constant = PARTIAL_PRODUCTS[pp](a, b, signed=signed, width=width)
    rows = REDUCERS[reducer](net, add_constant(columns, constant))
    total, _carry = ADDERS[adder](net, *rows)
    return total


# -- Stand-alone multiplier components (for equivalence checks and area runs) ------------
from amaranth.hdl import Module, Cat                                  # noqa: E402
from amaranth.lib import wiring                                       # noqa: E402
from amaranth.lib.wiring import In, Out                               # noqa: E402

from .gates import Netlist                                            # noqa: E402

__all__ += ["Multiplier", "BehavioralMultiplier"]


class Multiplier(wiring.Component):
    """Combinational gate-level multiplier: ``p = a * b`` (full ``2 * width``-bit
    product; operands read as two's complement when ``signed``), built by
    :func:`multiply` with the chosen ``multiplier`` and final ``adder``."""

    def __init__(self, *, width=4, signed=True, multiplier="dadda", adder="ripple"):
        if multiplier not in MULTIPLIERS:
            raise ValueError(f"unknown multiplier {multiplier!r}; "
                             f"allowed: {', '.join(MULTIPLIERS)}")
        if adder not in ADDERS:
            raise ValueError(f"unknown adder {adder!r}; allowed: {', '.join(ADDERS)}")
        self.width, self.signed = width, signed
        self.multiplier, self.adder = multiplier, adder
        super().__init__({"a": In(width), "b": In(width), "p": Out(2 * width)})

    def elaborate(self, platform):
        m = Module()
        bits = multiply(Netlist(m), list(self.a), list(self.b), signed=self.signed,
                        multiplier=self.multiplier, adder=self.adder)
        m.d.comb += self.p.eq(Cat(*bits))
        return m


class BehavioralMultiplier(wiring.Component):
    """Reference multiplier written with ``*``; same ports as :class:`Multiplier`."""

    def __init__(self, *, width=4, signed=True):
        self.width, self.signed = width, signed
        super().__init__({"a": In(width), "b": In(width), "p": Out(2 * width)})

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b
        if self.signed:
            a, b = a.as_signed(), b.as_signed()
        m.d.comb += self.p.eq(a * b)
        return m
