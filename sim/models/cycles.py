"""Exact cycle counts of a tiled GEMM on the systolic array, as :mod:`sim.drivers.gemm` drives it.

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
* compact PE (``double_buffer=False``: no shadow, the weights are the shift chain): a
  column's next weights may shift in from the cycle in which its last PE uses its last
  activation, ``base_f + R - 1 + c + M - 1``: ``base_{f+1} = base_f + 2R + M - 2``.

Output stationary (OS). Tiles: ``ceil(M/R) * ceil(N/C) * passes``; each tile streams
K products per PE. ``A[i][k]`` enters row i in cycle ``base + i + k``, ``B[k][j]`` enters
column j in cycle ``base + j + k``, so PE(i, j) adds its last product in cycle
``base + i + j + K_pass - 1 + P``. Finished sums drain along anti-diagonals (see
:mod:`hdl.pe`): diagonal ``d = i + j`` finishes all at once and leaves through output
lane ``d`` (its bottom-left PE), one sum per cycle, so ``C[i][j]`` comes out of lane
``i + j`` in cycle ``base + i + j + K_pass + P + s`` with ``s = min(j, R - 1 - i)``.
The last PE result of a tile comes out in cycle ``base + K_pass + P + R + C - 2`` (the
bottom-right PE, ``s = 0``). With ``m = min(R, C)`` (the longest diagonal):

* compact PE (no fold overlap, the accumulator is the drain chain): ``a_drain`` is
  set from the last k for ``m`` cycles, every lane shows ``m`` values (the diagonal,
  then zeros shifted in at the edge, which the driver checks), and the next tile's
  stream follows the drain window: ``base' = base + K_pass + m``.
* ``fold_overlap`` (double-buffered PE: the drain register shifts while the next tile
  computes): ``base' + K' = base + K_pass + max(K', m)``: the next capture must come
  after the ``m - 1`` shifts of the longest diagonal.

``cycles`` counts to the last PE result (drain zeros are not results); ``base_0 = 0``.

SCALE-Sim's analytical formulas (:func:`scalesim_cycles`) count ``F*(2R+C+M-2) - 1`` for
WS and ``F*(R+C+K-2) - 1`` for OS. The ``- 1`` makes its count the index of the last
cycle rather than the number of cycles (one MAC on a 1x1 array: 0): a single fold takes
``scalesim + 1 + P`` here, in both dataflows, because every PE output is a register.
More folds are cheaper here than in SCALE-Sim's sum of independent folds: OS tiles
follow each other after ``K + min(R, C)`` (compact) or ``max(K, min(R, C))``
(fold overlap) cycles instead of ``R + C + K - 2``; WS folds overlap with
``fold_overlap``.
"""
from dataclasses import dataclass
from math import ceil

from hdl.mac import max_safe_k

__all__ = ["max_safe_k", "balanced_passes", "model_cycles", "scalesim_cycles", "utilization",
           "fold_counts", "ws_period", "os_period", "FoldCounts"]

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


def balanced_passes(K, k_chunk):
    """Split K into the fewest passes of at most ``k_chunk`` products, as equal as
    possible (512 with k_chunk 511: 256 + 256, not 511 + 1: an OS tile costs at least
    min(R, C) cycles however short its pass)."""
    passes = ceil(K / k_chunk)
    q, r = divmod(K, passes)
    return (q + 1,) * r + (q,) * (passes - r)


def fold_counts(M, K, N, R, C, dataflow, k_chunk=None, digits=1):
    """How the driver tiles the GEMM (see the module docstring). WS folds take R rows of
    K at a time (the last fold the rest); OS passes are :func:`balanced_passes`.

    ``digits`` D > 1 (W4A8: 2, int8: 4; :mod:`sim.drivers.fusion`): every MAC is D digit
    steps of the 4-bit PE, phase-major within a pass; passes are cut in MACs (WS: at
    most ``R // D`` per fold) and ``k_per_pass`` counts digit steps (D per MAC)."""
    kc = K if k_chunk is None else max(1, min(k_chunk, K))
    if dataflow == "ws":
        kc = min(kc, R // digits)
        if kc < 1:
            raise ValueError(f"{digits} digit steps per MAC need at least {digits} rows, "
                             f"got R = {R}")
        passes = ceil(K / kc)
        return FoldCounts(passes * ceil(N / C), passes,
                          tuple(digits * min(kc, K - p * kc) for p in range(passes)))
    ks = tuple(digits * k for k in balanced_passes(K, kc))
    return FoldCounts(len(ks) * ceil(M / R) * ceil(N / C), len(ks), ks)


def ws_period(M, R, C, pipeline, *, fold_overlap, double_buffer=True):
    """Cycles from the stream start of a WS fold (M activation rows) to that of the next:
    ``max(M, 2R - 1)`` with fold overlap (the shadow weights load while the fold
    streams), ``2R + M - 2`` on the compact PE (a column's next weights shift in once its
    last activation passed), else ``2R + C + M - 2 + P`` (the next fold's first weight
    enters as the last result comes out)."""
    if fold_overlap:
        return max(M, 2 * R - 1)
    if not double_buffer:
        return 2 * R + M - 2
    return 2 * R + C + M - 2 + pipeline


def os_period(k, R, C, fold_overlap):
    """Cycles from the stream end (or start) of an OS tile to that of the next one, which
    sums ``k`` products per PE: ``max(k, min(R, C))`` with fold overlap (stream ends),
    ``k + min(R, C)`` without (the next stream follows the drain window)."""
    m = min(R, C)
    return max(k, m) if fold_overlap else k + m


def model_cycles(M, K, N, R, C, dataflow, pipeline=0, fold_overlap=False, k_chunk=None,
                 double_buffer=None, digits=1):
    """Exact cycles from the first operand in to the last result out (see module doc).
    ``double_buffer=False`` with WS: the compact WS PE (no shadow weights). ``digits``:
    PE steps per MAC on a fusable array (:func:`fold_counts`; int4: 1)."""
    _check(M, K, N, R, C, dataflow, pipeline)
    P = pipeline
    fc = fold_counts(M, K, N, R, C, dataflow, k_chunk, digits)
    if dataflow == "ws":
        period = ws_period(M, R, C, P, fold_overlap=fold_overlap,
                           double_buffer=double_buffer is not False)
        return (fc.folds - 1) * period + 2 * R + C + M - 2 + P
    tiles_per_pass = ceil(M / R) * ceil(N / C)
    ks = [k for k in fc.k_per_pass for _ in range(tiles_per_pass)]
    if fold_overlap:            # stream ends: E_0 = K_0, E_{f+1} = E_f + max(K_{f+1}, m)
        end = ks[0] + sum(os_period(k, R, C, True) for k in ks[1:])
    else:                       # stream starts: base_{f+1} = base_f + K_f + m
        end = sum(os_period(k, R, C, False) for k in ks[:-1]) + ks[-1]
    return end + P + R + C - 2


def scalesim_cycles(M, K, N, R, C, dataflow):
    """SCALE-Sim's analytical compute cycles (no K split, no pipeline)."""
    _check(M, K, N, R, C, dataflow, 0)
    if dataflow == "ws":
        return ceil(K / R) * ceil(N / C) * (2 * R + C + M - 2) - 1
    return ceil(M / R) * ceil(N / C) * (R + C + K - 2) - 1


def utilization(M, K, N, R, C, cycles):
    """Fraction of PE-cycles doing useful MACs: ``M*K*N / (R*C*cycles)``."""
    return M * K * N / (R * C * cycles)
