"""``systolic digits``: a 64-32-10 MLP on scikit-learn's digits, float32, in 4 bits
(blocked int4, MXFP4) and in W4A8 (int8 activations, int4 weights, on a fusable array)
with both layers' GEMMs on the RTL array (:mod:`sim.studies.digits`)."""
import sys
import time

from sim.studies.digits import digits_arrays
from .common import UsageError, check_writable, int_in, simulators

FORMATS = ("int4", "mxfp4", "w4a8")
#: The networks whose arrays are fused (:mod:`hdl.fusion`): the cocotb path only.
FUSED = {"w4a8": "w4a8"}


def _runner(fmt, array, simulator, path_args):
    """The runner of one network: a fusable array's on the cocotb path with the
    gate-level model (:func:`sim.cli.precision.fused_path`), the others on the path and
    model ``path_args`` choose (default: the cocotb path)."""
    from sim.drivers.blocked import rtl_runner
    from sim import paths
    if fmt in FUSED:
        if path_args is not None:
            from .precision import fused_path
            fused_path(path_args)
        run = rtl_runner(array, simulator=simulator, precision=FUSED[fmt])
        run.chosen = [("cocotb", "gate")] if path_args is not None else []
        return run
    if path_args is None:
        return rtl_runner(array, simulator=simulator)
    return paths.gemm_runner(array, simulator, path=path_args.path, model=path_args.model,
                             what=f"digits {fmt}")


def run_and_print(*, rows, cols, dataflow, simulator, formats=FORMATS, limit=None,
                  indent="", path_args=None):
    """Run the study on the RTL, print one line per network; the report.
    ``path_args``: parsed ``--path``/``--model`` options (default: the cocotb path,
    gate-level)."""
    from sim.studies.digits import run_digits, HIDDEN, QUANTIZATION
    arrays = digits_arrays(rows, cols, dataflow)
    runners = {f: _runner(f, arrays[f], simulator, path_args) for f in formats}
    start = time.monotonic()
    report = run_digits(runners=runners, limit=limit)
    print(f"{indent}MLP 64-{HIDDEN}-10 trained on {report.n_train} digits images, tested "
          f"on {report.n_test}; GEMMs on a {rows}x{cols} {dataflow.upper()} array with "
          f"{simulator} ({time.monotonic() - start:.0f} s)")
    print(f"{indent}  float32 (numpy): test accuracy {report.accuracy['float32']:.1%}")
    for fmt in formats:
        gemms = report.layers[fmt]
        ok = all(g.matches and g.cycles == g.model_cycles for g in gemms)
        what = "; ".join(f"{g.name} {'x'.join(map(str, g.shape))} ({g.blocks} K-block"
                         f"{'s' if g.blocks != 1 else ''}, {g.cycles} cycles)"
                         for g in gemms)
        how = sorted(set(getattr(runners[fmt], "chosen", [])))
        how = ("; " + ", ".join(f"{p} path, {m} model" for p, m in how)) if how else ""
        print(f"{indent}  {fmt:7s} (RTL)  : test accuracy {report.accuracy[fmt]:.1%}; "
              f"{'PASS' if ok else 'FAIL'}: every RTL GEMM "
              f"{'equals' if ok else 'does NOT equal'} its exact reference, cycles "
              f"{'==' if ok else 'vs'} model; {what}{how}")
        print(f"{indent}            quantization: {QUANTIZATION[fmt]}")
    return report


def demo_digits(sims, label, *, size=8):
    """The demo's real-data step: the whole test set through both 4-bit networks on a
    small WS array; Verilator when present (Icarus takes minutes for this many cycles).
    W4A8 is left out here (one more array to build, twice the cycles): ``systolic
    digits`` runs it."""
    sim = "verilator" if "verilator" in sims else sims[0]
    print(f"{label} real data: a 64-32-10 MLP on scikit-learn's digits in float32, int4 and "
          f"MXFP4 (blocks of 32), both layers' GEMMs on the RTL array, each checked "
          f"exactly (systolic digits)")
    report = run_and_print(rows=size, cols=size, dataflow="ws", simulator=sim,
                           formats=("int4", "mxfp4"), indent="      ")
    return 0 if report.all_match else 1


def cmd_digits(args):
    if args.report:
        check_writable(args.report, "--report")
    sim = args.sim or simulators(None)[0]
    simulators([sim])
    formats = tuple(dict.fromkeys(args.numerics or FORMATS))
    if not args.numerics and (args.path == "native" or args.model == "twin"):
        formats = tuple(f for f in formats if f not in FUSED)
        print(f"--path {args.path} --model {args.model}: {', '.join(FUSED)} left out (a "
              f"fusable array runs on the cocotb path only; ask --numerics w4a8 without "
              f"them)", file=sys.stderr)
    if any(f in FUSED for f in formats):
        from .precision import fused_path
        fused_path(args)                 # exit 2 before any work on --path native etc.
    print("training the float MLP, then quantized inference; the first run of an array "
          "design builds it", file=sys.stderr)
    report = run_and_print(rows=args.rows, cols=args.cols, dataflow=args.dataflow,
                           simulator=sim, formats=formats, limit=args.limit, path_args=args)
    if args.report:
        from sim.studies.tables import write_json
        data = report.as_dict()
        data.update(rows=args.rows, cols=args.cols, dataflow=args.dataflow, simulator=sim)
        write_json(args.report, data)
    return 0 if report.all_match else 1


def register(sub):
    d = sub.add_parser("digits", help="a small MLP on scikit-learn's digits: float32, int4, "
                                      "MXFP4 and W4A8 accuracy, GEMMs on the RTL array")
    d.add_argument("--rows", type=int_in(1, 256, "rows"), default=8, metavar="R",
                   help="PE rows, 1..256 (default 8)")
    d.add_argument("--cols", type=int_in(1, 256, "cols"), default=8, metavar="C",
                   help="PE columns, 1..256 (default 8)")
    d.add_argument("--dataflow", choices=["os", "ws"], default="ws",
                   help="output- or weight-stationary (default ws)")
    d.add_argument("--numerics", action="append", choices=FORMATS,
                   help="run only this network (repeatable; default: int4, mxfp4 and w4a8 "
                        "= int8 activations x int4 weights on an array fused for W4A8)")
    d.add_argument("--limit", type=int_in(1, 100000, "limit"), default=None, metavar="N",
                   help="only the first N test images (default: all 360)")
    d.add_argument("--sim", choices=["verilator", "icarus"], default=None,
                   help="simulator (default: verilator when present, else icarus)")
    d.add_argument("--report", metavar="R.json",
                   help="write accuracies and per-GEMM checks as JSON")
    from . import native
    native.add_path_options(d, save_stream=False)
    d.set_defaults(func=cmd_digits)


__all__ = ["register", "cmd_digits", "demo_digits", "run_and_print", "digits_arrays", "UsageError"]
