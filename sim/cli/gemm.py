"""``systolic gemm``: GEMMs on the RTL array (one) or the split array (one per sub-array,
``--split MODE``), checked against numpy."""
import sys
import time
from pathlib import Path

from hdl.emit import write_atomic_bytes
from hdl.fusion import PRECISIONS
from sim.drivers.gemm import check_operands, exact_result, random_operands
from sim.runner import SIMULATORS
from sim import paths
from . import native
from .common import (UsageError, add_array_options, add_mac_options, add_split_options,
                     array_config, check_writable, mac_config, split_config, int_in,
                     simulators)
from .mxgemm import MXFP4, allow_mxfp4, cmd_gemm_mx
from sim.drivers.operands import precision_operands
from .precision import add_precision_options, fused_config, fused_path, split_fused_config


def _load_matrix(path, option):
    import numpy as np
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else "not a .npy file"
        raise UsageError(f"{option}: cannot read {path}: {reason}")
    if not isinstance(arr, np.ndarray) or arr.ndim != 2:
        raise UsageError(f"{option}: {path} must hold a 2-D matrix, got "
                         f"{getattr(arr, 'ndim', '?')} dimension(s)")
    return arr


def gemm_operands(args):
    if args.random:
        return random_operands(args.seed, *args.random, mac_config(args))
    if not args.b:
        raise UsageError("--b: missing; --a needs --b B.npy (or use --random M K N)")
    return (_operand_codes(_load_matrix(args.a, "--a"), args.numerics, f"--a: {args.a}"),
            _operand_codes(_load_matrix(args.b, "--b"), args.numerics, f"--b: {args.b}"))


def _operand_codes(arr, numerics, where):
    """FP4: the codes of a matrix of E2M1 values (exit 2 naming the first element that
    is not one); int4/uint4: the matrix itself."""
    if numerics != "fp4":
        return arr
    from sim.models.fp4 import encode_fp4
    try:
        return encode_fp4(arr, "B" if where.startswith("--b") or where.endswith(" b")
                          else "A")
    except ValueError as e:
        raise UsageError(f"{where}: {e}")


def _as_result(C, numerics):
    """What --out holds: int64 C, or for FP4 the float64 values (quarters / 4, exact)."""
    import numpy as np
    return np.asarray(C) / 4 if numerics == "fp4" else C


def _value_text(x, numerics):
    return f"{x / 4:g}" if numerics == "fp4" else f"{x}"


def first_mismatch(got, want):
    import numpy as np
    diff = np.argwhere(got != want)
    return tuple(int(x) for x in diff[0]) if len(diff) else None


def _save_npy(path, C):
    """Write ``C`` as an int64 (float64 if it is float) .npy file (atomically)."""
    import io
    import numpy as np
    buf = io.BytesIO()
    C = np.asarray(C)
    np.save(buf, C.astype(np.float64 if C.dtype.kind == "f" else np.int64))
    write_atomic_bytes(path, buf.getvalue())


