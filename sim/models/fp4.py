"""FP4 (E2M1) values from ``ml_dtypes.float4_e2m1fn``: the reference of every FP4 check.

Nothing here reads the generator's tables (:mod:`hdl.fp4`): a code's value comes from
ml_dtypes' own decoding of the byte, so a wrong table in the hardware cannot hide
behind the same wrong table in its checker. The accumulator of an FP4 MAC counts
quarters: ``4*a*b`` per product (:mod:`hdl.numerics`).
"""
import numpy as np
import ml_dtypes

__all__ = ["FP4", "CODES", "fp4_values", "fp4_quarters", "fp4_gemm_quarters",
           "encode_fp4"]

FP4 = ml_dtypes.float4_e2m1fn
CODES = range(16)


def fp4_values(codes):
    """Float64 values of an array of 4-bit codes (0..15; ValueError outside)."""
    codes = np.asarray(codes)
    if codes.size and (codes.min() < 0 or codes.max() > 15):
        raise ValueError("FP4 codes are 0..15")
    return codes.astype(np.uint8).view(FP4).astype(np.float64)


def fp4_quarters(code_a, code_b):
    """``4*a*b`` of two codes as an exact int."""
    product = 4 * float(fp4_values(code_a)) * float(fp4_values(code_b))
    if product != int(product):
        raise AssertionError(f"4*a*b = {product} is not an integer")
    return int(product)


def fp4_gemm_quarters(A, B):
    """``4 * decode(A) @ decode(B)`` as exact int64 (A, B: code matrices)."""
    twice_a = (2 * fp4_values(A)).astype(np.int64)      # 2v is an integer for E2M1
    twice_b = (2 * fp4_values(B)).astype(np.int64)
    return twice_a @ twice_b


def encode_fp4(values, name="values"):
    """The codes (uint8) of float ``values`` that are exactly E2M1 (-0.0 gives code 8);
    ValueError naming the first element that is not (NaN, Inf or not representable)."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf" or arr.dtype.kind == "b":
        raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype}")
    x = arr.astype(np.float64)
    codes = x.astype(FP4)
    bad = ~(codes.astype(np.float64) == x) | ~np.isfinite(x)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        where = ",".join(map(str, idx))
        raise ValueError(f"{name}[{where}] = {float(x[idx])} is not an FP4 (E2M1) value; allowed: "
                         f"0, +-0.5, +-1, +-1.5, +-2, +-3, +-4, +-6")
    return codes.view(np.uint8)
