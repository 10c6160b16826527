"""Block quantization to 4-bit elements with a shared power-of-two scale: MXFP4 (OCP
Microscaling Formats (MX) v1.0) and blocked int4, and exact arithmetic on the result.

Both formats cut a tensor into blocks of :data:`BLOCK` = 32 consecutive elements along
one axis (a GEMM's K); a length that is not a multiple of 32 ends in a shorter last
block. The elements of a block share one exponent X and element i stands for
``q_i * 2**X``:

* **MXFP4**: ``X = floor(log2(max|x|)) - 2`` (2 is the exponent of E2M1's largest
  value, 6 = 1.5 * 2**2, so the block maximum lands in [4, 8) before rounding), stored
  as E8M0 (``X + 127``; X is clamped to -127..127); ``q_i`` is ``x_i / 2**X`` clamped to
  [-6, 6] and then cast to E2M1 with ``ml_dtypes.float4_e2m1fn`` (round to nearest,
  ties to even).
* **int4**: the same X; ``q_i`` is ``x_i / 2**X`` rounded to the nearest integer (ties
  to even) and clamped to -8..7.

An **all-zero block** has no ``log2(max|x|)``; it gets the smallest scale, X = -127
(E8M0 code 0x00), and all-zero elements (any X would do: every element is 0). The OCP
reference code arrives at the same -127 by clamping. A block whose maximum is below
2**-125 also gets X = -127, so its elements lose precision or flush to 0, as the spec's
clamp implies.

Inputs are read as float32 (the format the MX spec quantizes): float16 converts exactly,
float64 is rounded to float32 first. ``x / 2**X`` is then exact in float32, so the one
rounding is the element cast (ml_dtypes rounds a float64 through float32, which would
round twice; float32 in avoids it).

Exact products: a quantized element is an integer ``u`` times ``2**-f`` (``f`` =
:data:`FRACTION_BITS`: E2M1 values are multiples of 1/2, so ``u = 2 value(q)``; int4
``u = q``), so a dot product over one block is an integer (what the RTL array
accumulates: the FP4 MAC adds ``4 a b = u_a u_b``, the int4 MAC ``a b``) and C is a sum
of such integers times powers of two: :class:`Exact` keeps it as an integer mantissa and
one exponent.
"""
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from sim.models.fp4 import fp4_values

__all__ = ["BLOCK", "FORMATS", "FRACTION_BITS", "E2M1_MAX", "SCALE_EXP_RANGE", "Blocked",
           "Exact", "quantize", "quantize_mx", "quantize_int4", "block_slices", "units_of",
           "exact_matmul", "combine_blocks"]

BLOCK = 32
FORMATS = ("mxfp4", "int4")
FRACTION_BITS = {"mxfp4": 1, "int4": 0}
E2M1_MAX = 6.0
E2M1_EMAX = 2                       # exponent of E2M1's largest normal value
INT4_RANGE = (-8, 7)
SCALE_EXP_RANGE = (-127, 127)       # E8M0 exponents (code 0xFF is NaN, never produced)
_E2M1 = ml_dtypes.float4_e2m1fn


def block_slices(length, block=BLOCK):
    """Slices of consecutive blocks covering ``range(length)``; the last may be short."""
    return [slice(k0, min(k0 + block, length)) for k0 in range(0, length, block)]


def _per_element(exps, axis, length):
    """Block exponents (int64) repeated over their blocks' elements along ``axis``."""
    sizes = [s.stop - s.start for s in block_slices(length)]
    return np.repeat(np.asarray(exps, dtype=np.int64), sizes, axis=axis)


def units_of(q, fmt):
    """int64 element integers ``u`` of 4-bit elements ``q`` (E2M1 codes for "mxfp4",
    int4 values for "int4"): the element is ``u * 2**-FRACTION_BITS[fmt]``."""
    if fmt == "mxfp4":
        return (fp4_values(q) * 2).astype(np.int64)
    return np.asarray(q).astype(np.int64)


