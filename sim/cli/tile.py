"""``systolic tile``: a GEMM from the tile's own memory (:mod:`hdl.tile`): the host
writes A and B through the host port, issues the GEMM command, reads C back and checks
it against numpy; reports RTL and model cycles, stalls, SRAM accesses per memory and
bytes per cycle."""
import sys
import time

from .common import UsageError, add_mac_options, check_writable, int_in, mac_config
from .gemm import _load_matrix, _save_npy, first_mismatch
from .native import add_path_options


def tile_config(args):
    from hdl.array import ArrayConfig
    from hdl.tile import TileConfig
    return TileConfig(array=ArrayConfig(rows=args.rows, cols=args.cols,
                                        dataflow=args.dataflow, mac=mac_config(args),
                                        fold_overlap=args.fold_overlap),
                      width=args.width, a_banks=args.a_banks, b_banks=args.b_banks,
                      depth=args.depth, c_width=args.c_width, c_depth=args.c_depth)


def _operands(args, cfg):
    from sim.drivers.gemm import check_operands, random_operands
    if args.random:
        A, B = random_operands(args.seed, *args.random, cfg.array.mac)
        where = "--random"
    else:
        if not (args.a and args.b):
            raise UsageError("--a/--b: give both A.npy and B.npy, or --random M K N")
        A, B = _load_matrix(args.a, "--a"), _load_matrix(args.b, "--b")
        where = "--a/--b"
    try:
        return check_operands(A, B, cfg.array.mac)
    except ValueError as e:
        raise UsageError(f"{where}: {e}")


def _report(cfg, cmd, model, run, sim_seconds):
    r = {"rows": cfg.rows, "cols": cfg.cols, "dataflow": cfg.dataflow,
         "mac": cfg.array.mac.slug, "fold_overlap": cfg.overlap,
         "M": cmd.M, "K": cmd.K, "N": cmd.N, "width": cfg.width, "a_banks": cfg.a_banks,
         "b_banks": cfg.b_banks, "depth": cfg.depth, "c_width": cfg.c_width,
         "c_depth": cfg.c_depth, "beats_a": cfg.beats_a, "beats_b": cfg.beats_b,
         "model": model.as_dict()}
    if run is not None:
        proof = run.extra["proof"]
        native = run.extra["native"] or {}
        r |= {"path": run.extra["path"], "simulator": SIMULATOR[run.extra["path"]],
              "sim_model": run.extra["model"],
              "twin_proof": None if proof is None else proof.cite(),
              "stream_bytes": native.get("stream_bytes")}
        r |= {"rtl_cycles": run.cycles, "rtl_counters": run.counters,
              "host_writes": run.host_writes, "host_reads": run.host_reads,
              "matches_numpy": run.extra["matches"], "cycles_match_model":
              run.cycles == model.cycles, "sim_seconds": round(sim_seconds, 2)}
    return r


def _markdown(rep):
    from sim.studies.tables import markdown_table
    m = rep["model"]
    rows = [["cycles (command to done)", rep.get("rtl_cycles", "-"), m["cycles"]],
            ["bare array model cycles", "-", m["bare_cycles"]],
            ["stall cycles", "-", m["stalls"]]]
    cnt = rep.get("rtl_counters", {})
    for name in ("a_reads", "b_reads", "c_reads", "c_writes"):
        rows.append([f"SRAM {name.replace('_', ' ')} (bank words)", cnt.get(name, "-"),
                     m[name]])
    rows += [["edge bytes/cycle needed", "-", m["edge_bytes"]],
             ["A+B bytes/cycle deliverable", "-", m["sram_bytes"]],
             ["A+B bytes read per cycle", "-", round(m["read_bytes_per_cycle"], 3)]]
    head = (f"GEMM {rep['M']}x{rep['K']}x{rep['N']} from memory on a {rep['rows']}x"
            f"{rep['cols']} {rep['dataflow'].upper()} tile: A {rep['a_banks']} x "
            f"{rep['width']}-bit banks "
            f"({rep['beats_a']} line(s)/vector), B {rep['b_banks']} x {rep['width']}-bit "
            f"({rep['beats_b']})")
    if "path" in rep:
        head += (f"; RTL: {rep['path']} path on {rep['simulator']}, {rep['sim_model']} "
                 f"model")
    return head + "\n\n" + markdown_table(["quantity", "RTL", "model"], rows) + "\n"


#: The simulator of each path: the cocotb bench on Icarus, the host player on Verilator.
SIMULATOR = {"cocotb": "icarus", "native": "verilator"}


def _choose(args, cycles):
    """``(path, model)`` as ``systolic gemm`` takes them (:func:`sim.paths.choose`); auto
    takes the native path only where Verilator is here (the tile's native player is
    Verilator's)."""
    from sim.paths import choose
    from sim.runner import SimulatorUnavailable, available_simulators, check_simulator
    path, model = choose(args.path, args.model, cycles=cycles,
                         native="verilator" in available_simulators())
    try:
        check_simulator(SIMULATOR[path])
    except SimulatorUnavailable as e:            # names the fix
        raise UsageError(f"--path {path}: {e}") from None
    return path, model