def cmd_gemm(args):
    import numpy as np
    if args.numerics == MXFP4:
        return cmd_gemm_mx(args, one_gemm_args=_one_gemm_args, load=_load_matrix,
                           save=_save_npy)
    if args.split is not None:
        return cmd_gemm_split(args)
    _one_gemm_args(args)
    for option in ("out", "report"):
        if getattr(args, option):
            check_writable(getattr(args, option), f"--{option}")
    if args.b and not args.a:
        raise UsageError("--a: missing; --b needs --a A.npy")
    config = fused_config(args, array_config(args))
    precision = args.precision
    if args.random and precision != "int4":
        A, B = precision_operands(args.seed, *args.random, precision)
    else:
        A, B = gemm_operands(args)
    try:
        A, B = check_operands(A, B, config.mac, precision)
    except ValueError as e:
        raise UsageError(f"{'--random' if args.random else '--a/--b'}: {e}")
    sim = args.sim or simulators(None)[0]
    simulators([sim])
    M, K = A.shape
    N = B.shape[1]
    from sim.drivers.gemm import gemm_model_cycles
    from sim.native.run import array_layout, input_lanes
    if config.fusion == "none":
        path, model = paths.choose(args.path, args.model,
                                   cycles=gemm_model_cycles(M, K, N, config),
                                   lanes=input_lanes(array_layout(config)),
                                   what=f"GEMM {M}x{K}x{N}")
    else:
        path, model = fused_path(args)
    print(f"GEMM {M}x{K}x{N} ({precision}) on a {config.rows}x{config.cols} "
          f"{config.dataflow.upper()} array ({config.mac.slug}"
          f"{'' if config.fusion == 'none' else ', fusion ' + config.fusion}) with {sim}, "
          f"{path} path, {model} model; the first run of a design builds it",
          file=sys.stderr)
    start = time.monotonic()
    if config.fusion == "none":
        result, = paths.run_gemms_on([(A, B)], config, sim, path, model,
                                     **native.path_options(args, path))
    else:
        from sim.drivers.gemm import run_gemm
        result = run_gemm(A, B, config, simulator=sim, precision=precision)   # cocotb, gate
    want = exact_result(A, B, config.mac)
    if args.out:
        _save_npy(args.out, _as_result(result.C, config.mac.numerics))
    report = {
        "M": M, "K": K, "N": N, "rows": config.rows, "cols": config.cols,
        "dataflow": config.dataflow, "fold_overlap": config.fold_overlap,
        "precision": precision, "fusion": config.fusion,
        "simulator": sim, "mac": config.mac.slug,
        "cycles": result.cycles, "model_cycles": result.model_cycles,
        "scalesim_cycles": result.scalesim_cycles, "macs": result.macs,
        "utilization": round(result.utilization, 6), "sim_seconds": round(result.sim_seconds, 3),
        "wall_seconds": round(time.monotonic() - start, 1), "k_passes": result.k_passes,
        "partial_sums": result.note, "matches_numpy": bool(np.array_equal(result.C, want)),
        **paths.report_fields(result),
    }
    if args.report:
        from sim.studies.tables import write_json
        write_json(args.report, report)
    print(f"cycles {result.cycles} (model {result.model_cycles}, SCALE-Sim "
          f"{result.scalesim_cycles}), utilization {result.utilization:.1%}, "
          f"{result.macs} MACs, simulated in {result.sim_seconds:.1f} s")
    print(f"model: {paths.describe(result)}")
    bad = first_mismatch(result.C, want)
    if bad:
        i, j = bad
        num = config.mac.numerics
        print(f"MISMATCH at C[{i},{j}]: RTL {_value_text(result.C[i, j], num)}, numpy "
              f"{_value_text(want[i, j], num)}")
        return 1
    print(f"C matches numpy A @ B ({M}x{N})" + (
        ", A and B decoded by ml_dtypes.float4_e2m1fn" if config.mac.numerics == "fp4"
        else ""))
    return 0



SPLIT_ONLY = (("tile", "--tile"), ("tile_rows", "--tile-rows"), ("tile_cols", "--tile-cols"),
              ("style", "--style"), ("jobs", "--jobs"))


def _one_gemm_args(args):
    """The plain (unsplit) gemm takes one --a/--b/--out and no split options."""
    for attr, option in SPLIT_ONLY:
        if getattr(args, attr) is not None:
            raise UsageError(f"{option}: only with --split MODE")
    for attr in ("a", "b", "out"):
        values = getattr(args, attr) or []
        if len(values) > 1:
            raise UsageError(f"--{attr}: given {len(values)} times; repeat --a/--b/--out "
                             f"only with --split MODE (one triple per sub-array)")
        setattr(args, attr, values[0] if values else None)
    args.dataflow = args.dataflow or "os"


def _split_mode_arg(text):
    """``--split``: a mode name or ``cuts:ROWS/COLS`` (comma-separated tile boundaries,
    either side may be empty)."""
    if not text.startswith("cuts:"):
        return text
    rows, sep, cols = text[len("cuts:"):].partition("/")
    try:
        if not sep:
            raise ValueError
        return tuple(tuple(int(x) for x in part.split(",") if x.strip())
                     for part in (rows, cols))
    except ValueError:
        raise UsageError(f"--split: {text!r} is not cuts:ROWS/COLS (e.g. cuts:1,2/1 or "
                         f"cuts:/2)") from None


