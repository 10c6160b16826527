"""Operand checks, random operands and the exact reference of a GEMM on the array
(int4, uint4, FP4 codes; int8 for the W4A8 and int8 precisions of a fusable array)."""
import numpy as np

from hdl.mac import MacConfig
from hdl.numerics import numerics_of
from hdl.fusion import precision_operand_ranges

__all__ = ["check_operands", "random_operands", "exact_result", "precision_operands"]



def _matrix(x, name, mac, span=None):
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got {arr.ndim} dimension(s)")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype.kind in "iub":
        out = arr.astype(np.int64, copy=False)
    elif arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.floor(arr)):
            raise ValueError(f"{name} holds non-integer values")
        out = arr.astype(np.int64)
    else:
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    lo, hi = mac.operand_range if span is None else span
    bad = (out < lo) | (out > hi)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        what = ("FP4 (E2M1) codes" if mac.numerics == "fp4" else
                f"{'signed' if mac.signed else 'unsigned'} {mac.width}-bit operands"
                if span is None else f"signed {(hi - lo).bit_length()}-bit operands")
        raise ValueError(f"{name}[{i},{j}] = {out[i, j]} is out of range for {what} "
                         f"({lo}..{hi})")
    return out


def _as_mac(mac):
    """A :class:`hdl.mac.MacConfig`, or the MAC of a numerics name (or signed bool)."""
    if isinstance(mac, MacConfig):
        return mac
    numerics = numerics_of(mac)
    return MacConfig(numerics=numerics, signed=numerics != "uint4")


def check_operands(A, B, mac, precision="int4"):
    """``(A, B)`` as int64 arrays of operands of ``mac`` (a :class:`hdl.mac.MacConfig`, or
    a numerics name: FP4 operands are the 4-bit codes), or ValueError with a one-line
    message. Int64 arrays are returned as they are (not copied; never written to).
    ``precision`` W4A8 / int8: A (and B for int8) are int8 operands instead."""
    mac = _as_mac(mac)
    ranges = (None, None)
    if precision != "int4":
        ranges = precision_operand_ranges(precision)
    A, B = _matrix(A, "A", mac, ranges[0]), _matrix(B, "B", mac, ranges[1])
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"K mismatch: A is {A.shape[0]}x{A.shape[1]} but B is "
                         f"{B.shape[0]}x{B.shape[1]}")
    return A, B


def random_operands(rng, M, K, N, mac):
    """Random A (M x K) and B (K x N) over every operand value of ``mac``
    (:attr:`hdl.mac.MacConfig.operand_range`), drawn from ``rng`` (a numpy Generator, or
    a seed for a new one)."""
    rng = np.random.default_rng(rng)
    lo, hi = mac.operand_range
    return rng.integers(lo, hi + 1, (M, K)), rng.integers(lo, hi + 1, (K, N))


def exact_result(A, B, mac):
    """What the array's accumulators must hold for checked operands of ``mac`` (as for
    :func:`check_operands`): ``A @ B`` (int4, uint4), or for FP4 codes
    ``4 * decode(A) @ decode(B)`` with ml_dtypes' decoding (:mod:`sim.models.fp4`), all
    as exact int64."""
    if _as_mac(mac).numerics == "fp4":
        from sim.models.fp4 import fp4_gemm_quarters
        return fp4_gemm_quarters(A, B)
    return np.asarray(A).astype(np.int64) @ np.asarray(B).astype(np.int64)


def precision_operands(seed, M, K, N, precision):
    """Random A (M x K) and B (K x N) over the full ranges of ``precision``."""
    rng = np.random.default_rng(seed)
    (alo, ahi), (blo, bhi) = precision_operand_ranges(precision)
    return rng.integers(alo, ahi + 1, (M, K)), rng.integers(blo, bhi + 1, (K, N))