def cmd_tile(args):
    import numpy as np
    from hdl.tile import TileError
    from sim.models.tile import GemmCommand, gemm_error, tile_cycles
    for option in ("json", "md", "out"):
        if getattr(args, option):
            check_writable(getattr(args, option), f"--{option}")
    cfg = tile_config(args)
    A, B = _operands(args, cfg)
    M, K = A.shape
    N = B.shape[1]
    cmd = GemmCommand(M, K, N, a_base=args.a_base, b_base=args.b_base, c_base=args.c_base)
    try:
        code, why = gemm_error(cmd, cfg)
    except ValueError as e:
        raise UsageError(f"--random/--a/--b/--*-base: {e}")
    if code != TileError.NONE:
        option = {TileError.NO_FIT: "--depth/--c-depth", TileError.SHAPE: "--random/--a/--b",
                  }.get(code, "--a-base")
        raise UsageError(f"{option}: the tile would raise {code.name}: {why}")
    model = tile_cycles(cmd, cfg)
    run = None
    seconds = 0.0
    if not args.model_only:
        from sim.drivers.tile import run_tile_gemm
        from sim.native.twin import TwinNotProven
        path, sim_model = _choose(args, model.cycles)
        print(f"GEMM {M}x{K}x{N} from memory on a {cfg.rows}x{cfg.cols} "
              f"{cfg.dataflow.upper()} tile with {SIMULATOR[path]}, {path} path, "
              f"{sim_model} model (the first run of a design builds it)", file=sys.stderr)
        t0 = time.monotonic()
        try:
            run = run_tile_gemm(A, B, cfg, cmd, path=path, model=sim_model)
        except TwinNotProven as e:
            raise UsageError(f"--model twin: {e}") from None
        seconds = time.monotonic() - t0
        run.extra["matches"] = bool(np.array_equal(run.C, run.extra["expected"]))
    rep = _report(cfg, cmd, model, run, seconds)
    text = _markdown(rep)
    print(text, end="")
    if args.json:
        from sim.studies.tables import write_json
        write_json(args.json, rep)
    if args.md:
        from hdl.emit import write_atomic
        write_atomic(args.md, text)
    if run is None:
        return 0
    if args.out:
        _save_npy(args.out, run.C)
    bad = first_mismatch(run.C, run.extra["expected"])
    if bad:
        i, j = bad
        print(f"MISMATCH at C[{i},{j}]: RTL {run.C[i, j]}, numpy {run.extra['expected'][i, j]}")
        return 1
    if run.cycles != model.cycles:
        print(f"MISMATCH: RTL took {run.cycles} cycles, the model says {model.cycles}")
        return 1
    print(f"C matches numpy A @ B ({M}x{N}); RTL cycles == model")
    return 0


def register(sub):
    g = sub.add_parser("tile", help="a GEMM from the tile's own scratchpads (RTL: cocotb on "
                                    "icarus or the native host player on verilator, "
                                    "checked against numpy and the cycle model)")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--random", nargs=3, type=int_in(1, 4095, "random"),
                     metavar=("M", "K", "N"), help="random operands of this shape")
    src.add_argument("--a", metavar="A.npy", help="A (M x K); with --b")
    g.add_argument("--b", metavar="B.npy", help="B (K x N); with --a")
    g.add_argument("--seed", type=int, default=0, help="seed for --random (default 0)")
    g.add_argument("--rows", type=int_in(1, 256, "rows"), default=4, metavar="R",
                   help="PE rows, a power of two (default 4)")
    g.add_argument("--cols", type=int_in(1, 256, "cols"), default=4, metavar="C",
                   help="PE columns, a power of two (default 4)")
    g.add_argument("--dataflow", choices=("os", "ws"), default="os",
                   help="os (compact PE) or ws (shadow weights), sequential folds "
                        "(default os)")
    g.add_argument("--fold-overlap", action="store_true",
                   help="overlap consecutive folds (OS: the double-buffered PE drains "
                        "while the next tile streams; WS: the next weights load while "
                        "the fold streams)")
    g.add_argument("--width", type=int_in(1, 1024, "width"), default=16,
                   help="bits per A/B bank word (default 16)")
    g.add_argument("--a-banks", type=int_in(1, 64, "a-banks"), default=1,
                   help="banks of A (default 1)")
    g.add_argument("--b-banks", type=int_in(1, 64, "b-banks"), default=1,
                   help="banks of B (default 1)")
    g.add_argument("--depth", type=int_in(2, 65536, "depth"), default=512,
                   help="words per A/B bank (default 512)")
    g.add_argument("--c-width", type=int_in(8, 64, "c-width"), default=None,
                   help="bits per C word, acc width..64 (default: the acc width)")
    g.add_argument("--c-depth", type=int_in(2, 65536, "c-depth"), default=256,
                   help="words per C bank, one bank per output lane (default 256)")
    for name in ("a", "b", "c"):
        g.add_argument(f"--{name}-base", type=int_in(0, 65535, f"{name}-base"), default=0,
                       help=f"first line of {name.upper()} (default 0)")
    g.add_argument("--model-only", action="store_true",
                   help="print the cycle model only (no simulation)")
    g.add_argument("--out", metavar="C.npy", help="write the RTL's C (int64 .npy)")
    g.add_argument("--json", metavar="FILE", help="write the report as JSON")
    g.add_argument("--md", metavar="FILE", help="write the report as Markdown")
    add_path_options(g, save_stream=False)
    add_mac_options(g)
    g.set_defaults(func=cmd_tile)