def _jobs_file(path, mac, precision="int4"):
    """Jobs from a JSON file: a list (or ``{"jobs": [...]}``) with, per sub-array in
    order, ``{"a": A.npy, "b": B.npy}`` or ``{"random": [M, K, N], "seed": S}``, an
    optional ``"out": C.npy`` and ``"precision"`` (default ``precision``), or null (that
    sub-array idles). Relative paths are relative to the file. Returns [(label, A, B,
    out, precision) or None]."""
    import json
    try:
        data = json.loads(Path(path).read_text())
    except OSError as e:
        raise UsageError(f"--jobs: cannot read {path}: {e.strerror or e}")
    except (UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"--jobs: {path} is not JSON: {str(e).splitlines()[0]}")
    if isinstance(data, dict) and set(data) == {"jobs"}:
        data = data["jobs"]
    if not isinstance(data, list) or not data:
        raise UsageError(f"--jobs: {path} must hold a non-empty list of jobs (or "
                         f'{{"jobs": [...]}})')
    base = Path(path).parent
    jobs = []
    for i, e in enumerate(data):
        where = f"--jobs: {path} job {i}"
        if e is None:
            jobs.append(None)
            continue
        if not isinstance(e, dict):
            raise UsageError(f"{where}: a job is an object or null, not {type(e).__name__}")
        bad = set(e) - {"a", "b", "random", "seed", "out", "precision"}
        if bad:
            raise UsageError(f"{where}: unknown key {sorted(bad)[0]!r}; allowed: a, b, "
                             f"random, seed, out, precision")
        prec = e.get("precision", precision)
        if prec not in PRECISIONS:
            raise UsageError(f"{where}: precision {prec!r}; allowed: {', '.join(PRECISIONS)}")
        out = e.get("out")
        if out is not None and not isinstance(out, str):
            raise UsageError(f"{where}: out must be a file name")
        out = str(base / out) if out else None
        if "random" in e:
            if "a" in e or "b" in e:
                raise UsageError(f"{where}: give either random or a/b")
            shape, seed = e["random"], e.get("seed", 0)
            if (not isinstance(shape, list) or len(shape) != 3 or not all(
                    isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1 << 16
                    for v in shape)):
                raise UsageError(f"{where}: random must be [M, K, N], each 1..65536")
            if not isinstance(seed, int) or isinstance(seed, bool):
                raise UsageError(f"{where}: seed must be an integer")
            A, B = (random_operands(seed, *shape, mac) if prec == "int4" else
                    precision_operands(seed, *shape, prec))
            jobs.append((f"random {'x'.join(map(str, shape))} seed {seed}", A, B, out, prec))
        elif isinstance(e.get("a"), str) and isinstance(e.get("b"), str):
            a, b = str(base / e["a"]), str(base / e["b"])
            jobs.append((f"{e['a']} @ {e['b']}",
                         _operand_codes(_load_matrix(a, f"{where} a"), mac.numerics,
                                        f"{where} a"),
                         _operand_codes(_load_matrix(b, f"{where} b"), mac.numerics,
                                        f"{where} b"), out, prec))
        else:
            raise UsageError(f"{where}: needs a and b (.npy file names) or random")
    return jobs