@dataclass(frozen=True)
class Blocked:
    """A tensor quantized in blocks of :data:`BLOCK` along ``axis``: element ``q`` times
    ``2**exp`` of its block.

    ``q``: same shape as the input; MXFP4: uint8 E2M1 codes, int4: int8 -8..7.
    ``exp``: int16 shared exponents, the input's shape with ``axis`` cut to the number
    of blocks."""
    format: str
    q: np.ndarray
    exp: np.ndarray
    axis: int

    @property
    def length(self):
        return self.q.shape[self.axis]

    @property
    def slices(self):
        return block_slices(self.length)

    @property
    def scale_e8m0(self):
        """The shared scales as E8M0 codes (``exp + 127``)."""
        return (self.exp.astype(np.int16) + 127).astype(np.uint8)

    @property
    def fraction_bits(self):
        return FRACTION_BITS[self.format]

    def units(self):
        """int64 element integers ``u``: the element is ``u * 2**-fraction_bits``."""
        return units_of(self.q, self.format)

    def elements(self):
        """float64 element values (before the block scale)."""
        return np.ldexp(self.units().astype(np.float64), -self.fraction_bits)

    def block_exps(self):
        """Every element's block exponent (int64, the shape of ``q``)."""
        return _per_element(self.exp, self.axis, self.length)

    def dequantize(self):
        """float64 values ``element * 2**X`` (exact: at most 4 significant bits)."""
        return np.ldexp(self.elements(), self.block_exps())


def _float32(x, name):
    arr = np.asarray(x)
    if arr.dtype.kind != "f":
        raise ValueError(f"{name} must hold floats, got dtype {arr.dtype}")
    x32 = arr.astype(np.float32)
    bad = ~np.isfinite(x32)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name}[{','.join(map(str, idx))}] = {arr[idx]} is not a "
                         f"finite float32; MX scales only finite values")
    return x32


def _shared_exps(x32, axis):
    """Per block along ``axis``: floor(log2(max|x|)) - E2M1_EMAX, clamped to E8M0
    (all-zero blocks: -127). int16, the shape of x with ``axis`` cut to the blocks."""
    mags = np.moveaxis(np.abs(x32), axis, -1)
    peaks = np.stack([mags[..., s].max(axis=-1) for s in block_slices(mags.shape[-1])],
                     axis=-1)
    # frexp: peak = f * 2**e with f in [0.5, 1), so floor(log2(peak)) = e - 1 exactly
    # (no log2 rounding at powers of two); frexp(0) gives e = 0, replaced below.
    _, e = np.frexp(peaks)
    exps = e.astype(np.int64) - 1 - E2M1_EMAX
    exps = np.where(peaks == 0, SCALE_EXP_RANGE[0], exps)
    exps = np.clip(exps, *SCALE_EXP_RANGE)
    return np.moveaxis(exps.astype(np.int16), -1, axis)


