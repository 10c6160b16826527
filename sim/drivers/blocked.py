"""Block-scaled GEMMs (MXFP4, blocked int4; :mod:`sim.models.mx`) on the RTL array.

``C = A @ B`` with A quantized in blocks of 32 along its columns and B along its rows
(the shared K). The array only ever sees 4-bit elements: for every K-block ``b`` the
driver runs the sub-GEMM ``A[:, b] @ B[b, :]`` of the elements as one job (FP4 codes on
an FP4 array, whose accumulator is fixed point with two fractional bits, so it returns
``sum 4 a b``; int4 values on an int4 array, ``sum a b``): an exact integer partial sum
per block. The block scales are applied here, in the driver, not in RTL:
:func:`sim.models.mx.combine_blocks` shifts each partial sum by the integer exponent
``X_A[i, b] + X_B[b, j]`` and adds them exactly (Python integers, no rounding).

All jobs of a call go through ONE simulator run (:func:`sim.drivers.gemm.run_gemms`).
The check is against :func:`sim.models.mx.exact_matmul`, which does not use the blocks:
it dequantizes both matrices to integers over one power of two and multiplies them.
"""
from dataclasses import dataclass

import numpy as np

from sim.models.mx import Blocked, Exact, combine_blocks, exact_matmul, units_of

__all__ = ["BlockedGemm", "NUMERICS_OF", "block_jobs", "run_blocked", "model_runner",
           "rtl_runner"]

# The MAC numerics that multiplies the elements of each block format.
NUMERICS_OF = {"mxfp4": "fp4", "int4": "int4"}


@dataclass
class BlockedGemm:
    C: Exact                      # the RTL's C, block scales applied exactly
    reference: Exact              # exact_matmul of the same quantized operands
    partials: list                # int64 [M, N] per K-block, as the array returned them
    results: list                 # the array driver's GemmResult per block (RTL runs)

    @property
    def matches(self):
        return self.C.equals(self.reference)


def block_jobs(qa: Blocked, qb: Blocked):
    """The array jobs ``(A_b, B_b)`` of ``qa @ qb``, one per K-block: the 4-bit elements
    as the array takes them (E2M1 codes 0..15 for MXFP4, int4 values -8..7)."""
    if qa.format != qb.format:
        raise ValueError(f"A is {qa.format} but B is {qb.format}; quantize both alike")
    return [(qa.q[:, s], qb.q[s, :]) for s in qa.slices]


def model_runner(fmt):
    """A numpy stand-in for the array: per job the integer partial sum the RTL returns
    (``sum u_a u_b``: ``4 a b`` for E2M1 elements, ``a b`` for int4 and for the int8 x
    int4 jobs of W4A8)."""
    def run(jobs):
        return [(units_of(A, fmt) @ units_of(B, fmt), None) for A, B in jobs]
    return run


def rtl_runner(config, *, simulator, build_root=None, precision="int4"):
    """Run the jobs on the RTL array ``config`` (an :class:`ArrayConfig` whose MAC
    multiplies the format's elements; ``precision`` W4A8 or int8: int8 operands on an
    array fused for them, :func:`sim.drivers.gemm.run_gemms`); returns
    ``[(C int64, GemmResult), ...]``."""
    from sim.drivers.gemm import run_gemms

    def run(jobs):
        results = run_gemms(jobs, config, simulator=simulator, build_root=build_root,
                            precision=precision)
        return [(r.C, r) for r in results]
    return run


def run_blocked(pairs, *, runner):
    """``[(qa, qb), ...]`` -> ``[BlockedGemm, ...]``; every block of every pair in one
    ``runner`` call (one simulator run)."""
    jobs, counts = [], []
    for qa, qb in pairs:
        these = block_jobs(qa, qb)
        jobs.extend(these)
        counts.append(len(these))
    outputs = runner(jobs) if jobs else []
    done, n = [], 0
    for (qa, qb), count in zip(pairs, counts):
        mine = outputs[n:n + count]
        n += count
        partials = [np.asarray(c, dtype=np.int64) for c, _ in mine]
        done.append(BlockedGemm(C=combine_blocks(partials, qa, qb),
                                reference=exact_matmul(qa, qb), partials=partials,
                                results=[r for _, r in mine]))
    return done
