"""Exact cycle counts of a tiled GEMM on the systolic array, as :mod:`sim.gemm` drives it.

Counting convention: cycle t is the clock period whose inputs are sampled by rising edge
t (t = 0 is the period in which the first operand, weight or activation, is driven). A
result "comes out in cycle X" when it is visible on ``c_out`` (with ``c_valid``) after
edge X-1. ``cycles`` = X of the last result: the number of edges from the one that
samples the first operand to the one that produces the last result, inclusive.

GEMM ``C[M,N] = A[M,K] @ B[K,N]`` on an R x C array, MAC pipeline P.

K passes: a pass sums at most ``k_chunk`` products per output (``k_chunk`` =
:func:`max_safe_k`), so no W-bit sum can overflow; the driver adds the pass partials in
int64. WS sums at most ``kr = min(R, k_chunk)`` products in one fold anyway.

Weight stationary (WS). Folds: ``ceil(K/kr) * ceil(N/C)``, each streaming all M rows.
Fold f starts streaming at ``base_f``; column c's shadow weights shift in during cycles
``base_f + c - R .. base_f + c - 1`` (``w_en[c]=1``, bottom row's weight first);
``A[m][k]`` enters row k in cycle ``base_f + k + m`` (``a_swap`` with m = 0,
``a_valid`` for every m), reaches PE(k, c) in cycle ``base_f + k + c + m``, and
``C[m][c]`` (this fold's partial) comes out of column c in cycle
``base_f + m + R + c + P``. ``base_0 = R``. Next fold:

* sequential: its first weight enters in the cycle the last result comes out:
  ``base_{f+1} = base_f + M + R + C + P - 2 + R``; per fold ``2R + C + M - 2 + P``.
* ``fold_overlap`` (double-buffered weights): ``base_{f+1} = base_f + max(M, 2R - 1)``
  (column c's next shadow load may start once its last PE swapped, ``base_f + c + R - 1``).

Output stationary (OS). Tiles: ``ceil(M/R) * ceil(N/C) * passes``; each tile streams K
products per PE. ``A[i][k]`` enters row i in cycle ``base + i + k`` (``a_last`` with
k = K_pass - 1), ``B[k][j]`` enters column j in cycle ``base + j + k``; PE(i, j) captures its sum
into the drain chain, which moves it one PE per cycle to the left, so ``C[i][j]`` comes
out of row i in cycle ``base + i + K_pass + P + 2j``. ``base_0 = 0``. Next tile:

* sequential: ``base' = base + R + K_pass + 2C + P - 3`` (the last result's cycle).
* ``fold_overlap`` (double-buffered outputs: the drain runs while the next tile computes):
  the stream ends ``E = base + K_pass`` (captures at ``E + i + j + P - 1``) advance by
  ``D`` = :func:`os_period` (K_pass of the NEXT tile, C) = the smallest ``D >= K_next``
  with ``D >= 2C - 1`` or (``D`` odd and ``D >= C``): a capture at PE(i, x) must not
  land on a sum of an earlier tile passing by, and those pass at even offsets
  ``2(j - x)``; ``base' = E + D - K_next``.

SCALE-Sim's analytical formulas (:func:`scalesim_cycles`) count ``F*(2R+C+M-2) - 1`` for
WS and ``F*(R+C+K-2) - 1`` for OS. With P = 0 sequential WS is exactly
``scalesim + 1`` (SCALE-Sim's last period ends one cycle earlier: it does not count the
output register of the bottom row); OS is longer per tile by ``C - 1 + P`` because
the finished sums drain through the array at one PE per cycle, opposite to the skew.
"""
from dataclasses import dataclass
from math import ceil

__all__ = ["max_safe_k", "model_cycles", "scalesim_cycles", "utilization", "fold_counts",
           "os_period", "FoldCounts",
           "PRODUCT_RANGE"]

PRODUCT_RANGE = {True: (-56, 64), False: (0, 225)}      # 4-bit x 4-bit products