def _split_jobs(args, n_sub, mode):
    """Checked jobs [(label, A, B, out) or None] from --a/--b/--out or --jobs."""
    if args.random:
        raise UsageError('--random: not with --split; use --jobs FILE with {"random": '
                         '[M, K, N], "seed": S} entries')
    a, b, outs = args.a or [], args.b or [], args.out or []
    if args.jobs:
        if a or b or outs:
            raise UsageError("--jobs: give jobs either in the file or as --a/--b/--out, "
                             "not both")
        count = None
    else:
        if len(b) != len(a):
            raise UsageError(f"--b: {len(a)} --a but {len(b)} --b; give one --b per --a")
        if outs and len(outs) != len(a):
            raise UsageError(f"--out: {len(a)} jobs but {len(outs)} --out; give one --out "
                             f"per job or none")
        count = len(a)
    subs = f"{n_sub} sub-array{'s' if n_sub != 1 else ''}"
    if count is not None and count > n_sub:
        raise UsageError(f"--split {mode}: {count} jobs for {subs}")
    if args.jobs:
        jobs = _jobs_file(args.jobs, mac_config(args), args.precision)
    else:
        jobs = [(f"{x} @ {y}", _operand_codes(_load_matrix(x, "--a"), args.numerics,
                                              f"--a: {x}"),
                 _operand_codes(_load_matrix(y, "--b"), args.numerics, f"--b: {y}"), o,
                 args.precision)
                for x, y, o in zip(a, b, outs or [None] * len(a))]
    if len(jobs) > n_sub:
        raise UsageError(f"--split {mode}: {len(jobs)} jobs for {subs}")
    paths = [j[3] for j in jobs if j and j[3]]
    for p in paths:
        check_writable(p, "--out")
    dup = next((p for p in paths if paths.count(p) > 1), None)
    if dup:
        raise UsageError(f"--out: {dup} is the output of two jobs")
    checked = []
    for i, job in enumerate(jobs):
        if job is None:
            checked.append(None)
            continue
        label, A, B, out, prec = job
        try:
            A, B = check_operands(A, B, mac_config(args), prec)
        except ValueError as e:
            raise UsageError(f"job {i} ({label}{'' if prec == 'int4' else ', ' + prec}): {e}")
        checked.append((label, A, B, out, prec))
    if not any(checked):
        raise UsageError("--jobs: no jobs (every entry is null)")
    return checked


def cmd_gemm_split(args):
    """``systolic gemm --split MODE``: independent GEMMs on the sub-arrays at once."""
    from sim.models.program import SplitJob, normalize_program, program_cycles
    from sim.native.run import program_limits
    if args.report:
        check_writable(args.report, "--report")
    config = split_config(args)
    try:
        mode = config.mode(_split_mode_arg(args.split))
    except ValueError as e:
        raise UsageError(f"--split: {e}")
    subs = config.subarrays(mode)
    jobs = _split_jobs(args, len(subs), mode.name)
    config = split_fused_config(args, config, jobs, subs)
    sim = args.sim or simulators(None)[0]
    simulators([sim])
    tr, tc, _, _ = config.grid
    shapes = [(A.shape[0], A.shape[1], B.shape[1], p) for _, A, B, _, p in filter(None, jobs)]
    work = [None if j is None else SplitJob(j[1], j[2], 0, j[4]) for j in jobs]
    if config.fusion != "none":         # the twin has no digit tags: the gate-level PE
        if args.model == "twin":
            raise UsageError("--model twin: not for a fusable array yet; use --model gate "
                             "(the default picks it)")
        args.model = "gate"
    cycles, lanes, job = program_limits(normalize_program([(mode, work)], config), config)
    path, model = paths.choose(args.path, args.model, cycles=cycles, lanes=lanes,
                               what=f"split {mode.name}", job=job)
    fused = "" if config.fusion == "none" else f", fusion {config.fusion}"
    print(f"split {mode.name}: {sum(map(bool, jobs))} GEMM(s) on {len(subs)} sub-arrays of "
          f"a {config.rows}x{config.cols} {config.dataflow.upper()} array of {tr}x{tc} tiles "
          f"({config.style} "
          f"style, {config.mac.slug}{fused}) with {sim}, {path} path, {model} model; the "
          f"first run of a design builds it", file=sys.stderr)
    start = time.monotonic()
    result = paths.run_split_phase(mode, work, config, sim, path, model,
                                   **native.path_options(args, path))
    whole = program_cycles([("whole", [shapes])], config)
    done = iter(result.jobs)
    failures, records = 0, []
    for i, (job, sub) in enumerate(zip(jobs, subs)):
        if job is None:
            continue
        label, A, B, out, prec = job
        r = next(done)
        want = exact_result(A, B, config.mac)
        if out:
            _save_npy(out, _as_result(r.C, config.mac.numerics))
        bad = first_mismatch(r.C, want)
        M, K, N = r.shape
        num = config.mac.numerics
        what = f"{M}x{K}x{N}" + ("" if prec == "int4" else f" {prec}")
        print(f"job {i}: {label}, {what} on sub-array {sub.index} ({sub.rows}x"
              f"{sub.cols} at row {sub.r0}, col {sub.c0}): {r.cycles} cycles (model "
              f"{r.model_cycles}), " + ("C matches numpy" if not bad else
              f"MISMATCH at C[{bad[0]},{bad[1]}]: RTL {_value_text(r.C[bad], num)}, numpy "
              f"{_value_text(want[bad], num)}"))
        failures += bool(bad)
        records.append({"job": i, "label": label, "M": M, "K": K, "N": N, "precision": prec,
                        "subarray": {"index": sub.index, "row": sub.r0, "col": sub.c0,
                                     "rows": sub.rows, "cols": sub.cols},
                        "cycles": r.cycles, "model_cycles": r.model_cycles,
                        "out": out, "matches_numpy": not bad})
    print(f"total {result.cycles} cycles (model {result.model_cycles}) for "
          f"{len(records)} job(s) at once; one after another on the whole "
          f"{config.rows}x{config.cols} array: {whole} cycles (model) -> "
          f"{whole / result.cycles:.2f}x; simulated in {result.sim_seconds:.1f} s")
    print(f"model: {paths.describe(result)}")
    if args.report:
        from sim.studies.tables import write_json
        write_json(args.report, {
            "split": mode.name, "row_cuts": list(mode.row_cuts),
            "col_cuts": list(mode.col_cuts), "rows": config.rows, "cols": config.cols,
            "tile": [tr, tc], "style": config.style, "dataflow": config.dataflow,
            "fold_overlap": config.fold_overlap, "fusion": config.fusion,
            "simulator": sim, "mac": config.mac.slug, "jobs": records,
            "cycles": result.cycles, "model_cycles": result.model_cycles,
            "whole_sequential_model_cycles": whole,
            "speedup_vs_whole": round(whole / result.cycles, 4),
            "sim_seconds": round(result.sim_seconds, 3),
            "wall_seconds": round(time.monotonic() - start, 1),
            "matches_numpy": failures == 0, **paths.report_fields(result)})
    if failures:
        print(f"{failures} job(s) differ from numpy")
        return 1
    print(f"all {len(records)} C match numpy A @ B")
    return 0


