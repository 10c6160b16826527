"""Carry-propagate adders built from the gate layer.

Every adder has the signature ``add(net, a, b, cin=0) -> (sum_bits, cout)`` where
``a`` and ``b`` are equal-length lists of bits, least significant first, and
``sum_bits`` has the same length (the sum mod 2**n). They are combinational: the
latency is 0 cycles and the logic depth is the property that differs.

Parallel-prefix adders share one derivation. With generate ``g_i = a_i b_i`` and
propagate ``p_i = a_i ^ b_i``, the carry into bit ``i+1`` is the group generate
``G[i:0]``, computed with the associative prefix operator

    (G, P)_hi o (G, P)_lo = (G_hi | P_hi G_lo,  P_hi P_lo)

and ``s_i = p_i ^ G[i-1:0]``. The carry-in folds into bit 0:
``g_0 = a_0 b_0 | cin p_0``. The networks differ only in which pairs they combine:

====================  =============  ===============  =========
network               levels         prefix cells     fan-out
====================  =============  ===============  =========
Kogge-Stone           log2 n         n log2 n - n + 1  2
Sklansky              log2 n         (n/2) log2 n      n/2
Brent-Kung            2 log2 n - 1   2n - 2 - log2 n   2
====================  =============  ===============  =========
"""
from .gates import and_, or_, xor_, full_adder

__all__ = ["ripple_carry_add", "kogge_stone_add", "sklansky_add", "brent_kung_add",
           "ADDERS"]


def _check_operands(a, b):
    if len(a) != len(b) or not a:
        raise ValueError(f"adder operands must be non-empty and of equal width, "
                         f"got {len(a)} and {len(b)} bits")


def ripple_carry_add(net, a, b, cin=0):
    """A chain of full adders: n cells, depth grows linearly with n."""
    _check_operands(a, b)
    carry, out = cin, []
    for x, y in zip(a, b):
        s, carry = full_adder(net, x, y, carry)
        out.append(s)
    return out, carry


def _kogge_stone_levels(n):
    d = 1
    while d < n:
        yield [(i, i - d) for i in range(d, n)]
        d *= 2


def _sklansky_levels(n):
    level = 0
    while (1 << level) < n:
        yield [(i, ((i >> level) << level) - 1) for i in range(n) if (i >> level) & 1]
        level += 1


def _brent_kung_levels(n):
    d = 1
    while d < n:                                   # up-sweep: build power-of-two groups
        yield [(i, i - d) for i in range(2 * d - 1, n, 2 * d)]
        d *= 2
    d //= 2
    while d >= 1:                                  # down-sweep: fill in the gaps
        level = [(i, i - d) for i in range(3 * d - 1, n, 2 * d)]
        if level:
            yield level
        d //= 2


def _prefix_add(levels):
    def add(net, a, b, cin=0):
        _check_operands(a, b)
        n = len(a)
        p = [xor_(x, y) for x, y in zip(a, b)]
        p = [net.wire(bit, f"pre_p{i}") for i, bit in enumerate(p)]
        g = [and_(x, y) for x, y in zip(a, b)]
        g[0] = or_(g[0], and_(cin, p[0]))
        g = [net.wire(bit, f"pre_g{i}") for i, bit in enumerate(g)]
        G, P = list(g), list(p)
        for level in levels(n):
            newG, newP = list(G), list(P)
            for hi, lo in level:
                k = net.index("pg")
                newG[hi] = net.wire(or_(G[hi], and_(P[hi], G[lo])), f"pg{k}_g")
                newP[hi] = net.wire(and_(P[hi], P[lo]), f"pg{k}_p")
            G, P = newG, newP
        carries = [cin] + G[:-1]
        return [xor_(pi, ci) for pi, ci in zip(p, carries)], G[-1]
    return add


kogge_stone_add = _prefix_add(_kogge_stone_levels)
kogge_stone_add.__doc__ = "Kogge-Stone: minimum depth, fan-out 2, the most prefix cells."
sklansky_add = _prefix_add(_sklansky_levels)
sklansky_add.__doc__ = "Sklansky: minimum depth with few cells, but fan-out n/2."
brent_kung_add = _prefix_add(_brent_kung_levels)
brent_kung_add.__doc__ = "Brent-Kung: about 2n cells and fan-out 2, twice the depth."

#: Adder architectures by CLI name.
ADDERS = {
    "ripple": ripple_carry_add,
    "kogge-stone": kogge_stone_add,
    "brent-kung": brent_kung_add,
    "sklansky": sklansky_add,
}