def max_safe_k(signed, acc_width, width=4):
    """Largest K whose worst-case sum of K products fits the W-bit accumulator (signed
    two's complement if ``signed``, else unsigned). Always >= 1 for W >= 2*width."""
    if width == 4:
        lo, hi = PRODUCT_RANGE[bool(signed)]
    else:
        half = 1 << (width - 1)
        lo, hi = (-(half * (half - 1)), half * half) if signed else (0, ((1 << width) - 1) ** 2)
    if signed:
        top, bottom = (1 << (acc_width - 1)) - 1, -(1 << (acc_width - 1))
        k = top // hi
        if lo < 0:
            k = min(k, bottom // lo)
    else:
        k = ((1 << acc_width) - 1) // hi
    return max(1, k)


def _check(M, K, N, R, C, dataflow, pipeline):
    for name, v in (("M", M), ("K", K), ("N", N), ("R", R), ("C", C)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if dataflow not in ("ws", "os"):
        raise ValueError(f"unknown dataflow {dataflow!r}; allowed: ws, os")
    if pipeline not in (0, 1, 2):
        raise ValueError(f"pipeline must be 0..2, got {pipeline!r}")


@dataclass(frozen=True)
class FoldCounts:
    folds: int          # array loads (WS: weight tiles; OS: output tiles), all passes
    k_passes: int       # partial results per output the driver adds
    k_per_pass: tuple   # products summed per pass, in pass order


def fold_counts(M, K, N, R, C, dataflow, k_chunk=None):
    """How the driver tiles the GEMM (see the module docstring)."""
    kc = K if k_chunk is None else max(1, min(k_chunk, K))
    if dataflow == "ws":
        kc = min(kc, R)
        passes = ceil(K / kc)
        return FoldCounts(passes * ceil(N / C), passes,
                          tuple(min(kc, K - p * kc) for p in range(passes)))
    passes = ceil(K / kc)
    return FoldCounts(passes * ceil(M / R) * ceil(N / C), passes,
                      tuple(min(kc, K - p * kc) for p in range(passes)))


def os_period(k, C):
    """Cycles between the stream ends of two consecutive overlapped OS tiles, the second
    of which sums ``k`` products per PE: the smallest ``D >= k`` with ``D >= 2C - 1`` or
    (``D`` odd and ``D >= C``). Sums of tile f pass PE column x at even offsets
    ``2(j - x) <= 2C - 2`` after its own capture; the next tile's capture (offset D) and
    the one after (offset >= 2D >= 2C) must both miss them."""
    if k >= 2 * C - 1:
        return k
    d = max(k, C)
    return d if d % 2 else d + 1


def model_cycles(M, K, N, R, C, dataflow, pipeline=0, fold_overlap=False, k_chunk=None):
    """Exact cycles from the first operand in to the last result out (see module doc)."""
    _check(M, K, N, R, C, dataflow, pipeline)
    P = pipeline
    fc = fold_counts(M, K, N, R, C, dataflow, k_chunk)
    if dataflow == "ws":
        F = fc.folds
        per = 2 * R + C + M - 2 + P
        if not fold_overlap:
            return F * per
        return per + (F - 1) * max(M, 2 * R - 1)
    tiles_per_pass = ceil(M / R) * ceil(N / C)
    ks = [k for k in fc.k_per_pass for _ in range(tiles_per_pass)]
    if not fold_overlap:
        return sum(R + k + 2 * C + P - 3 for k in ks)
    # Tile f's captures happen at (its stream's end E_f) + i + j + P; E_0 = K_0 and
    # E_{f+1} = E_f + os_period(K_{f+1}, C).
    return ks[0] + sum(os_period(k, C) for k in ks[1:]) + R + 2 * C + P - 3


def scalesim_cycles(M, K, N, R, C, dataflow):
    """SCALE-Sim's analytical compute cycles (no K split, no pipeline)."""
    _check(M, K, N, R, C, dataflow, 0)
    if dataflow == "ws":
        return ceil(K / R) * ceil(N / C) * (2 * R + C + M - 2) - 1
    return ceil(M / R) * ceil(N / C) * (R + C + K - 2) - 1


def utilization(M, K, N, R, C, cycles):
    """Fraction of PE-cycles doing useful MACs: ``M*K*N / (R*C*cycles)``."""
    return M * K * N / (R * C * cycles)