def register(sub):
    g = sub.add_parser("gemm", help="run a GEMM on the RTL array, check it against numpy")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--a", metavar="A.npy", action="append",
                     help="A (M x K): int values in the int4 (uint4) range, or with "
                          "--numerics fp4 float values that are exactly E2M1 (with "
                          "--split: once per sub-array, in sub-array order)")
    src.add_argument("--random", nargs=3, type=int_in(1, 1 << 16, "random"),
                     metavar=("M", "K", "N"), help="random A (M x K) and B (K x N)")
    src.add_argument("--jobs", metavar="JOBS.json",
                     help='with --split: a JSON list of jobs, per sub-array {"a": A.npy, '
                          '"b": B.npy} or {"random": [M, K, N], "seed": S}, optional '
                          '"out": C.npy and "precision": int4|w4a8|int8, or null (paths '
                          'relative to the file)')
    g.add_argument("--b", metavar="B.npy", action="append",
                   help="B (K x N); with --a (with --split: one per --a)")
    g.add_argument("--seed", type=int, default=0, help="seed for --random (default 0)")
    g.add_argument("--out", metavar="C.npy", action="append",
                   help="write the RTL's C as int64 .npy, float64 with --numerics fp4 "
                        "(with --split: one per job)")
    sp = add_split_options(g, "split array options (with --split; --dataflow ws by "
                              "default, or os)")
    sp.add_argument("--split", metavar="MODE",
                    help="run the jobs at once on a splittable array in this mode: "
                         "whole, h2, v2, quad, tiles, or cuts:ROWS/COLS (tile boundaries, "
                         "e.g. cuts:1/1,2)")
    g.add_argument("--report", metavar="R.json", help="write cycles, utilization, ... as JSON")
    g.add_argument("--sim", choices=SIMULATORS, default=None,
                   help="simulator (default: verilator when present, else icarus)")
    native.add_path_options(g)
    add_precision_options(g)
    add_mac_options(g)
    allow_mxfp4(g)
    add_array_options(g)
    g.set_defaults(func=cmd_gemm, dataflow=None)     # os, or ws with --split
