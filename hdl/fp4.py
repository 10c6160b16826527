"""FP4 (E2M1) multiply-accumulate pieces from gates: ``addend + 4*a*b``.

Code bits (LSB first in the lists here): ``[0]`` mantissa M, ``[1]`` E0, ``[2]`` E1,
``[3]`` sign. Twice the magnitude of a code is an integer, ``2|v| = sig << sh`` with the
significand ``sig = 2h + M`` (hidden bit ``h = E != 0``) and ``sh = max(E - 1, 0)``::

    E   2|v|            magnitude bits m3 m2 m1 m0
    0   M               0  0  0  M
    1   2 + M           0  0  1  M
    2   (2 + M) << 1    0  1  M  0
    3   (2 + M) << 2    1  M  0  0

so ``4*a*b = (-1)**(sa ^ sb) * (2|a|) * (2|b|)``, at most 12 x 12 = 144. Two
architectures build it (``MacConfig.multiplier``, see :mod:`hdl.mac`):

* **decode** (``array``, ``wallace``, ``dadda``, ``booth``): decode each code to its
  4-bit magnitude, then the project's integer multiplier on 5-bit operands
  (:func:`signed_magnitude_operands`), fused into the accumulation like the int4 MAC.
* **shift** (``shift``): multiply the 2-bit significands (a 2x2 product, 0..9), shift it
  left by ``S = sh_a + sh_b`` (0..4; S one-hot from the two one-hot shifts, then one
  5-way AND-OR shifter: fewer transistors than two 3-way stages), make it ones'
  complement with the sign, and add it to the accumulator with the sign as the carry-in
  (:func:`shift_multiply_add`). Above bit 7 the sum only changes the accumulator by
  ``carry - sign`` in {-1, 0, 1}: an up/down chain, one XOR per bit.
"""
from amaranth.hdl import Cat, Mux, Signal

from .gates import and_, or_, xor_, not_, is_const
from .adders import ADDERS

__all__ = ["decode_magnitude", "signed_magnitude_operands", "shift_multiply_add",
           "behavioral_fp4_multiply_add", "LOW_BITS"]

#: Bits of the fused low part: |4ab| <= 144 < 2**8.
LOW_BITS = 8


def _fields(code):
    if len(code) != 4:
        raise ValueError(f"an FP4 code has 4 bits, got {len(code)}")
    m, e0, e1, s = code
    return m, e0, e1, s


def decode_magnitude(net, code):
    """``(sign, [m0, m1, m2, m3])``: the sign bit and ``2|v|`` of an E2M1 code."""
    m, e0, e1, s = _fields(code)
    ne1, ne0 = not_(e1), not_(e0)
    m0 = net.wire(and_(m, ne1), "dec_m0")
    m1 = net.wire(or_(and_(ne1, e0), and_(and_(e1, ne0), m)), "dec_m1")
    m2 = net.wire(and_(e1, or_(ne0, m)), "dec_m2")
    m3 = net.wire(and_(e1, e0), "dec_m3")
    return s, [m0, m1, m2, m3]


def signed_magnitude_operands(net, a, b):
    """Operands for a signed 5-bit integer multiplier whose product, plus the returned
    extra bits, is ``4*a*b``: ``a' = (|a| XOR s, s)`` (two's complement: ``|a|`` when
    s = 0, ``-|a| - 1`` when s = 1, with ``s = sa XOR sb``), ``b' = (|b|, 0)``, and
    ``a'*b' + s*|b| = (-1)**s |a| |b|``. Returns ``(a', b', extra)``, ``extra`` a list of
    ``(column, bit)``: the ``s*|b|`` correction row."""
    sa, ma = decode_magnitude(net, a)
    sb, mb = decode_magnitude(net, b)
    s = net.wire(xor_(sa, sb), "dec_sign")
    a5 = [net.wire(xor_(bit, s), f"dec_a{i}") for i, bit in enumerate(ma)] + [s]
    b5 = list(mb) + [0]
    extra = [(j, and_(s, bit)) for j, bit in enumerate(mb)]
    return a5, b5, extra


def _shift(net, bits, onehot, name):
    """``bits << k`` for the one k whose ``onehot[k]`` is 1 (len(bits) + 2 outputs)."""
    out = []
    for j in range(len(bits) + len(onehot) - 1):
        terms = [and_(sel, bits[j - k]) for k, sel in enumerate(onehot)
                 if 0 <= j - k < len(bits)]
        bit = terms[0]
        for t in terms[1:]:
            bit = or_(bit, t)
        out.append(net.wire(bit, f"{name}{j}"))
    return out


def _shift_select(e0, e1):
    """One-hot ``sh = max(E - 1, 0)``: (E <= 1, E == 2, E == 3)."""
    return [not_(e1), and_(e1, not_(e0)), and_(e1, e0)]