def quantize(x, fmt, *, axis, name="x"):
    """``x`` (float, any shape, finite) quantized in blocks of 32 along ``axis`` to
    ``fmt`` ("mxfp4" or "int4"): a :class:`Blocked`. ValueError (naming ``name`` and the
    first offending element) on non-float or non-finite input."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown block format {fmt!r}; allowed: {', '.join(FORMATS)}")
    x32 = _float32(x, name)
    if x32.ndim == 0 or x32.size == 0:
        raise ValueError(f"{name} is empty or a scalar (shape {x32.shape})")
    axis = axis % x32.ndim
    exps = _shared_exps(x32, axis)
    full = _per_element(exps, axis, x32.shape[axis])
    scaled = np.ldexp(x32, (-full).astype(np.int32))     # exact: a power-of-two scaling
    if fmt == "mxfp4":
        q = np.clip(scaled, -E2M1_MAX, E2M1_MAX).astype(_E2M1).view(np.uint8)
    else:
        q = np.clip(np.rint(scaled), *INT4_RANGE).astype(np.int8)
    return Blocked(fmt, q, exps, axis)


def quantize_mx(x, *, axis, name="x"):
    """MXFP4 (E2M1 elements, E8M0 scales) in blocks of 32 along ``axis``."""
    return quantize(x, "mxfp4", axis=axis, name=name)


def quantize_int4(x, *, axis, name="x"):
    """int4 elements with a power-of-two scale per block of 32 along ``axis``."""
    return quantize(x, "int4", axis=axis, name=name)


# ---------------------------------------------------------------------------------------
# Exact values

@dataclass(frozen=True)
class Exact:
    """A matrix of exact dyadic values ``mant * 2**exp`` (``mant``: Python ints in an
    object array, ``exp``: one int)."""
    mant: np.ndarray
    exp: int

    def to_float(self):
        """float64, each element rounded once (to nearest, ties to even)."""
        m = self.mant.astype(np.float64)              # int -> float: rounded once
        return np.ldexp(m, self.exp)                  # exact away from subnormals

    def aligned(self, exp):
        """The mantissas at exponent ``exp`` (<= self.exp)."""
        return self.mant * (1 << (self.exp - exp))

    def equals(self, other):
        e = min(self.exp, other.exp)
        return self.mant.shape == other.mant.shape and bool(
            np.all(self.aligned(e) == other.aligned(e)))

    def first_difference(self, other):
        """``(i, j)`` of the first element that differs, or None."""
        e = min(self.exp, other.exp)
        diff = np.argwhere(self.aligned(e) != other.aligned(e))
        return tuple(int(v) for v in diff[0]) if len(diff) else None


def _as_ints(qt, base):
    """Object array of Python ints: the dequantized values of ``qt`` over 2**base."""
    shift = qt.block_exps() - qt.fraction_bits - base
    return qt.units().astype(object) * np.left_shift(np.ones_like(shift, dtype=object),
                                                     shift.astype(object))


def _check_pair(qa, qb):
    if qa.q.ndim != 2 or qb.q.ndim != 2 or qa.axis != 1 or qb.axis != 0:
        raise ValueError("A must be blocked along its columns (axis 1) and B along its "
                         "rows (axis 0), both 2-D")
    if qa.length != qb.length:
        raise ValueError(f"K mismatch: A has {qa.length} columns, B {qb.length} rows")


def _base(qt):
    return int(qt.exp.min()) - qt.fraction_bits


def exact_matmul(qa, qb):
    """The exact product of two quantized matrices (A blocked along K = axis 1, B along
    K = axis 0): every element dequantized to an integer over one common power of two,
    then one plain integer matrix product over the whole of K (no blocks)."""
    _check_pair(qa, qb)
    ea, eb = _base(qa), _base(qb)
    return Exact(np.dot(_as_ints(qa, ea), _as_ints(qb, eb)), ea + eb)


def combine_blocks(partials, qa, qb):
    """C from the per-block integer partial sums ``partials[b] = sum over block b of
    u_a * u_b`` (int64 [M, N]), each scaled by ``2**(X_A[i, b] + X_B[b, j] - f_a - f_b)``
    exactly (integer exponents, no rounding): an :class:`Exact`."""
    _check_pair(qa, qb)
    if len(partials) != len(qa.slices):
        raise ValueError(f"{len(partials)} partial sums for {len(qa.slices)} blocks")
    ea, eb = _base(qa), _base(qb)
    total = None
    for b, part in enumerate(partials):
        shift = (qa.exp[:, b].astype(np.int64)[:, None] - qa.fraction_bits - ea
                 + qb.exp[b, :].astype(np.int64)[None, :] - qb.fraction_bits - eb)
        term = np.asarray(part, dtype=np.int64).astype(object) * np.left_shift(
            np.ones_like(shift, dtype=object), shift.astype(object))
        total = term if total is None else total + term
    return Exact(total, ea + eb)
