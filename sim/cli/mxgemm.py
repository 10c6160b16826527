"""``systolic gemm --numerics mxfp4``: float32 A and B quantized to MXFP4
(:mod:`sim.models.mx`), every 32-block of K run on the RTL FP4 array as an exact
fixed-point partial sum, the block scales applied exactly in the driver
(:mod:`sim.drivers.blocked`). C is checked exactly against the product of the quantized
A and B, and compared with the float product (relative Frobenius norm). The blocks run
as GEMMs of one simulator run on the path and model of ``--path``/``--model``
(:mod:`sim.paths`), chosen from the model cycles of all blocks together."""
import sys
import time

from sim import paths
from . import native
from .common import UsageError, array_config, check_writable, simulators

MXFP4 = "mxfp4"
FLOAT_DTYPES = ("float16", "float32")     # read exactly as float32


def allow_mxfp4(parser):
    """Add ``mxfp4`` to the ``--numerics`` choices of ``parser`` (the gemm subcommand
    only: the other commands build a MAC, and MXFP4 is FP4 MACs plus block scales)."""
    for action in parser._actions:
        if action.dest == "numerics" and action.choices is not None:
            action.choices = tuple(action.choices) + (MXFP4,)
            action.help = (action.help or "") + "; gemm also takes mxfp4: float32 A and " \
                                                "B, quantized in blocks of 32 along K"
            return
    raise AssertionError("the gemm parser has no --numerics option")


def _float_operand(arr, option, path):
    if arr.dtype.name not in FLOAT_DTYPES:
        raise UsageError(f"{option}: {path} holds {arr.dtype}; --numerics mxfp4 takes "
                         f"float32 (save it as x.astype(numpy.float32))")
    return arr.astype("float32")


def _operands(args, load):
    import numpy as np
    if args.random:
        M, K, N = args.random
        rng = np.random.default_rng(args.seed)
        return (rng.standard_normal((M, K)).astype(np.float32),
                rng.standard_normal((K, N)).astype(np.float32), "--random")
    if not args.b:
        raise UsageError("--b: missing; --a needs --b B.npy (or use --random M K N)")
    A = _float_operand(load(args.a, "--a"), "--a", args.a)
    B = _float_operand(load(args.b, "--b"), "--b", args.b)
    return A, B, "--a/--b"


def _quantize(A, B, where):
    from sim.models.mx import quantize_mx
    if A.shape[1] != B.shape[0]:
        raise UsageError(f"{where}: K mismatch: A is {A.shape[0]}x{A.shape[1]} but B is "
                         f"{B.shape[0]}x{B.shape[1]}")
    if A.size == 0 or B.size == 0:
        raise UsageError(f"{where}: A ({A.shape}) and B ({B.shape}) must not be empty")
    try:
        return quantize_mx(A, axis=1, name="A"), quantize_mx(B, axis=0, name="B")
    except ValueError as e:
        raise UsageError(f"{where}: {e}") from None


def relative_error(C, want):
    """``||C - want||_F / ||want||_F`` (None when ``want`` is all zero)."""
    import numpy as np
    norm = float(np.linalg.norm(want))
    return float(np.linalg.norm(C - want)) / norm if norm else None


def cmd_gemm_mx(args, *, one_gemm_args, load, save):
    """The MXFP4 GEMM: one --a/--b (or --random), no --split. The gemm command's
    helpers come in as arguments: ``one_gemm_args(args)`` (one --a/--b/--out, no split
    options), ``load(path, option)`` (a 2-D .npy) and ``save(path, C)``."""
    import numpy as np
    from sim.drivers.blocked import block_jobs, run_blocked
    if args.split is not None:
        raise UsageError("--split: not with --numerics mxfp4; run the MXFP4 GEMM on the "
                         "plain array")
    one_gemm_args(args)
    for option in ("out", "report"):
        if getattr(args, option):
            check_writable(getattr(args, option), f"--{option}")
    if args.b and not args.a:
        raise UsageError("--a: missing; --b needs --a A.npy")
    A, B, where = _operands(args, load)
    qa, qb = _quantize(A, B, where)
    args.numerics = "fp4"                       # the array multiplies the E2M1 elements
    config = array_config(args)
    sim = args.sim or simulators(None)[0]
    simulators([sim])
    M, K = A.shape
    N = B.shape[1]
    blocks = len(qa.slices)
    what = f"MXFP4 GEMM {M}x{K}x{N}"
    path, model = paths.gemm_runner(config, sim, path=args.path, model=args.model,
                                    what=what).choose(block_jobs(qa, qb))
    runner = paths.gemm_runner(config, sim, path=path, model=model, what=what,
                               **native.path_options(args, path))
    print(f"MXFP4 GEMM {M}x{K}x{N}: {blocks} block(s) of 32 along K on a {config.rows}x"
          f"{config.cols} {config.dataflow.upper()} array ({config.mac.slug}) with {sim}, "
          f"{path} path, {model} model; the first run of a design builds it",
          file=sys.stderr)
    start = time.monotonic()
    gemm, = run_blocked([(qa, qb)], runner=runner)
    C = gemm.C.to_float()
    want = A.astype(np.float64) @ B.astype(np.float64)
    err = relative_error(C, want)
    if args.out:
        save(args.out, C)
    cycles = sum(r.cycles for r in gemm.results)
    sim_seconds = sum(r.sim_seconds for r in gemm.results)
    report = {
        "M": M, "K": K, "N": N, "numerics": MXFP4, "block": 32, "k_blocks": blocks,
        "rows": config.rows, "cols": config.cols, "dataflow": config.dataflow,
        "fold_overlap": config.fold_overlap, "simulator": sim, "mac": config.mac.slug,
        "cycles": cycles, "block_cycles": [r.cycles for r in gemm.results],
        "model_cycles": sum(r.model_cycles for r in gemm.results),
        "sim_seconds": round(sim_seconds, 3),
        "wall_seconds": round(time.monotonic() - start, 1),
        "zero_blocks": {"A": int(np.sum(qa.exp == -127)), "B": int(np.sum(qb.exp == -127))},
        "scales": "E8M0 block exponents applied in the driver: each block's partial sum "
                  "(quarters, from the FP4 array) shifted by X_A + X_B - 2, summed exactly",
        "matches_reference": gemm.matches,
        "reference": "exact product of the dequantized MXFP4 A and B (integers, no blocks)",
        "quantization_error": err,
        "quantization_error_of": "relative Frobenius norm of C against the float64 "
                                 "product of the float32 A and B",
        **paths.report_fields(gemm.results[0]),
    }
    if args.report:
        from sim.studies.tables import write_json
        write_json(args.report, report)
    print(f"cycles {cycles} over {blocks} block(s) (model {report['model_cycles']}), "
          f"simulated in {sim_seconds:.1f} s")
    print(f"model: {paths.describe(gemm.results[0])}")
    bad = gemm.C.first_difference(gemm.reference)
    if bad:
        i, j = bad
        print(f"MISMATCH at C[{i},{j}]: RTL {C[i, j]!r}, reference "
              f"{gemm.reference.to_float()[i, j]!r}")
        return 1
    err_text = f"{err:.4g}" if err is not None else "undefined (the float product is 0)"
    print(f"C matches the exact product of the MXFP4-quantized A and B ({M}x{N}); "
          f"quantization error against the float32 product: relative Frobenius norm "
          f"{err_text}")
    return 0