def _total_shift(net, ea0, ea1, eb0, eb1):
    """One-hot ``S = sh_a + sh_b`` (0..4) from the two one-hot shifts."""
    za, zb = _shift_select(ea0, ea1), _shift_select(eb0, eb1)
    out = []
    for k in range(len(za) + len(zb) - 1):
        terms = [and_(za[i], zb[k - i]) for i in range(len(za)) if 0 <= k - i < len(zb)]
        bit = terms[0]
        for t in terms[1:]:
            bit = or_(bit, t)
        out.append(net.wire(bit, f"shift{k}"))
    return out


def _up_down(net, addend, t, up, start):
    """``addend[start:] + delta`` where ``t`` = (delta != 0) and ``up`` = (delta > 0):
    each bit flips while the carry (or borrow) ``t`` runs."""
    out = []
    for i in range(start, len(addend)):
        x = addend[i]
        t = net.wire(t, f"hi{i}_t") if not is_const(t) else t
        out.append(net.wire(xor_(x, t), f"hi{i}_s") if not is_const(t) else xor_(x, t))
        if i + 1 < len(addend):
            t = and_(t, not_(xor_(x, up)))
    return out


def shift_multiply_add(net, a, b, addend, cfg, pipe):
    """``addend + 4*a*b mod 2**len(addend)`` by mantissa product and shift.

    ``pipe`` is the MAC's pipeline (:class:`hdl.mac._Pipeline`: ``cut()`` and
    ``register(bits, name)``): with P = 2 the significand product, exponents and sign are
    registered, with P >= 1 the shifted ones'-complement row and the sign. ``cfg.fused``:
    the row joins the accumulator in one carry-propagate adder (sign as carry-in) and an
    up/down chain above bit 7; unfused, the 9-bit two's complement product is formed
    first (an incrementer) and added over all W bits."""
    add = ADDERS[cfg.adder]
    P, W = cfg.pipeline, len(addend)
    ma, ea0, ea1, sa = _fields(a)
    mb, eb0, eb1, sb = _fields(b)
    ha = net.wire(or_(ea0, ea1), "sig_ha")
    hb = net.wire(or_(eb0, eb1), "sig_hb")
    q0 = and_(ma, mb)
    hh = and_(ha, hb)
    q = [net.wire(q0, "sig_q0"), net.wire(xor_(and_(ha, mb), and_(ma, hb)), "sig_q1"),
         net.wire(and_(hh, not_(q0)), "sig_q2"), net.wire(and_(hh, q0), "sig_q3")]
    s = net.wire(xor_(sa, sb), "sign")
    if P == 2:
        pipe.cut()
        q, (ea0, ea1, eb0, eb1, s) = (pipe.register(q, "pipe_sig"),
                                      pipe.register([ea0, ea1, eb0, eb1, s], "pipe_exp"))
    row = _shift(net, q, _total_shift(net, ea0, ea1, eb0, eb1), "sh")  # 8 bits: q << S
    row = [net.wire(xor_(bit, s), f"row{j}") for j, bit in enumerate(row)]
    if not cfg.fused:                                # 9-bit two's complement product
        product, _ = add(net, row + [s], [0] * (LOW_BITS + 1), s)
        if P >= 1:
            pipe.cut()
            product = pipe.register(product, "pipe_product")
        extended = (product + [product[-1]] * W)[:W]
        total, _ = add(net, list(addend), extended)
        return total
    if P >= 1:
        pipe.cut()
        row, (s,) = pipe.register(row, "pipe_row"), pipe.register([s], "pipe_sign")
    low = min(LOW_BITS, W)
    total, carry = add(net, list(addend[:low]), row[:low], s)
    if W <= low:
        return total
    # delta = carry - s: +1 (carry, positive product), -1 (no carry, negative), else 0
    return total + _up_down(net, addend, xor_(carry, s), carry, low)


def behavioral_fp4_multiply_add(m, a, b, addend, cfg):
    """``addend + 4*a*b`` written as RTL: decode to magnitude (``sig << sh``), ``*``,
    negate, ``+``; the signed product is registered ``cfg.pipeline`` times."""
    mag_a, mag_b = Signal(4, name="mag_a"), Signal(4, name="mag_b")
    for code, mag in ((a, mag_a), (b, mag_b)):
        exponent = code[1:3]
        significand = Cat(code[0], exponent != 0)                  # 2h + M
        shift = Mux(exponent[1], exponent - 1, 0)[:2]              # max(E - 1, 0)
        m.d.comb += mag.eq(significand << shift)
    magnitude = mag_a * mag_b
    product = Signal(range(-256, 256), name="product")
    m.d.comb += product.eq(Mux(a[3] ^ b[3], -magnitude, magnitude))
    for stage in range(cfg.pipeline):
        reg = Signal(product.shape(), name=f"pipe_product{stage}")
        m.d.sync += reg.eq(product)
        product = reg
    return addend + product
