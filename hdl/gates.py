"""Gate layer: 1-bit logic and the adder cells everything else is built from.

A *bit* here is either an Amaranth 1-bit value or the Python constant ``0``/``1``.
Constant bits are folded in Python (``x & 1 -> x``, ``x ^ 1 -> ~x`` ...), so the
arithmetic layers can add constant correction terms (Baugh-Wooley, sign
extension) without leaving constant gates for the synthesizer to clean up.

Composite cells (half adder, full adder, prefix cell) drive *named* wires through
a :class:`Netlist`, so the emitted Verilog reads as a gate-level netlist
(``fa12_s``, ``fa12_c``, ...) instead of anonymous temporaries.
"""
from amaranth.hdl import Signal, Value

__all__ = ["Netlist", "and_", "or_", "xor_", "not_", "half_adder", "full_adder",
           "is_const"]


def is_const(bit):
    return isinstance(bit, int)


def _check(bit):
    if is_const(bit):
        if bit not in (0, 1):
            raise ValueError(f"constant bit must be 0 or 1, not {bit!r}")
    elif Value.cast(bit).shape().width != 1:
        raise ValueError(f"expected a 1-bit value, got {bit!r}")
    return bit


def not_(a):
    _check(a)
    return 1 - a if is_const(a) else ~a


def and_(a, b):
    _check(a), _check(b)
    if is_const(a):
        a, b = b, a
    if is_const(b):
        return b & a if is_const(a) else (a if b else 0)
    return a & b


def or_(a, b):
    _check(a), _check(b)
    if is_const(a):
        a, b = b, a
    if is_const(b):
        return b | a if is_const(a) else (1 if b else a)
    return a | b


def xor_(a, b):
    _check(a), _check(b)
    if is_const(a):
        a, b = b, a
    if is_const(b):
        return b ^ a if is_const(a) else (not_(a) if b else a)
    return a ^ b


class Netlist:
    """Names the wires of a gate-level datapath inside one Amaranth ``Module``.

    ``wire(expr, "fa")`` drives a fresh 1-bit signal from ``expr`` combinationally
    and returns it; constants pass through untouched. Names are numbered per kind in
    creation order, so the same generator call always yields the same netlist.
    """

    def __init__(self, m, *, prefix=""):
        self.m = m
        self.prefix = prefix
        self._counts = {}

    def index(self, kind):
        n = self._counts.get(kind, 0)
        self._counts[kind] = n + 1
        return n

    def wire(self, expr, name):
        if is_const(expr):
            return expr
        sig = Signal(name=f"{self.prefix}{name}")
        self.m.d.comb += sig.eq(expr)
        return sig

    def count(self, kind):
        """How many cells of ``kind`` were built (for reports and tests)."""
        return self._counts.get(kind, 0)


def half_adder(net, a, b):
    """``a + b = 2*c + s``: s = a XOR b, c = a AND b."""
    if is_const(a) or is_const(b):
        return xor_(a, b), and_(a, b)
    i = net.index("ha")
    return net.wire(xor_(a, b), f"ha{i}_s"), net.wire(and_(a, b), f"ha{i}_c")


def full_adder(net, a, b, c):
    """``a + b + c = 2*cout + s``: s = a XOR b XOR c, cout = ab OR c(a XOR b)."""
    consts = [x for x in (a, b, c) if is_const(x)]
    if consts:
        # At least one constant input: a full adder collapses to a half adder
        # (input 0) or to s = NOT(x XOR y), cout = x OR y (input 1).
        rest = [x for x in (a, b, c) if not is_const(x)]
        total = sum(consts)
        if not rest:
            return total & 1, total >> 1
        if len(rest) == 1:
            x, = rest
            # x + total with total in 0..2
            if total == 0:
                return x, 0
            if total == 1:
                return half_adder(net, x, 1)
            return x, 1
        x, y = rest
        if total == 0:
            return half_adder(net, x, y)
        i = net.index("fa")
        return (net.wire(not_(xor_(x, y)), f"fa{i}_s"),
                net.wire(or_(x, y), f"fa{i}_c"))
    i = net.index("fa")
    p = net.wire(xor_(a, b), f"fa{i}_p")
    s = net.wire(xor_(p, c), f"fa{i}_s")
    cout = net.wire(or_(and_(a, b), and_(c, p)), f"fa{i}_c")
    return s, cout
