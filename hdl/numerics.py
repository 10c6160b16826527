"""The number formats of the 4-bit operands, by CLI name (``--numerics``).

* ``int4``: two's complement -8..7; ``acc := acc + a*b``.
* ``uint4``: unsigned 0..15; ``acc := acc + a*b``.
* ``fp4``: OCP E2M1 codes, bit 3 sign, bits 2:1 exponent E, bit 0 mantissa M: E = 0 gives
  M x 0.5, E >= 1 gives (1 + M/2) x 2**(E-1); values 0, ±0.5, ±1, ±1.5, ±2, ±3, ±4, ±6
  (code 1000 is -0, no Inf or NaN). The accumulator is fixed point with two fractional
  bits: ``acc := acc + 4*a*b`` (every product, at most ±36, is exact: ±144 quarters).

This module is the one place the names are defined; everything else imports them.
"""

__all__ = ["NUMERICS", "SIGNED_NUMERICS", "FP4_PRODUCT_MAX", "numerics_of", "is_signed"]

NUMERICS = ("int4", "uint4", "fp4")
#: The formats whose accumulator is read as two's complement.
SIGNED_NUMERICS = ("int4", "fp4")
#: The largest |4*a*b| of two FP4 values (6 x 6 x 4): an accumulator needs 9 bits.
FP4_PRODUCT_MAX = 144


def numerics_of(value):
    """``value`` as a numerics name: a name passes through, a bool is the old ``signed``
    flag (True: int4, False: uint4)."""
    if isinstance(value, bool):
        return "int4" if value else "uint4"
    if value not in NUMERICS:
        raise ValueError(f"unknown numerics {value!r}; allowed: {', '.join(NUMERICS)}")
    return value


def is_signed(numerics):
    return numerics_of(numerics) in SIGNED_NUMERICS
